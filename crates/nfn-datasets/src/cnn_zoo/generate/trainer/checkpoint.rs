//! Checkpoints of a training group: every network evaluated without dropout, through
//! [`evaluate_cnn`] itself (the forward pass a loaded zoo is later checked with), on the shared
//! test images and on (a cap of) its own training subset.

use tch::{Device, Kind, Tensor};

use nfn_weightspace::{evaluate_cnn, WeightSpaceFeatures};

use super::{Block, DeviceData, GroupTrainer, STRIDE};
use crate::cnn_zoo::generate::layout::{wsfeat_to_tf, zoo_layout};
use crate::cnn_zoo::ZOO_NUM_PARAMS;
use crate::error::Result;

/// Metrics and weights of one network at a checkpoint.
#[derive(Debug, Clone)]
pub(crate) struct SlotCheckpoint {
    /// Network index.
    pub index: usize,
    /// Weights and metrics all finite (and it never diverged before).
    pub finite: bool,
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub train_accuracy: f64,
    pub train_loss: f64,
    /// TF-layout weights, 4970 values.
    pub weights: Vec<f32>,
}

impl GroupTrainer {
    /// The networks as weight-space features `[G, 1, ...]` (internal order), detached.
    fn wsfeat(&self) -> Result<WeightSpaceFeatures> {
        let ts: Vec<Tensor> = self.params.iter().map(|p| p.detach().unsqueeze(1)).collect();
        let (ws, bs) = ts.chunks(2).map(|c| (c[0].shallow_clone(), c[1].shallow_clone())).unzip();
        Ok(WeightSpaceFeatures::new(ws, bs)?)
    }

    /// Summed cross-entropy and correct counts `[G]` over a chunk of images: `xs` `[p, 1, h, w]`
    /// shared with labels `ys` `[p]`, or per network `[G, p, 1, h, w]` with `[G, p]` and a
    /// validity mask `valid` `[G, p]`.
    fn eval_sums(
        &self,
        wsfeat: &WeightSpaceFeatures,
        xs: &Tensor,
        ys: &Tensor,
        valid: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let (mut ce_parts, mut ok_parts) = (Vec::new(), Vec::new());
        for Block { start, len, activation } in self.blocks() {
            let sub = wsfeat.map(|t| t.narrow(0, start, len));
            let (xs, ys, valid) = if xs.dim() == 5 {
                (
                    xs.f_narrow(0, start, len)?,
                    ys.f_narrow(0, start, len)?,
                    valid.map(|v| v.narrow(0, start, len)),
                )
            } else {
                (xs.shallow_clone(), ys.f_unsqueeze(0)?.f_expand([len, -1], false)?, None)
            };
            let logits = evaluate_cnn(&sub, &xs, activation.activation(), STRIDE)?; // [len, p, 10]
            let ce = logits
                .f_log_softmax(-1, Kind::Float)?
                .f_gather(2, &ys.f_unsqueeze(-1)?, false)?
                .f_squeeze_dim(-1)?
                .f_neg()?;
            let ok = logits.f_argmax(-1, false)?.f_eq_tensor(&ys)?.f_to_kind(Kind::Float)?;
            let (ce, ok) = match valid {
                Some(v) => (ce.f_where_scalarother(&v, 0.0)?, ok.f_where_scalarother(&v, 0.0)?),
                None => (ce, ok),
            };
            ce_parts.push(ce.f_sum_dim_intlist(1, false, Kind::Double)?);
            ok_parts.push(ok.f_sum_dim_intlist(1, false, Kind::Double)?);
        }
        Ok((Tensor::f_cat(&ce_parts, 0)?, Tensor::f_cat(&ok_parts, 0)?))
    }

    /// Evaluate every network (no dropout) on the test images and on (a cap of) its own
    /// training subset; return the checkpoint of each network in index order.
    pub fn checkpoint(&self, data: &DeviceData) -> Result<Vec<SlotCheckpoint>> {
        let _guard = tch::no_grad_guard();
        let device = self.settings.device;
        let wsfeat = self.wsfeat()?;
        let p = self.settings.eval_batch;
        let zeros = || Tensor::f_zeros([self.g], (Kind::Double, device));
        // Test images, shared by all networks.
        let n_test = data.test_images.size()[0];
        let (mut test_ce, mut test_ok) = (zeros()?, zeros()?);
        for start in (0..n_test).step_by(p as usize) {
            let len = p.min(n_test - start);
            let xs = data.test_images.f_narrow(0, start, len)?;
            let ys = data.test_labels.f_narrow(0, start, len)?;
            let (ce, ok) = self.eval_sums(&wsfeat, &xs, &ys, None)?;
            test_ce = test_ce.f_add(&ce)?;
            test_ok = test_ok.f_add(&ok)?;
        }
        // Each network's own training images (its subset's first `train_eval_cap`).
        let counts: Vec<usize> = self
            .slots
            .iter()
            .map(|s| self.settings.train_eval_cap.map_or(s.subset.len(), |c| c.min(s.subset.len())))
            .collect();
        let longest = counts.iter().copied().max().unwrap_or(0) as i64;
        let (mut train_ce, mut train_ok) = (zeros()?, zeros()?);
        let size = data.train_images.size();
        for start in (0..longest).step_by(p as usize) {
            let len = p.min(longest - start);
            let (mut idx, mut valid) = (Vec::new(), Vec::new());
            for (slot, &count) in self.slots.iter().zip(&counts) {
                for pos in start..start + len {
                    let ok = (pos as usize) < count;
                    idx.push(if ok { slot.subset[pos as usize] } else { 0 });
                    valid.push(u8::from(ok));
                }
            }
            let idx = Tensor::f_from_slice(&idx)?.f_to_device(device)?;
            let valid = Tensor::f_from_slice(&valid)?
                .f_to_device(device)?
                .f_gt(0)?
                .f_view([self.g, len])?;
            let xs = data
                .train_images
                .f_index_select(0, &idx)?
                .f_view([self.g, len, 1, size[2], size[3]])?;
            let ys = data.train_labels.f_index_select(0, &idx)?.f_view([self.g, len])?;
            let (ce, ok) = self.eval_sums(&wsfeat, &xs, &ys, Some(&valid))?;
            train_ce = train_ce.f_add(&ce)?;
            train_ok = train_ok.f_add(&ok)?;
        }
        let reg = self.l2.f_mul(&self.kernel_sq()?)?.f_to_kind(Kind::Double)?;
        let to_vec = |t: Tensor| -> Result<Vec<f64>> {
            Ok(Vec::<f64>::try_from(t.f_to_device(Device::Cpu)?)?)
        };
        let n_counts: Vec<f64> = counts.iter().map(|&c| c.max(1) as f64).collect();
        let n_counts = Tensor::f_from_slice(&n_counts)?.f_to_device(device)?;
        let test_acc = to_vec(test_ok.f_div_scalar(n_test as f64)?)?;
        let test_loss = to_vec(test_ce.f_div_scalar(n_test as f64)?.f_add(&reg)?)?;
        let train_acc = to_vec(train_ok.f_div(&n_counts)?)?;
        let train_loss = to_vec(train_ce.f_div(&n_counts)?.f_add(&reg)?)?;
        let alive = Vec::<bool>::try_from(self.alive.f_to_device(Device::Cpu)?)?;
        let tf = wsfeat_to_tf(&wsfeat, &zoo_layout())?.f_to_device(Device::Cpu)?;
        let tf = Vec::<f32>::try_from(tf.f_reshape([-1])?)?;
        let mut out: Vec<SlotCheckpoint> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let weights =
                    tf[i * ZOO_NUM_PARAMS as usize..(i + 1) * ZOO_NUM_PARAMS as usize].to_vec();
                let metrics = [test_acc[i], test_loss[i], train_acc[i], train_loss[i]];
                let finite = alive[i]
                    && metrics.iter().all(|m| m.is_finite())
                    && weights.iter().all(|w| w.is_finite());
                SlotCheckpoint {
                    index: slot.hyper.index,
                    finite,
                    test_accuracy: test_acc[i],
                    test_loss: test_loss[i],
                    train_accuracy: train_acc[i],
                    train_loss: train_loss[i],
                    weights,
                }
            })
            .collect();
        out.sort_by_key(|c| c.index);
        Ok(out)
    }
}
