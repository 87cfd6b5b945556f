//! The MLP-on-flattened-weights baseline (design.md §3.5): no symmetry at all, which is what the
//! equivariant models are compared against.

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::error::Result;
use crate::head::{MlpHead, MlpHeadConfig};
use crate::model::InvariantModel;

/// Settings of [`MlpOnWeights`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlpConfig {
    /// The MLP applied to the flat parameter vector.
    pub mlp: MlpHeadConfig,
}

impl Default for MlpConfig {
    fn default() -> Self {
        // The reference's MLP baseline: hidden width 1000, dropout 0.1.
        MlpConfig {
            mlp: MlpHeadConfig { hidden: vec![1000, 1000], dropout: 0.1, ..Default::default() },
        }
    }
}

impl MlpConfig {
    /// Check the values.
    ///
    /// # Errors
    /// As [`MlpHeadConfig::validate`].
    pub fn validate(&self) -> Result<()> {
        self.mlp.validate()
    }
}

/// An MLP on the flattened weights of single-channel features.
#[derive(Debug)]
pub struct MlpOnWeights {
    head: MlpHead,
}

impl MlpOnWeights {
    /// A baseline for networks of `spec` with `num_outputs` outputs.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, num_outputs: i64, cfg: &MlpConfig) -> Self {
        MlpOnWeights { head: MlpHead::new(&(vs / "mlp"), spec.num_params(), num_outputs, &cfg.mlp) }
    }
}

impl InvariantModel for MlpOnWeights {
    /// # Shapes
    /// 1-channel features of `b` networks → `[b, num_outputs]`
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> Tensor {
        let flat = wsfeat.flatten(); // [b, 1, N]
        self.head.forward_t(&flat.flatten(1, -1), train)
    }
}
