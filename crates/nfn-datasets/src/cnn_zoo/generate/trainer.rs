//! The batched trainer: `G` zoo CNNs trained as one computation. Parameters are leaf tensors with a
//! leading network axis; the convolutions are grouped (`groups` = networks), as in
//! [`nfn_weightspace::evaluate_cnn`], one computation per block of networks sharing an activation
//! (ReLU networks first, then tanh), so that no activation is split and rejoined; the loss is the sum
//! over networks of each one's mean cross-entropy plus its L2 term, so each network's gradient is its
//! own; the optimizer update is vectorised over networks, with per-network learning rates and
//! optimizers chosen by masks.
//!
//! Dropout (Keras: keep where a uniform draw `u >= rate`, scale kept values by `1 / (1 - rate)`) is
//! applied as `act(pre * keep)` in place, which equals `act(pre) * keep` because both activations
//! map 0 to 0, with the `1 / (1 - rate)` folded into the next layer's weights (a per-input-channel
//! factor). On the CPU the keep masks are drawn in parallel from each network's own stream
//! ([`keep_masks`]), so a network's training does not depend on the group it is in; LibTorch's CPU
//! generator is serial (one layer's mask took 64 ms for 256 networks at batch 32). On a GPU they are
//! drawn on the device by LibTorch's generator.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::rand_core::RngCore;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

use super::hyper::{stream_rng, stream_seed, Stream, ZooActivation, ZooHyper, ZooOptimizer};
use super::init::init_tf_row;
use super::layout::zoo_layout;
use crate::cnn_zoo::{tf_to_wsfeat, ZOO_NUM_PARAMS};
use crate::error::Result;

mod checkpoint;

/// Conv stride of the zoo network (reference `cnn_stride = 2`).
pub(crate) const STRIDE: i64 = 2;
/// Hidden channels per conv layer.
const UNITS: i64 = 16;
/// Conv layers (each followed by the activation and dropout).
const CONV_LAYERS: usize = 3;
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
    /// Seed of its dropout masks.
    dropout_seed: u64,
}

/// A contiguous block of the internal order whose networks share an activation.
#[derive(Debug, Clone, Copy)]
struct Block {
    start: i64,
    len: i64,
    activation: ZooActivation,
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
    /// `(optimizer, start, len)`: the runs of the internal order that share an optimizer.
    runs: Vec<(ZooOptimizer, i64, i64)>,
    /// `[G]` the scale `1 / (1 - rate)` of each network's kept activations.
    keep_scale: Tensor,
    /// Each network's dropout rate and the seed of its dropout streams, in the internal order.
    dropout_rates: Vec<f32>,
    dropout_seeds: Vec<u64>,
    any_dropout: bool,
    /// Epochs begun (a part of the dropout streams' keys).
    epoch: u64,
    /// Reused host buffer of the dropout masks drawn on the CPU.
    mask_buf: Vec<u8>,
    /// `[G]` bool: the network's weights have stayed finite.
    alive: Tensor,
    /// Every entry of `alive` is true.
    all_alive: bool,
}

/// Keras dropout keep masks `[b, n * 16, h, w]` as 1 (kept) or 0, written into `out`, for `n`
/// networks with rates `rates` and dropout seeds `seeds`, `plane = h * w`. The 16 channels of
/// network `j` in batch row `r` are drawn from a xoshiro256++ stream seeded by (`seeds[j]`, `key`,
/// `r`), four 16-bit uniform draws `u` per 64-bit output, kept where `u >= rate` (the rate rounded
/// up to a multiple of 2^-16), so a network's masks depend on its own seed and the key only, and
/// rows are drawn in parallel.
fn keep_masks(seeds: &[u64], rates: &[f32], key: u64, b: usize, plane: usize, out: &mut Vec<u8>) {
    let n = seeds.len();
    let per = UNITS as usize * plane;
    let thresholds: Vec<u64> =
        rates.iter().map(|&r| (f64::from(r) * 65536.0).ceil().min(65536.0) as u64).collect();
    out.resize(b * n * per, 0);
    out.par_chunks_mut(per).enumerate().for_each(|(i, chunk)| {
        let (row, j) = (i / n, i % n);
        let stream = seeds[j] ^ key.wrapping_add(row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(stream);
        let threshold = thresholds[j];
        let keep = |bits: u64| u8::from(bits & 0xFFFF >= threshold);
        let mut quads = chunk.chunks_exact_mut(4);
        for q in &mut quads {
            let r = rng.next_u64();
            q.copy_from_slice(&[keep(r), keep(r >> 16), keep(r >> 32), keep(r >> 48)]);
        }
        let r = rng.next_u64();
        for (k, v) in quads.into_remainder().iter_mut().enumerate() {
            *v = keep(r >> (16 * k));
        }
    });
}

/// The dropout key of (epoch, step, layer): rows are added to it, so it leaves 2^20 of room.
fn dropout_key(epoch: u64, step: usize, layer: usize) -> u64 {
    ((epoch << 24 | step as u64) * CONV_LAYERS as u64 + layer as u64) << 20
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
                Slot {
                    hyper: hyper.clone(),
                    subset: perm,
                    order: Vec::new(),
                    rng,
                    steps_per_epoch,
                    dropout_seed: stream_seed(settings.seed, hyper.index, Stream::Dropout),
                }
            })
            .collect();
        // stable: ReLU first, then by optimizer (contiguous runs for the update)
        slots.sort_by_key(|s| (s.hyper.activation != ZooActivation::Relu, s.hyper.optimizer as u8));
        let mut runs: Vec<(ZooOptimizer, i64, i64)> = Vec::new();
        for (i, slot) in slots.iter().enumerate() {
            match runs.last_mut() {
                Some((o, _, len)) if *o == slot.hyper.optimizer => *len += 1,
                _ => runs.push((slot.hyper.optimizer, i as i64, 1)),
            }
        }
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
            keep_scale: vec(&|h| 1.0 / (1.0 - h.dropout))?,
            dropout_rates: slots.iter().map(|s| s.hyper.dropout as f32).collect(),
            dropout_seeds: slots.iter().map(|s| s.dropout_seed).collect(),
            runs,
            any_dropout: slots.iter().any(|s| s.hyper.dropout > 0.0),
            epoch: 0,
            mask_buf: Vec::new(),
            alive: Tensor::f_ones([g], (Kind::Bool, device))?,
            all_alive: true,
            slots,
        })
    }

    /// Optimizer steps in an epoch (the most any network takes; the others sit masked off).
    pub fn steps_per_epoch(&self) -> usize {
        self.slots.iter().map(|s| s.steps_per_epoch).max().unwrap_or(0)
    }

    /// Reshuffle every network's subset for the next epoch.
    pub fn begin_epoch(&mut self) {
        self.epoch += 1;
        for slot in &mut self.slots {
            slot.order.clone_from(&slot.subset);
            slot.order.shuffle(&mut slot.rng);
        }
    }

    /// The blocks of the internal order: ReLU networks, then tanh networks (empty ones left out).
    fn blocks(&self) -> Vec<Block> {
        [
            Block { start: 0, len: self.n_relu, activation: ZooActivation::Relu },
            Block {
                start: self.n_relu,
                len: self.g - self.n_relu,
                activation: ZooActivation::Tanh,
            },
        ]
        .into_iter()
        .filter(|b| b.len > 0)
        .collect()
    }

    /// Keep masks `[b, len * 16, h, w]` (1 or 0) for the networks of `block` at conv `layer` of
    /// step `step`, shaped like that layer's output `pre`.
    fn keep_mask(
        &self,
        block: Block,
        pre: &Tensor,
        step: usize,
        layer: usize,
        buf: &mut Vec<u8>,
    ) -> Result<Tensor> {
        let size = pre.size();
        let range = block.start as usize..(block.start + block.len) as usize;
        let rates = &self.dropout_rates[range.clone()];
        let device = self.settings.device;
        if device != Device::Cpu {
            let rate = Tensor::f_from_slice(rates)?
                .f_to_device(device)?
                .f_repeat_interleave_self_int(UNITS, 0, None)?
                .f_view([1, -1, 1, 1])?;
            return Ok(pre.f_rand_like()?.f_ge_tensor(&rate)?.f_to_kind(Kind::Float)?);
        }
        let key = dropout_key(self.epoch, step, layer);
        keep_masks(
            &self.dropout_seeds[range],
            rates,
            key,
            size[0] as usize,
            (size[2] * size[3]) as usize,
            buf,
        );
        Ok(Tensor::f_from_slice(buf)?.f_view(size.as_slice())?.f_to_kind(Kind::Float)?)
    }

    /// Training forward pass of one block at step `step`, dropout after each conv layer.
    ///
    /// # Shapes
    /// `xs [B, len, h, w]` → logits `[len, B, 10]`
    fn forward_block(
        &self,
        block: Block,
        xs: &Tensor,
        step: usize,
        buf: &mut Vec<u8>,
    ) -> Result<Tensor> {
        let Block { start, len, activation } = block;
        let b = xs.size()[0];
        // `[len]` the factor of the previous layer's kept activations, folded into this layer.
        let scale = self.keep_scale.f_narrow(0, start, len)?;
        let folded = |w: Tensor| -> Result<Tensor> {
            Ok(if self.any_dropout { w.f_mul(&per_net(&scale, &w)?)? } else { w })
        };
        let mut hs = xs.shallow_clone();
        for l in 0..CONV_LAYERS {
            let w = self.params[2 * l].f_narrow(0, start, len)?; // [len, out, in, kh, kw]
            let w = if l > 0 { folded(w)? } else { w };
            let ws = w.size();
            let w = w.f_reshape([len * ws[1], ws[2], ws[3], ws[4]])?;
            let bias = self.params[2 * l + 1].f_narrow(0, start, len)?.f_reshape([-1])?;
            let mut pre =
                hs.f_conv2d(&w, Some(&bias), [STRIDE], [ws[3] / 2, ws[4] / 2], [1], len)?;
            if self.any_dropout {
                let keep = self.keep_mask(block, &pre, step, l, buf)?;
                pre = pre.f_mul_(&keep)?;
            }
            hs = match activation {
                ZooActivation::Relu => pre.f_relu_()?,
                ZooActivation::Tanh => pre.f_tanh_()?,
            }; // [B, len * 16, h', w']
        }
        let pooled = hs.f_mean_dim([2, 3].as_slice(), false, Kind::Float)?; // [B, len * 16]
        let pooled = pooled.f_view([b, len, UNITS])?.f_transpose(0, 1)?; // [len, B, 16]
        let w3 = folded(self.params[6].f_narrow(0, start, len)?)?; // [len, 10, 16]
        let b3 = self.params[7].f_narrow(0, start, len)?;
        Ok(pooled.f_matmul(&w3.f_transpose(1, 2)?)?.f_add(&b3.f_unsqueeze(1)?)?)
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
        let device = self.settings.device;
        let size = data.train_images.size();
        let (mut logits, mut ys) = (Vec::new(), Vec::new());
        let mut buf = std::mem::take(&mut self.mask_buf);
        for block in self.blocks() {
            let mut idx = Vec::with_capacity(bsz * block.len as usize);
            for b in 0..bsz {
                for (slot, &on) in self
                    .slots
                    .iter()
                    .zip(&active)
                    .skip(block.start as usize)
                    .take(block.len as usize)
                {
                    idx.push(if on { slot.order[s * bsz + b] } else { 0 });
                }
            }
            let idx = Tensor::f_from_slice(&idx)?.f_to_device(device)?;
            let xs = data
                .train_images
                .f_index_select(0, &idx)?
                .f_view([bsz as i64, block.len, size[2], size[3]])?;
            logits.push(self.forward_block(block, &xs, s, &mut buf)?); // [len, B, 10]
            ys.push(
                data.train_labels
                    .f_index_select(0, &idx)?
                    .f_view([bsz as i64, block.len])?
                    .f_transpose(0, 1)?,
            );
        }
        self.mask_buf = buf;
        let (logits, ys) = (Tensor::f_cat(&logits, 0)?, Tensor::f_cat(&ys, 0)?); // [G, B, 10], [G, B]
        let ce = logits
            .f_log_softmax(-1, Kind::Float)?
            .f_gather(2, &ys.f_unsqueeze(-1)?, false)?
            .f_squeeze_dim(-1)?
            .f_mean_dim(1, false, Kind::Float)?
            .f_neg()?; // [G]
        let loss = ce.f_add(&self.l2.f_mul(&self.kernel_sq()?)?)?;
        let all_active = active.iter().all(|&a| a);
        let on = if all_active {
            self.alive.shallow_clone()
        } else {
            let active: Vec<u8> = active.iter().map(|&a| u8::from(a)).collect();
            self.alive
                .f_logical_and(&Tensor::f_from_slice(&active)?.f_to_device(device)?.f_gt(0)?)?
        };
        let total = loss.f_where_scalarother(&on, 0.0)?.f_sum(Kind::Float)?;
        let grads = Tensor::f_run_backward(&[total], &self.params, false, false)?;
        let _guard = tch::no_grad_guard();
        self.update(&grads, &on, all_active && self.all_alive)
    }

    /// Adam / RMSProp / SGD updates (Keras formulas) for the networks in `on`, then mark networks
    /// with non-finite weights dead and zero them, so they cannot disturb the others. With
    /// `all_on` (every network in `on`: most steps), each run of networks sharing an optimizer is
    /// updated in place with only its own optimizer's state; otherwise every state is computed for
    /// every network and kept where `on`, by masks.
    fn update(&mut self, grads: &[Tensor], on: &Tensor, all_on: bool) -> Result<()> {
        self.t = self.t.f_add(&on.f_to_kind(Kind::Float)?)?;
        let pow = |beta: f64| self.t.f_mul_scalar(beta.ln()).and_then(|x| x.f_exp());
        // lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) (TF's Adam with "epsilon hat").
        let lr_t = self
            .lr
            .f_mul(&pow(ADAM_B2)?.f_neg()?.f_add_scalar(1.0)?.f_sqrt()?)?
            .f_div(&pow(ADAM_B1)?.f_neg()?.f_add_scalar(1.0)?)?;
        if all_on {
            self.update_runs(grads, &lr_t)?;
        } else {
            self.update_masked(grads, on, &lr_t)?;
        }
        for p in &self.params {
            let finite = p.f_isfinite()?.f_flatten(1, -1)?.f_all_dim(1, false)?;
            self.alive = self.alive.f_logical_and(&finite)?;
        }
        self.all_alive = self.alive.f_all()?.f_int64_value(&[])? != 0;
        if !self.all_alive {
            for p in &self.params {
                let zeroed = p.f_where_scalarother(&per_net(&self.alive, p)?, 0.0)?;
                p.shallow_clone().f_copy_(&zeroed)?;
            }
        }
        Ok(())
    }

    /// The update of [`Self::update`] when every network takes it: per run of one optimizer, in
    /// place.
    fn update_runs(&self, grads: &[Tensor], lr_t: &Tensor) -> Result<()> {
        for (i, g) in grads.iter().enumerate() {
            for &(optimizer, start, len) in &self.runs {
                let net = |xs: &Tensor| xs.f_narrow(0, start, len);
                let g = net(g)?;
                let lr = |rates: &Tensor| per_net(&net(rates)?, &g);
                let upd = match optimizer {
                    ZooOptimizer::Adam => {
                        let m = net(&self.adam_m[i])?
                            .f_mul_scalar_(ADAM_B1)?
                            .f_add_(&g.f_mul_scalar(1.0 - ADAM_B1)?)?;
                        let v = net(&self.adam_v[i])?
                            .f_mul_scalar_(ADAM_B2)?
                            .f_add_(&g.f_square()?.f_mul_scalar_(1.0 - ADAM_B2)?)?;
                        lr(lr_t)?.f_mul(&m)?.f_div_(&v.f_sqrt()?.f_add_scalar_(EPS)?)?
                    }
                    ZooOptimizer::RmsProp => {
                        let r = net(&self.rms[i])?
                            .f_mul_scalar_(RMS_RHO)?
                            .f_add_(&g.f_square()?.f_mul_scalar_(1.0 - RMS_RHO)?)?;
                        lr(&self.lr)?.f_mul(&g)?.f_div_(&r.f_sqrt()?.f_add_scalar_(EPS)?)?
                    }
                    ZooOptimizer::Sgd => lr(&self.lr)?.f_mul(&g)?,
                };
                let _ = net(&self.params[i])?.f_sub_(&upd)?;
            }
        }
        Ok(())
    }

    /// The update of [`Self::update`] for the networks in `on` only, by masks.
    fn update_masked(&mut self, grads: &[Tensor], on: &Tensor, lr_t: &Tensor) -> Result<()> {
        for (i, g) in grads.iter().enumerate() {
            let p = &self.params[i];
            let view = |xs: &Tensor| per_net(xs, p);
            let on_v = view(on)?;
            let g2 = g.f_square()?;
            let m = self.adam_m[i].f_mul_scalar(ADAM_B1)?.f_add(&g.f_mul_scalar(1.0 - ADAM_B1)?)?;
            let v =
                self.adam_v[i].f_mul_scalar(ADAM_B2)?.f_add(&g2.f_mul_scalar(1.0 - ADAM_B2)?)?;
            let r = self.rms[i].f_mul_scalar(RMS_RHO)?.f_add(&g2.f_mul_scalar(1.0 - RMS_RHO)?)?;
            let adam = view(lr_t)?.f_mul(&m)?.f_div(&v.f_sqrt()?.f_add_scalar(EPS)?)?;
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

    fn hypers(indices: &[usize], dropout: [f64; 2]) -> Vec<ZooHyper> {
        let space = HyperSpace { dropout, ..Default::default() };
        indices.iter().map(|&i| space.sample(5, i)).collect()
    }

    #[test]
    fn keep_masks_keep_one_minus_the_rate_and_follow_the_network_not_its_place() {
        let (plane, b) = (64, 8);
        let (mut alone, mut group) = (Vec::new(), Vec::new());
        keep_masks(&[11], &[0.3], 7 << 20, b, plane, &mut alone);
        keep_masks(&[5, 9, 11], &[0.0, 0.9, 0.3], 7 << 20, b, plane, &mut group);
        let per = UNITS as usize * plane;
        for (row, chunk) in alone.chunks(per).enumerate() {
            assert_eq!(chunk, &group[(3 * row + 2) * per..(3 * row + 3) * per], "row {row}");
        }
        for (j, rate) in [0.0, 0.9, 0.3].into_iter().enumerate() {
            let kept: usize = (0..b)
                .map(|row| group[(3 * row + j) * per..(3 * row + j + 1) * per].iter())
                .flat_map(|c| c.map(|&v| usize::from(v)))
                .sum();
            let n = (b * per) as f64;
            // 4 standard deviations of a binomial count (0 for rate 0).
            let sd = (n * rate * (1.0 - rate)).sqrt();
            let expected = n * (1.0 - rate);
            assert!((kept as f64 - expected).abs() <= 4.0 * sd, "rate {rate}: kept {kept} of {n}");
        }
        let mut other = Vec::new();
        keep_masks(&[11], &[0.3], 8 << 20, b, plane, &mut other);
        assert_ne!(alone, other, "another key draws other masks");
    }

    #[test]
    fn the_folded_dropout_equals_keras_dropout_after_the_activation() {
        // act(pre * keep) with 1 / (1 - rate) folded into the next layer equals Keras'
        // act(pre) * keep / (1 - rate), for both activations.
        let d = data(64);
        let mut hs = hypers(&[0, 1], [0.5, 0.5]);
        hs[0].activation = ZooActivation::Relu;
        hs[1].activation = ZooActivation::Tanh;
        let trainer = GroupTrainer::new(&hs, 64, settings()).expect("trainer");
        let xs = d.train_images.narrow(0, 0, 16).view([8, 2, 8, 8]);
        for block in trainer.blocks() {
            let xs = xs.narrow(1, block.start, 1);
            let mut buf = Vec::new();
            let got = trainer.forward_block(block, &xs, 4, &mut buf).expect("forward");
            let mut h = xs.shallow_clone();
            for l in 0..CONV_LAYERS {
                let w = trainer.params[2 * l].narrow(0, block.start, 1).squeeze_dim(0);
                let bias = trainer.params[2 * l + 1].narrow(0, block.start, 1).reshape([-1]);
                let pre = h.conv2d(&w, Some(&bias), [STRIDE], [1], [1], 1);
                let keep = trainer.keep_mask(block, &pre, 4, l, &mut buf).expect("mask");
                let act = match block.activation {
                    ZooActivation::Relu => pre.relu(),
                    ZooActivation::Tanh => pre.tanh(),
                };
                h = act * keep / 0.5;
            }
            let w3 = trainer.params[6].narrow(0, block.start, 1).squeeze_dim(0);
            let b3 = trainer.params[7].narrow(0, block.start, 1);
            let want = h.mean_dim([2, 3].as_slice(), false, Kind::Float).matmul(&w3.tr()) + b3;
            let diff = (got.squeeze_dim(0) - want).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{:?}: max difference {diff}", block.activation);
        }
    }

    #[test]
    fn a_network_trains_the_same_alone_or_in_a_group() {
        let d = data(64);
        // Dropout included: a network's masks are drawn from its own stream.
        let dropout = [0.2, 0.6];
        let mut group =
            GroupTrainer::new(&hypers(&[0, 1, 2, 3, 4], dropout), 64, settings()).expect("group");
        let mut alone = GroupTrainer::new(&hypers(&[3], dropout), 64, settings()).expect("alone");
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
        let mut hs = hypers(&[0, 1], [0.0, 0.0]);
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
