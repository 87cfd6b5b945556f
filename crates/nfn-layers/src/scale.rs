//! Learned per-tensor output scale (design.md §2.6).

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::module::WsModuleT;

/// Configuration of [`LearnedScale`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnedScaleConfig {
    /// Initial value of every scale.
    pub init_scale: f64,
}

impl Default for LearnedScaleConfig {
    fn default() -> Self {
        // `out_scale` of the editing models, so initial edits are tiny (design.md §2.6).
        LearnedScaleConfig { init_scale: 0.01 }
    }
}

impl LearnedScaleConfig {
    /// Check a finite initial scale.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        if !self.init_scale.is_finite() {
            return Err(Error::Config(format!(
                "init_scale must be finite, got {}",
                self.init_scale
            )));
        }
        Ok(())
    }
}

/// One learned scalar per weight tensor and one per bias tensor, multiplied into the features.
///
/// Parameters: `weight_scales` `[L]`, `bias_scales` `[L]`.
#[derive(Debug)]
pub struct LearnedScale {
    weight_scales: Tensor,
    bias_scales: Tensor,
}

impl LearnedScale {
    /// Scales for `spec`, all set to `cfg.init_scale`.
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &LearnedScaleConfig) -> Result<Self> {
        cfg.validate()?;
        let n = spec.num_layers() as i64;
        Ok(LearnedScale {
            weight_scales: vs.var("weight_scales", &[n], Init::Const(cfg.init_scale)),
            bias_scales: vs.var("bias_scales", &[n], Init::Const(cfg.init_scale)),
        })
    }
}

impl WsModuleT for LearnedScale {
    /// # Shapes
    /// Every tensor keeps its shape.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, _train: bool) -> WeightSpaceFeatures {
        let (weights, biases) = wsfeat
            .iter()
            .enumerate()
            .map(|(l, (w, b))| {
                let l = l as i64;
                (w * self.weight_scales.get(l), b * self.bias_scales.get(l))
            })
            .unzip();
        WeightSpaceFeatures::from_parts_unchecked(weights, biases)
    }
}
