//! The batched trainer: `G` zoo CNNs trained as one computation. Parameters are leaf tensors with a
//! leading network axis; the convolutions are grouped (`groups = G`), as in
//! [`nfn_weightspace::evaluate_cnn`]; the loss is the sum over networks of each one's mean
//! cross-entropy plus its L2 term, so each network's gradient is its own; the optimizer update is
//! vectorised over networks, with per-network learning rates and optimizers chosen by masks.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tch::{Device, Kind, Tensor};

use super::hyper::{stream_rng, Stream, ZooActivation, ZooHyper, ZooOptimizer};
use super::init::init_tf_row;
use super::layout::zoo_layout;
use crate::cnn_zoo::{tf_to_wsfeat, ZOO_NUM_PARAMS};
use crate::error::Result;

mod checkpoint;

/// Conv stride of the zoo network (reference `cnn_stride = 2`).
pub(crate) const STRIDE: i64 = 2;
/// Hidden channels per conv layer.
const UNITS: i64 = 16;
const ADAM_B1: f64 = 0.9;
const ADAM_B2: f64 = 0.999;
const RMS_RHO: f64 = 0.9;
/// Keras' default ε (Adam and RMSProp).
const EPS: f64 = 1e-7;

/// The images a group trains and is evaluated on, already on the training device.
#[derive(Debug)]
pub(crate) struct DeviceData {
    /// `[n_train, 1, h, w]` f32.
    pub train_images: Tensor,
    /// `[n_train]` i64.
    pub train_labels: Tensor,
    /// `[n_eval, 1, h, w]` f32 (the evaluated test images).
    pub test_images: Tensor,
    /// `[n_eval]` i64.
    pub test_labels: Tensor,
}

/// Settings of one group's training.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrainSettings {
    pub seed: u64,
    pub batch_size: i64,
    pub steps_cap: Option<usize>,
    pub train_eval_cap: Option<usize>,
    pub eval_batch: i64,
    pub device: Device,
}

/// One network in the group's internal order (ReLU networks first).
#[derive(Debug)]
struct Slot {
    hyper: ZooHyper,
    /// Its training images: the first `int(n_train * train_fraction)` of its own permutation.
    subset: Vec<i64>,
    /// This epoch's shuffled `subset`.
    order: Vec<i64>,
    rng: StdRng,
    steps_per_epoch: usize,
}

/// `G` networks being trained together.
#[derive(Debug)]
pub(crate) struct GroupTrainer {
    settings: TrainSettings,
    slots: Vec<Slot>,
    g: i64,
    n_relu: i64,
    /// `W0, b0, .., W3, b3`: conv `[G, out, in, kh, kw]`, dense `[G, out, in]`, biases `[G, out]`.
    params: Vec<Tensor>,
    adam_m: Vec<Tensor>,
    adam_v: Vec<Tensor>,
    rms: Vec<Tensor>,
    /// `[G]` Adam step counts.
    t: Tensor,
    lr: Tensor,
    l2: Tensor,
    is_adam: Tensor,
    is_rms: Tensor,
    /// `[1, G * 16, 1, 1]` dropout rate per conv channel.
    rate: Tensor,
    any_dropout: bool,
    /// `[G]` bool: the network's weights have stayed finite.
    alive: Tensor,
}

/// `[G]` → `[G, 1, ..]` with the rank of `like`.
fn per_net(xs: &Tensor, like: &Tensor) -> Result<Tensor> {
    let mut shape = vec![-1];
    shape.resize(like.dim(), 1);
    Ok(xs.f_view(shape.as_slice())?)
}

impl GroupTrainer {
    /// Initialise the networks `hypers` (in index order) on `settings.device`.
    pub fn new(hypers: &[ZooHyper], n_train: usize, settings: TrainSettings) -> Result<Self> {
        let device = settings.device;
        let mut slots: Vec<Slot> = hypers
            .iter()
            .map(|hyper| {
                let mut rng = stream_rng(settings.seed, hyper.index, Stream::Data);
                let mut perm: Vec<i64> = (0..n_train as i64).collect();
                perm.shuffle(&mut rng);
                perm.truncate((n_train as f64 * hyper.train_fraction) as usize);
                let full = perm.len() / settings.batch_size as usize;
                let steps_per_epoch = settings.steps_cap.map_or(full, |cap| cap.min(full));
                Slot { hyper: hyper.clone(), subset: perm, order: Vec::new(), rng, steps_per_epoch }
            })
            .collect();
        slots.sort_by_key(|s| s.hyper.activation != ZooActivation::Relu); // stable: ReLU first
        let g = slots.len() as i64;
        let n_relu = slots.iter().filter(|s| s.hyper.activation == ZooActivation::Relu).count();
        let rows: Vec<f32> =
            slots.iter().flat_map(|s| init_tf_row(settings.seed, &s.hyper)).collect();
        let flat = Tensor::f_from_slice(&rows)?.f_view([g, ZOO_NUM_PARAMS])?;
        let wsfeat = tf_to_wsfeat(&flat, &zoo_layout(), std::path::Path::new("<zoo layout>"))?;
        let mut params = Vec::new();
        for (w, b) in wsfeat.iter() {
            for t in [w, b] {
                params.push(
                    t.f_squeeze_dim(1)?
                        .f_to_device(device)?
                        .f_contiguous()?
                        .set_requires_grad(true),
                );
            }
        }
        let zeros = |ts: &[Tensor]| {
            ts.iter().map(|t| t.f_zeros_like()).collect::<std::result::Result<Vec<_>, _>>()
        };
        let vec = |f: &dyn Fn(&ZooHyper) -> f64| -> Result<Tensor> {
            let xs: Vec<f32> = slots.iter().map(|s| f(&s.hyper) as f32).collect();
            Ok(Tensor::f_from_slice(&xs)?.f_to_device(device)?)
        };
        let mask = |o: ZooOptimizer| -> Result<Tensor> {
            Ok(vec(&|h| f64::from(u8::from(h.optimizer == o)))?.f_gt(0.5)?)
        };
        let rate = vec(&|h| h.dropout)?.f_repeat_interleave_self_int(UNITS, 0, None)?.f_view([
            1,
            g * UNITS,
            1,
            1,
        ])?;
        Ok(GroupTrainer {
            settings,
            n_relu: n_relu as i64,
            g,
            adam_m: zeros(&params)?,
            adam_v: zeros(&params)?,
            rms: zeros(&params)?,
            params,
            t: Tensor::f_zeros([g], (Kind::Float, device))?,
            lr: vec(&|h| h.learning_rate)?,
            l2: vec(&|h| h.l2reg)?,
            is_adam: mask(ZooOptimizer::Adam)?,
            is_rms: mask(ZooOptimizer::RmsProp)?,
            rate,
            any_dropout: slots.iter().any(|s| s.hyper.dropout > 0.0),
            alive: Tensor::f_ones([g], (Kind::Bool, device))?,
            slots,
        })
    }

    /// Optimizer steps in an epoch (the most any network takes; the others sit masked off).
    pub fn steps_per_epoch(&self) -> usize {
        self.slots.iter().map(|s| s.steps_per_epoch).max().unwrap_or(0)
    }

    /// Reshuffle every network's subset for the next epoch.
    pub fn begin_epoch(&mut self) {
        for slot in &mut self.slots {
            slot.order.clone_from(&slot.subset);
            slot.order.shuffle(&mut slot.rng);
        }
    }

    /// ReLU for the first `n_relu` networks' channels, tanh for the rest.
    fn activate(&self, pre: &Tensor) -> Result<Tensor> {
        let split = self.n_relu * UNITS;
        Ok(match (self.n_relu, self.g - self.n_relu) {
            (_, 0) => pre.f_relu()?,
            (0, _) => pre.f_tanh()?,
            (_, n_tanh) => {
                let relu = pre.f_narrow(1, 0, split)?.f_relu()?;
                let tanh = pre.f_narrow(1, split, n_tanh * UNITS)?.f_tanh()?;
                Tensor::f_cat(&[relu, tanh], 1)?
            }
        })
    }

    /// Training forward pass with dropout after each conv layer (Keras `Dropout`: keep where
    /// `u >= rate`, scale by `1 / (1 - rate)`).
    ///
    /// # Shapes
    /// `xs [B, G, h, w]` → logits `[G, B, 10]`
    fn forward_train(&self, xs: &Tensor) -> Result<Tensor> {
        let b = xs.size()[0];
        let mut hs = xs.shallow_clone();
        for l in 0..3 {
            let (w, bias) = (&self.params[2 * l], &self.params[2 * l + 1]);
            let ws = w.size();
            let w = w.f_reshape([self.g * ws[1], ws[2], ws[3], ws[4]])?;
            let bias = bias.f_reshape([-1])?;
            let pre =
                hs.f_conv2d(&w, Some(&bias), [STRIDE], [ws[3] / 2, ws[4] / 2], [1], self.g)?;
            hs = self.activate(&pre)?; // [B, G * 16, h', w']
            if self.any_dropout {
                let keep = hs.f_rand_like()?.f_ge_tensor(&self.rate)?.f_to_kind(Kind::Float)?;
                hs = hs.f_mul(&keep)?.f_div(&self.rate.f_neg()?.f_add_scalar(1.0)?)?;
            }
        }
        let pooled = hs.f_mean_dim([2, 3].as_slice(), false, Kind::Float)?; // [B, G * 16]
        let pooled = pooled.f_view([b, self.g, UNITS])?.f_transpose(0, 1)?; // [G, B, 16]
        let (w3, b3) = (&self.params[6], &self.params[7]);
        Ok(pooled.f_matmul(&w3.f_transpose(1, 2)?)?.f_add(&b3.f_unsqueeze(1)?)?)
        // [G, B, 10]
    }

    /// `[G]` sum of squared kernel entries (the L2 regulariser, without its factor).
    fn kernel_sq(&self) -> Result<Tensor> {
        let mut total = Tensor::f_zeros([self.g], (Kind::Float, self.settings.device))?;
        for w in self.params.iter().step_by(2) {
            total = total.f_add(&w.f_square()?.f_flatten(1, -1)?.f_sum_dim_intlist(
                1,
                false,
                Kind::Float,
            )?)?;
        }
        Ok(total)
    }

    /// Optimizer step `s` of the current epoch: networks with fewer steps per epoch sit out.
    pub fn step(&mut self, data: &DeviceData, s: usize) -> Result<()> {
        let bsz = self.settings.batch_size as usize;
        let active: Vec<bool> = self.slots.iter().map(|slot| s < slot.steps_per_epoch).collect();
        let mut idx = Vec::with_capacity(bsz * self.slots.len());
        for b in 0..bsz {
            for (slot, &on) in self.slots.iter().zip(&active) {
                idx.push(if on { slot.order[s * bsz + b] } else { 0 });
            }
        }
        let device = self.settings.device;
        let idx = Tensor::f_from_slice(&idx)?.f_to_device(device)?;
        let size = data.train_images.size();
        let xs = data
            .train_images
            .f_index_select(0, &idx)?
            .f_view([bsz as i64, self.g, size[2], size[3]])?;
        let ys = data
            .train_labels
            .f_index_select(0, &idx)?
            .f_view([bsz as i64, self.g])?
            .f_transpose(0, 1)?;
        let logits = self.forward_train(&xs)?; // [G, B, 10]
        let ce = logits
            .f_log_softmax(-1, Kind::Float)?
            .f_gather(2, &ys.f_unsqueeze(-1)?, false)?
            .f_squeeze_dim(-1)?
            .f_mean_dim(1, false, Kind::Float)?
            .f_neg()?; // [G]
        let loss = ce.f_add(&self.l2.f_mul(&self.kernel_sq()?)?)?;
        let on = if active.iter().all(|&a| a) {
            self.alive.shallow_clone()
        } else {
            let active: Vec<u8> = active.iter().map(|&a| u8::from(a)).collect();
            self.alive
                .f_logical_and(&Tensor::f_from_slice(&active)?.f_to_device(device)?.f_gt(0)?)?
        };
        let total = loss.f_where_scalarother(&on, 0.0)?.f_sum(Kind::Float)?;
        let grads = Tensor::f_run_backward(&[total], &self.params, false, false)?;
        let _guard = tch::no_grad_guard();
        self.update(&grads, &on)
    }

    /// Adam / RMSProp / SGD updates (Keras formulas) for the networks in `on`, then mark networks
    /// with non-finite weights dead and zero them, so they cannot disturb the others.
    fn update(&mut self, grads: &[Tensor], on: &Tensor) -> Result<()> {
        self.t = self.t.f_add(&on.f_to_kind(Kind::Float)?)?;
        let pow = |beta: f64| self.t.f_mul_scalar(beta.ln()).and_then(|x| x.f_exp());
        // lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) (TF's Adam with "epsilon hat").
        let lr_t = self
            .lr
            .f_mul(&pow(ADAM_B2)?.f_neg()?.f_add_scalar(1.0)?.f_sqrt()?)?
            .f_div(&pow(ADAM_B1)?.f_neg()?.f_add_scalar(1.0)?)?;
        for (i, g) in grads.iter().enumerate() {
            let p = &self.params[i];
            let view = |xs: &Tensor| per_net(xs, p);
            let on_v = view(on)?;
            let g2 = g.f_square()?;
            let m = self.adam_m[i].f_mul_scalar(ADAM_B1)?.f_add(&g.f_mul_scalar(1.0 - ADAM_B1)?)?;
            let v =
                self.adam_v[i].f_mul_scalar(ADAM_B2)?.f_add(&g2.f_mul_scalar(1.0 - ADAM_B2)?)?;
            let r = self.rms[i].f_mul_scalar(RMS_RHO)?.f_add(&g2.f_mul_scalar(1.0 - RMS_RHO)?)?;
            let adam = view(&lr_t)?.f_mul(&m)?.f_div(&v.f_sqrt()?.f_add_scalar(EPS)?)?;
            let lr = view(&self.lr)?;
            let rms = lr.f_mul(g)?.f_div(&r.f_sqrt()?.f_add_scalar(EPS)?)?;
            let sgd = lr.f_mul(g)?;
            let upd = adam.f_where_self(
                &view(&self.is_adam)?,
                &rms.f_where_self(&view(&self.is_rms)?, &sgd)?,
            )?;
            let _ = p.shallow_clone().f_sub_(&upd.f_where_scalarother(&on_v, 0.0)?)?;
            self.adam_m[i] = m.f_where_self(&on_v, &self.adam_m[i])?;
            self.adam_v[i] = v.f_where_self(&on_v, &self.adam_v[i])?;
            self.rms[i] = r.f_where_self(&on_v, &self.rms[i])?;
        }
        for p in &self.params {
            let finite = p.f_isfinite()?.f_flatten(1, -1)?.f_all_dim(1, false)?;
            self.alive = self.alive.f_logical_and(&finite)?;
        }
        for p in &self.params {
            let zeroed = p.f_where_scalarother(&per_net(&self.alive, p)?, 0.0)?;
            p.shallow_clone().f_copy_(&zeroed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cnn_zoo::generate::HyperSpace;

    fn data(n: i64) -> DeviceData {
        tch::manual_seed(0);
        let opts = (Kind::Float, Device::Cpu);
        let labels = Tensor::randint(10, [n], (Kind::Int64, Device::Cpu));
        DeviceData {
            train_images: Tensor::randn([n, 1, 8, 8], opts),
            train_labels: labels.shallow_clone(),
            test_images: Tensor::randn([16, 1, 8, 8], opts),
            test_labels: labels.narrow(0, 0, 16),
        }
    }

    fn settings() -> TrainSettings {
        TrainSettings {
            seed: 5,
            batch_size: 8,
            steps_cap: Some(3),
            train_eval_cap: Some(16),
            eval_batch: 8,
            device: Device::Cpu,
        }
    }

    fn hypers(indices: &[usize]) -> Vec<ZooHyper> {
        let space = HyperSpace { dropout: [0.0, 0.0], ..Default::default() };
        indices.iter().map(|&i| space.sample(5, i)).collect()
    }

    #[test]
    fn a_network_trains_the_same_alone_or_in_a_group() {
        let d = data(64);
        let mut group =
            GroupTrainer::new(&hypers(&[0, 1, 2, 3, 4]), 64, settings()).expect("group");
        let mut alone = GroupTrainer::new(&hypers(&[3]), 64, settings()).expect("alone");
        for trainer in [&mut group, &mut alone] {
            for _ in 0..2 {
                trainer.begin_epoch();
                for s in 0..trainer.steps_per_epoch() {
                    trainer.step(&d, s).expect("step");
                }
            }
        }
        let (g, a) =
            (group.checkpoint(&d).expect("checkpoint"), alone.checkpoint(&d).expect("checkpoint"));
        let (g, a) = (&g[3], &a[0]);
        assert_eq!((g.index, a.index), (3, 3));
        let diff =
            g.weights.iter().zip(&a.weights).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-5, "max weight difference {diff}");
        assert!(
            (g.test_loss - a.test_loss).abs() < 1e-4
                && (g.test_accuracy - a.test_accuracy).abs() < 1e-9
        );
    }

    #[test]
    fn first_steps_have_the_keras_sizes() {
        // Adam's first step moves each weight by about lr, RMSProp's by about sqrt(10) lr.
        let d = data(64);
        let mut hs = hypers(&[0, 1]);
        hs[0].optimizer = ZooOptimizer::Adam;
        hs[1].optimizer = ZooOptimizer::RmsProp;
        for h in &mut hs {
            h.l2reg = 0.0;
            h.learning_rate = 1e-3;
            h.activation = ZooActivation::Tanh;
        }
        let mut trainer = GroupTrainer::new(&hs, 64, settings()).expect("trainer");
        let before = trainer.params[2].detach().copy(); // W1 [2, 16, 16, 3, 3]
        trainer.begin_epoch();
        trainer.step(&d, 0).expect("step");
        let delta = (trainer.params[2].detach() - before).abs().flatten(1, -1);
        let max = Vec::<f64>::try_from(delta.amax([1].as_slice(), false).to_kind(Kind::Double))
            .expect("f64");
        assert!((max[0] / 1e-3 - 1.0).abs() < 1e-3, "Adam step {}", max[0]);
        assert!((max[1] / (10f64.sqrt() * 1e-3) - 1.0).abs() < 1e-3, "RMSProp step {}", max[1]);
    }
}
