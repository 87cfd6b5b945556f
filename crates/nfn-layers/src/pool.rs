//! Invariant pooling: NpPool and HnpPool (design.md §3.4).
//!
//! Both read weight-space features out to one vector per network, flattened channel-major
//! (`index = c * count + position`). Filter taps are kept, not averaged.

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::module::WsReadoutT;
use crate::np_linear::mean_over;

/// Flatten per-tensor pieces `[b, c, ...]` into `[b, c * Σ count]`, channel-major.
fn cat_channel_major(pieces: Vec<Tensor>, b: i64) -> Tensor {
    let pieces: Vec<Tensor> = pieces.iter().map(|p| p.flatten(2, -1)).collect(); // [b, c, count_t]
    Tensor::cat(&pieces, 2).reshape([b, -1]) // [b, c * Σ count]
}

/// NP-invariant pooling: per layer, the mean of `W_l` over both neuron axes (one value per filter
/// tap) and the mean of `b_l`.
#[derive(Debug, Clone)]
pub struct NpPool {
    spec: NetworkSpec,
}

impl NpPool {
    /// A pool for `spec`.
    pub fn new(spec: &NetworkSpec) -> Self {
        NpPool { spec: spec.clone() }
    }

    /// Output width for `c` channels: `c * Σ_l (k_l + 1)`.
    pub fn out_features(spec: &NetworkSpec, c: i64) -> i64 {
        c * spec.filter_factors().iter().map(|k| k + 1).sum::<i64>()
    }
}

impl WsReadoutT for NpPool {
    /// # Shapes
    /// features with `c` channels → `[b, c * Σ_l (k_l + 1)]`
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, _train: bool) -> Tensor {
        debug_assert!(wsfeat.check_spec(&self.spec).is_ok(), "features do not fit the pool's spec");
        let pieces = wsfeat
            .iter()
            .flat_map(|(w, b)| {
                // [b, c(, kh, kw)] and [b, c, 1]
                [mean_over(w, &[2, 3]).unsqueeze(2), b.mean_dim(2, true, None)]
            })
            .collect();
        cat_channel_major(pieces, wsfeat.batch_size())
    }
}

/// HNP-invariant pooling: like [`NpPool`], but layer 0 keeps its input neurons (mean over rows
/// only), layer `L-1` keeps its output neurons (mean over columns only) and its full bias.
/// Needs `L >= 2`.
#[derive(Debug, Clone)]
pub struct HnpPool {
    spec: NetworkSpec,
}

impl HnpPool {
    /// A pool for `spec`.
    ///
    /// # Errors
    /// [`Error::Config`] if the spec has fewer than two layers.
    pub fn new(spec: &NetworkSpec) -> Result<Self> {
        if spec.num_layers() < 2 {
            return Err(Error::Config(format!(
                "HnpPool needs at least 2 layers, got {}",
                spec.num_layers()
            )));
        }
        Ok(HnpPool { spec: spec.clone() })
    }

    /// Output width for `c` channels:
    /// `c * (n_in k_0 + 1 + Σ_middle (k_l + 1) + n_out k_{L-1} + n_out)`.
    pub fn out_features(spec: &NetworkSpec, c: i64) -> i64 {
        let k = spec.filter_factors();
        let last = k.len() - 1;
        let per_channel: i64 = k
            .iter()
            .enumerate()
            .map(|(l, &k_l)| match l {
                0 => spec.n_in() * k_l + 1,
                l if l == last => spec.n_out() * (k_l + 1),
                _ => k_l + 1,
            })
            .sum();
        c * per_channel
    }
}

impl WsReadoutT for HnpPool {
    /// # Shapes
    /// features with `c` channels → `[b, HnpPool::out_features(spec, c)]`
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, _train: bool) -> Tensor {
        debug_assert!(wsfeat.check_spec(&self.spec).is_ok(), "features do not fit the pool's spec");
        let last = wsfeat.num_layers() - 1;
        let pieces = wsfeat
            .iter()
            .enumerate()
            .flat_map(|(l, (w, b))| {
                let bias_mean = b.mean_dim(2, true, None); // [b, c, 1]
                match l {
                    0 => [mean_over(w, &[2]), bias_mean], // [b, c, n_in(, kh, kw)]
                    // [b, c, n_out(, kh, kw)] and the full bias [b, c, n_out]
                    l if l == last => [mean_over(w, &[3]), b.shallow_clone()],
                    _ => [mean_over(w, &[2, 3]).unsqueeze(2), bias_mean],
                }
            })
            .collect();
        cat_channel_major(pieces, wsfeat.batch_size())
    }
}
