//! The weight-space LayerNorm, WsLayerNorm (design.md §2.4, §8.8).
//!
//! Every weight entry (folded width `k_l c`) and every bias entry (width `c`) is normalised over its
//! channels with the **unbiased** std and eps added to the std:
//! `y = (x - mean) / (std + eps) * gamma + beta`.

use nfn_weightspace::{fold, unfold, NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::module::WsModuleT;
use crate::pointwise::{channels_first, channels_last};
use crate::precision::is_half;

/// Configuration of [`WsLayerNorm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsLayerNormConfig {
    /// Channels `c` (at least 2: the unbiased std of one value is undefined).
    pub channels: i64,
    /// Added to the std, outside the square root.
    pub eps: f64,
}

impl Default for WsLayerNormConfig {
    fn default() -> Self {
        // NFT width C = 256; the reference's eps 1e-5.
        WsLayerNormConfig { channels: 256, eps: 1e-5 }
    }
}

impl WsLayerNormConfig {
    /// Check `channels >= 2` and `eps >= 0`.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        if self.channels < 2 || self.eps.is_nan() || self.eps < 0.0 {
            return Err(Error::Config(format!(
                "layer norm needs channels >= 2 and eps >= 0, got {} and {}",
                self.channels, self.eps
            )));
        }
        Ok(())
    }
}

/// Affine parameters of one normalised width: `weight` (gamma, init 1), `bias` (beta, init 0).
#[derive(Debug)]
struct ChannelNorm {
    weight: Tensor,
    bias: Tensor,
}

impl ChannelNorm {
    fn new(vs: &nn::Path, width: i64) -> Self {
        ChannelNorm {
            weight: vs.var("weight", &[width], Init::Const(1.0)),
            bias: vs.var("bias", &[width], Init::Const(0.0)),
        }
    }

    /// Normalise over axis 1 of a channel-first tensor; returns channel-last memory.
    ///
    /// With `s = std_biased`, `k = sqrt(c / (c - 1))` (so `std_unbiased = k s`) and `eps > 0`:
    /// `(x - mean) / (k s + eps) = (1/k) (a x - a mean) / sqrt(a^2 s^2 + 1)` for
    /// `a = (2 s eps / k + eps^2 / k^2)^(-1/2)`, which is LibTorch's fused `layer_norm` (biased
    /// variance, eps `1` inside the square root) of the row-scaled input `a x`, with weight
    /// `gamma / k`. The identity is exact and `a` stays in the autograd graph, so gradients are
    /// exact too; the fused kernel replaces four element-wise passes (and their backward).
    fn forward(&self, xs: &Tensor, eps: f64) -> Tensor {
        if is_half(xs.kind()) {
            // Statistics in fp32 (mixed precision, see `precision`), the result in the input's dtype.
            return self.forward(&xs.to_kind(Kind::Float), eps).to_kind(xs.kind());
        }
        let xs = channels_last(xs); // [b, .., c]
        if eps <= 0.0 {
            let (std, mean) = xs.std_mean_dim(-1, true, true); // [b, .., 1]
            let inv = std.reciprocal(); // [b, .., 1]
            let xhat = (-mean * &inv).addcmul(&xs, &inv);
            return channels_first(&self.bias.addcmul(&xhat, &self.weight));
        }
        let c = *xs.size().last().expect("at least one axis");
        let k = (c as f64 / (c - 1) as f64).sqrt();
        // Biased variance as E[x^2] - E[x]^2 from two plain reductions: LibTorch's `std` runs a
        // Welford pass in double that cost 6% of an NFT block; cancellation only matters when
        // |mean| is thousands of times the spread, which pre-LN residual streams are not.
        let mean = xs.mean_dim(-1, true, None); // [b, .., 1]
        let norm = xs.norm_scalaropt_dim(2.0, [-1i64].as_slice(), true); // [b, .., 1]
        let std = (norm.square() / c as f64 - mean.square()).clamp_min(0.0).sqrt(); // biased
        let scale = (std * (2.0 * eps / k) + eps * eps / (k * k)).rsqrt(); // [b, .., 1]
        let weight = &self.weight / k;
        let ys = (xs * scale).layer_norm([c], Some(&weight), Some(&self.bias), 1.0, false);
        channels_first(&ys)
    }
}

/// Per-layer channel LayerNorm of weight-space features (design.md §2.4).
///
/// Parameters: `weight_norms/{l}/{weight,bias}` of width `k_l c`, `bias_norms/{l}/{weight,bias}`
/// of width `c`.
#[derive(Debug)]
pub struct WsLayerNorm {
    spec: NetworkSpec,
    eps: f64,
    weight_norms: Vec<ChannelNorm>,
    bias_norms: Vec<ChannelNorm>,
}

impl WsLayerNorm {
    /// Build the norms for `spec`.
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &WsLayerNormConfig) -> Result<Self> {
        cfg.validate()?;
        let (wv, bv) = (vs / "weight_norms", vs / "bias_norms");
        let weight_norms = spec
            .layers()
            .iter()
            .enumerate()
            .map(|(l, layer)| ChannelNorm::new(&(&wv / l), layer.filter_factor() * cfg.channels))
            .collect();
        let bias_norms =
            (0..spec.num_layers()).map(|l| ChannelNorm::new(&(&bv / l), cfg.channels)).collect();
        Ok(WsLayerNorm { spec: spec.clone(), eps: cfg.eps, weight_norms, bias_norms })
    }
}

impl WsModuleT for WsLayerNorm {
    /// # Shapes
    /// weights `[b, c, n_out, n_in(, kh, kw)]` and biases `[b, c, n_out]` keep their shapes.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, _train: bool) -> WeightSpaceFeatures {
        debug_assert_eq!(wsfeat.num_layers(), self.spec.num_layers());
        let (weights, biases) = wsfeat
            .iter()
            .zip(self.spec.layers())
            .zip(self.weight_norms.iter().zip(&self.bias_norms))
            .map(|(((w, b), layer), (wn, bn))| {
                let w = wn.forward(&fold(w), self.eps); // [b, k c, n_out, n_in]
                (unfold(&w, layer.kernel), bn.forward(b, self.eps))
            })
            .unzip();
        WeightSpaceFeatures::from_parts_unchecked(weights, biases)
    }
}
