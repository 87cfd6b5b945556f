//! StatNet (design.md §3.5): per-tensor statistics of the weights, then an MLP.

use nfn_layers::{StatFeaturizer, WsReadoutT};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use tch::{nn, Tensor};

use crate::head::{MlpHead, MlpHeadConfig};
use crate::model::InvariantModel;

/// Statistics featurizer followed by an MLP head.
#[derive(Debug)]
pub struct StatNet {
    features: StatFeaturizer,
    head: MlpHead,
}

impl StatNet {
    /// A StatNet for 1-channel features of `spec`.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, num_outputs: i64, cfg: &MlpHeadConfig) -> Self {
        let width = StatFeaturizer::out_features(spec, 1);
        StatNet {
            features: StatFeaturizer::new(spec),
            head: MlpHead::new(&(vs / "head"), width, num_outputs, cfg),
        }
    }
}

impl InvariantModel for StatNet {
    /// # Shapes
    /// 1-channel features of `b` networks → `[b, num_outputs]`
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> Tensor {
        self.head.forward_t(&self.features.forward_t(wsfeat, train), train)
    }
}
