//! The StatNet featurizer: per-tensor statistics (design.md §3.4; Unterthiner et al.'s StatNet).
//!
//! Seven numbers per weight or bias tensor and channel: mean, unbiased variance, and the 0, 25, 50,
//! 75 and 100 % quantiles (linear interpolation) over all entries, filter taps included.

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use tch::Tensor;

use crate::module::WsReadoutT;

/// Statistics per tensor and channel.
const NUM_STATS: i64 = 7;
/// The quantile levels.
const QUANTILES: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

/// Per-tensor statistics read-out (invariant to any permutation of a tensor's entries).
///
/// For a tensor with a single entry the unbiased variance is undefined (PyTorch gives NaN); this
/// featurizer returns 0 there so that downstream layers stay finite.
#[derive(Debug, Clone)]
pub struct StatFeaturizer {
    spec: NetworkSpec,
}

impl StatFeaturizer {
    /// A featurizer for `spec`.
    pub fn new(spec: &NetworkSpec) -> Self {
        StatFeaturizer { spec: spec.clone() }
    }

    /// Output width for `c` channels: `c * 2 L * 7`.
    pub fn out_features(spec: &NetworkSpec, c: i64) -> i64 {
        c * 2 * spec.num_layers() as i64 * NUM_STATS
    }

    /// The seven statistics of one tensor.
    ///
    /// # Shapes
    /// `[b, c, ...]` → `[b, c, 7]`
    fn tensor_stats(xs: &Tensor) -> Tensor {
        let xs = xs.flatten(2, -1); // [b, c, n]
        let mean = xs.mean_dim(2, false, None); // [b, c]
        let var = if xs.size()[2] > 1 { xs.var_dim(2, true, false) } else { mean.zeros_like() };
        let q = Tensor::from_slice(&QUANTILES).to_kind(xs.kind()).to_device(xs.device());
        let quantiles = xs.quantile(&q, 2, false, "linear"); // [5, b, c]
        let mut parts = vec![mean, var];
        parts.extend(quantiles.unbind(0));
        Tensor::stack(&parts, 2) // [b, c, 7]
    }
}

impl WsReadoutT for StatFeaturizer {
    /// # Shapes
    /// features with `c` channels → `[b, c * 2L * 7]`, channel-major; per channel the layers in
    /// order, weight statistics before bias statistics, each
    /// `[mean, var, q0, q25, q50, q75, q100]`.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, _train: bool) -> Tensor {
        debug_assert!(wsfeat.check_spec(&self.spec).is_ok(), "features do not fit the spec");
        let stats: Vec<Tensor> = wsfeat
            .iter()
            .flat_map(|(w, b)| [Self::tensor_stats(w), Self::tensor_stats(b)])
            .collect();
        Tensor::cat(&stats, 2).reshape([wsfeat.batch_size(), -1]) // [b, c * 2L * 7]
    }
}
