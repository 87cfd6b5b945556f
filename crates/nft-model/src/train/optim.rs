//! AdamW with a warm-up schedule and gradient clipping, whose state can be checkpointed.
//!
//! tch's built-in optimisers keep their moments inside LibTorch where they cannot be saved, so a resumed
//! run would restart Adam from zero. This one keeps the moments as tensors ([`AdamW::state`]), which the
//! trainer writes into its checkpoints for an exact resume. Reference schedules: design.md §5.4, §8.20.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Kind, Tensor};

use crate::error::{Error, Result};

/// How the learning rate evolves after the linear warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Constant after warm-up (NFN classification and editing).
    Constant,
    /// Cosine from the peak to exactly 0 at the last step (Inr2Array).
    Cosine,
}

/// Optimiser settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Peak learning rate (NFN classification: 1e-4; Inr2Array: 1e-4).
    pub lr: f64,
    /// Decoupled weight decay (0 = Adam; Inr2Array uses 0.01).
    pub weight_decay: f64,
    /// Adam's beta1 and beta2 (PyTorch defaults).
    pub betas: (f64, f64),
    /// Adam's epsilon (PyTorch default).
    pub eps: f64,
    /// Linear warm-up steps; the factor is `step / warmup` (0 at step 0).
    pub warmup_steps: u64,
    /// What follows the warm-up.
    pub schedule: Schedule,
    /// Clip the global gradient norm to this value, if set.
    pub grad_clip: Option<f64>,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            lr: 1e-4,             // classify_siren: Adam lr 1e-4
            weight_decay: 0.0,    // plain Adam
            betas: (0.9, 0.999),  // PyTorch default
            eps: 1e-8,            // PyTorch default
            warmup_steps: 10_000, // classify_siren warm-up
            schedule: Schedule::Constant,
            grad_clip: None, // the reference does not clip
        }
    }
}

impl OptimConfig {
    /// Check the values.
    ///
    /// # Errors
    /// [`Error::Config`] for a non-positive learning rate, betas outside `[0, 1)`, or a negative decay.
    pub fn validate(&self) -> Result<()> {
        let (b1, b2) = self.betas;
        let ok = self.lr > 0.0
            && self.weight_decay >= 0.0
            && (0.0..1.0).contains(&b1)
            && (0.0..1.0).contains(&b2)
            && self.eps > 0.0
            && self.grad_clip.is_none_or(|c| c > 0.0);
        if ok {
            Ok(())
        } else {
            Err(Error::Config(format!("bad optimiser settings: {self:?}")))
        }
    }

    /// The learning rate at `step` (0-based) of a run of `total_steps`.
    pub fn lr_at(&self, step: u64, total_steps: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * step as f64 / self.warmup_steps as f64;
        }
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                let span = total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

/// AdamW (decoupled weight decay, bias-corrected moments) over a VarStore's trainable variables.
#[derive(Debug)]
pub struct AdamW {
    cfg: OptimConfig,
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: u64,
}

impl AdamW {
    /// An optimiser for every trainable variable of `vs`.
    pub fn new(vs: &VarStore, cfg: &OptimConfig) -> Self {
        let mut params: Vec<(String, Tensor)> =
            vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |ps: &[(String, Tensor)]| ps.iter().map(|(_, p)| p.zeros_like()).collect();
        AdamW { cfg: cfg.clone(), m: zeros(&params), v: zeros(&params), params, t: 0 }
    }

    /// Zero every parameter's gradient.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// The global L2 norm of the gradients: one norm per tensor, read back once.
    pub fn grad_norm(&self) -> f64 {
        let norms: Vec<Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(Tensor::defined)
            .map(|g| g.norm().to_kind(Kind::Double))
            .collect();
        if norms.is_empty() {
            return 0.0;
        }
        Tensor::stack(&norms, 0).square().sum(Kind::Double).sqrt().double_value(&[])
    }

    /// One update with learning rate `lr`, after clipping (if configured). Returns the gradient norm
    /// before clipping.
    ///
    /// In place, as LibTorch's own Adam: `m <- lerp(m, g, 1 - b1)`, `v <- lerp(v, g^2, 1 - b2)`,
    /// and `p <- p - lr / bc1 * m / (sqrt(v / bc2) + eps)` as one `addcdiv_` whose divisor carries
    /// the step size, so that each parameter costs two temporaries and seven passes over memory.
    pub fn step(&mut self, lr: f64) -> f64 {
        let norm = self.grad_norm();
        let clip =
            self.cfg.grad_clip.map_or(1.0, |c| if norm > c { c / (norm + 1e-6) } else { 1.0 });
        self.t += 1;
        let (b1, b2) = self.cfg.betas;
        let bc1 = 1.0 - b1.powi(self.t as i32);
        let bc2_sqrt = (1.0 - b2.powi(self.t as i32)).sqrt();
        // sqrt(v / bc2) + eps = (sqrt(v) + eps bc2_sqrt) / bc2_sqrt; the divisor of m is that
        // times -bc1 / lr
        let (eps_scaled, divisor_scale) = (self.cfg.eps * bc2_sqrt, -bc1 / (lr * bc2_sqrt));
        tch::no_grad(|| {
            for (((_, p), m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let g = if clip < 1.0 { g * clip } else { g };
                let _ = m.lerp_(&g, 1.0 - b1);
                let _ = v.lerp_(&g.square(), 1.0 - b2);
                if lr == 0.0 {
                    continue; // the first warm-up step moves nothing
                }
                if self.cfg.weight_decay > 0.0 {
                    let _ = p.g_mul_scalar_(1.0 - lr * self.cfg.weight_decay);
                }
                let mut divisor = v.sqrt();
                let _ = divisor.g_add_scalar_(eps_scaled).g_mul_scalar_(divisor_scale);
                let _ = p.addcdiv_(m, &divisor);
            }
        });
        norm
    }

    /// Steps taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.t
    }

    /// The moments as named tensors (`m.<var>`, `v.<var>`) plus the step count, for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("t".to_string(), Tensor::from(self.t as i64))];
        for ((name, _), (m, v)) in self.params.iter().zip(self.m.iter().zip(&self.v)) {
            out.push((format!("m.{name}"), m.shallow_clone()));
            out.push((format!("v.{name}"), v.shallow_clone()));
        }
        out
    }

    /// Restore moments saved by [`Self::state`].
    ///
    /// # Errors
    /// [`Error::Config`] naming the first missing or mis-shaped entry.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let map: BTreeMap<&str, &Tensor> = state.iter().map(|(k, t)| (k.as_str(), t)).collect();
        let get = |key: &str, like: &Tensor| -> Result<Tensor> {
            let t = map
                .get(key)
                .ok_or_else(|| Error::Config(format!("optimizer state lacks {key}")))?;
            if t.size() != like.size() {
                return Err(Error::Config(format!(
                    "optimizer state {key} has shape {:?}",
                    t.size()
                )));
            }
            Ok(t.to_kind(like.kind()).to_device(like.device()))
        };
        let t = map.get("t").ok_or_else(|| Error::Config("optimizer state lacks t".into()))?;
        let mut m = Vec::with_capacity(self.params.len());
        let mut v = Vec::with_capacity(self.params.len());
        for (name, p) in &self.params {
            m.push(get(&format!("m.{name}"), p)?);
            v.push(get(&format!("v.{name}"), p)?);
        }
        self.t = t.int64_value(&[]) as u64;
        self.m = m;
        self.v = v;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_reaches_zero() {
        let cfg = OptimConfig {
            lr: 1.0,
            warmup_steps: 10,
            schedule: Schedule::Cosine,
            ..Default::default()
        };
        assert_eq!(cfg.lr_at(0, 110), 0.0);
        assert!((cfg.lr_at(5, 110) - 0.5).abs() < 1e-12);
        assert!((cfg.lr_at(10, 110) - 1.0).abs() < 1e-12);
        assert!((cfg.lr_at(60, 110) - 0.5).abs() < 1e-12);
        assert!(cfg.lr_at(110, 110).abs() < 1e-12);
        let constant = OptimConfig { lr: 2.0, warmup_steps: 0, ..Default::default() };
        assert_eq!(constant.lr_at(1000, 10), 2.0);
    }

    #[test]
    fn matches_torch_adamw_on_a_quadratic() {
        // Our AdamW against tch's built-in AdamW (LibTorch's implementation) for a few steps.
        let run = |ours: bool| -> Vec<f64> {
            tch::manual_seed(0);
            let vs = VarStore::new(tch::Device::Cpu);
            let w = vs.root().randn("w", &[5], 0.0, 1.0);
            let cfg =
                OptimConfig { lr: 0.1, weight_decay: 0.01, warmup_steps: 0, ..Default::default() };
            let mut builtin = tch::nn::OptimizerConfig::build(
                tch::nn::AdamW { wd: 0.01, ..Default::default() },
                &vs,
                0.1,
            )
            .expect("optimizer");
            let mut adam = AdamW::new(&vs, &cfg);
            for _ in 0..5 {
                let loss = (&w * &w).sum(Kind::Float) + w.sum(Kind::Float);
                if ours {
                    adam.zero_grad();
                    loss.backward();
                    adam.step(0.1);
                } else {
                    builtin.backward_step(&loss);
                }
            }
            Vec::<f64>::try_from(w.to_kind(Kind::Double)).expect("1-d")
        };
        let (a, b) = (run(true), run(false));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn matches_the_textbook_update_with_clipping_and_a_zero_first_rate() {
        // our in-place update against Adam written out in f64, on a gradient clipped to norm 1,
        // with the warm-up's zero rate first (moments move, weights don't)
        let vs = VarStore::new(tch::Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[0.5f32, -1.0, 2.0]));
        let cfg = OptimConfig {
            lr: 0.1,
            weight_decay: 0.02,
            warmup_steps: 0,
            grad_clip: Some(1.0),
            ..Default::default()
        };
        let mut adam = AdamW::new(&vs, &cfg);
        let (mut p, mut m, mut v) = ([0.5f64, -1.0, 2.0], [0.0f64; 3], [0.0f64; 3]);
        for (t, lr) in [0.0, 0.1, 0.05, 0.1].into_iter().enumerate() {
            adam.zero_grad();
            // loss = sum(3 w^2): gradient 6 w, norm well above 1
            (&w * &w * 3.0).sum(Kind::Float).backward();
            let norm = adam.step(lr);
            let g: Vec<f64> = p.iter().map(|x| 6.0 * x).collect();
            let g_norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((norm - g_norm).abs() < 1e-4 * g_norm, "norm {norm} vs {g_norm}");
            let clip = 1.0 / (g_norm + 1e-6);
            let t = t as i32 + 1;
            for i in 0..3 {
                let gi = g[i] * clip;
                m[i] = 0.9 * m[i] + 0.1 * gi;
                v[i] = 0.999 * v[i] + 0.001 * gi * gi;
                if lr > 0.0 {
                    p[i] *= 1.0 - lr * 0.02;
                    let (mh, vh) = (m[i] / (1.0 - 0.9f64.powi(t)), v[i] / (1.0 - 0.999f64.powi(t)));
                    p[i] -= lr * mh / (vh.sqrt() + 1e-8);
                }
            }
            let ours = Vec::<f64>::try_from(w.to_kind(Kind::Double)).expect("1-d");
            for (a, b) in ours.iter().zip(&p) {
                assert!((a - b).abs() < 1e-5, "step {t}: {ours:?} vs {p:?}");
            }
        }
    }
}
