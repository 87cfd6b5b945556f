//! Pointwise channel mixing per layer (design.md §2.1).
//!
//! Also holds the channel-last helpers the NFT layers share: every per-entry affine map here runs
//! as one GEMM over `[entries, c]` rows. Layers return channel-first *views* of channel-last
//! memory, so a chain of NFT layers never copies between layouts.

use nfn_weightspace::{fold, unfold, NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::module::WsModuleT;
use crate::precision::cast_like;

/// The view `[b, c, d1, ..] -> [b, d1, .., c]` (no copy).
pub fn channels_last(xs: &Tensor) -> Tensor {
    let n = xs.dim() as i64;
    let mut order: Vec<i64> = vec![0];
    order.extend(2..n);
    order.push(1);
    xs.permute(order)
}

/// The view `[b, d1, .., c] -> [b, c, d1, ..]` (no copy); inverse of [`channels_last`].
pub fn channels_first(xs: &Tensor) -> Tensor {
    let n = xs.dim() as i64;
    let mut order: Vec<i64> = vec![0, n - 1];
    order.extend(1..n - 1);
    xs.permute(order)
}

/// An affine map over the last axis, `x W^T + bias`, with PyTorch's default `nn.Linear` init
/// (weight and bias `U(-1/sqrt(c_in), 1/sqrt(c_in))`).
///
/// Parameters: `weight` `[c_out, c_in]`, `bias` `[c_out]` (optional).
#[derive(Debug)]
pub struct ChannelLinear {
    /// `[c_out, c_in]`.
    pub weight: Tensor,
    /// `[c_out]`, if the map has a bias.
    pub bias: Option<Tensor>,
}

impl ChannelLinear {
    /// A map `c_in -> c_out` under `vs` (leaves `weight`, `bias`).
    pub fn new(vs: &nn::Path, c_in: i64, c_out: i64, bias: bool) -> Self {
        let bound = 1.0 / (c_in.max(1) as f64).sqrt();
        let init = Init::Uniform { lo: -bound, up: bound };
        ChannelLinear {
            weight: vs.var("weight", &[c_out, c_in], init),
            bias: bias.then(|| vs.var("bias", &[c_out], init)),
        }
    }

    /// Input width `c_in`.
    pub fn c_in(&self) -> i64 {
        self.weight.size()[1]
    }

    /// Output width `c_out`.
    pub fn c_out(&self) -> i64 {
        self.weight.size()[0]
    }

    /// Apply over the last axis.
    ///
    /// # Shapes
    /// `[.., c_in]` → `[.., c_out]`
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        debug_assert_eq!(xs.size().last().copied(), Some(self.c_in()));
        let bias = self.bias.as_ref().map(|b| cast_like(b, xs));
        xs.linear(&cast_like(&self.weight, xs), bias.as_ref())
    }

    /// Apply over the channel axis 1; the result is a channel-first view of channel-last memory.
    ///
    /// # Shapes
    /// `[b, c_in, ..]` → `[b, c_out, ..]`
    pub fn forward_channels(&self, xs: &Tensor) -> Tensor {
        channels_first(&self.forward(&channels_last(xs)))
    }
}

/// Configuration of [`Pointwise`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PointwiseConfig {
    /// Input channels `c_in`.
    pub c_in: i64,
    /// Output channels `c_out`.
    pub c_out: i64,
}

impl Default for PointwiseConfig {
    fn default() -> Self {
        // The NFT width C = 256 in and out (Inr2Array encoder, design.md §5.1).
        PointwiseConfig { c_in: 256, c_out: 256 }
    }
}

impl PointwiseConfig {
    /// Check that both widths are positive.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        if self.c_in < 1 || self.c_out < 1 {
            return Err(Error::Config(format!(
                "pointwise widths must be positive, got {} -> {}",
                self.c_in, self.c_out
            )));
        }
        Ok(())
    }
}

/// Per-layer affine maps on every weight entry (folded width `k_l c_in -> k_l c_out`) and every
/// bias entry (`c_in -> c_out`), separate for each layer and for weights vs biases.
///
/// Equivariant to any row/column permutation ("too equivariant"; attention supplies the coupling).
/// Parameters: `weight_maps/{l}/{weight,bias}`, `bias_maps/{l}/{weight,bias}`.
#[derive(Debug)]
pub struct Pointwise {
    spec: NetworkSpec,
    weight_maps: Vec<ChannelLinear>,
    bias_maps: Vec<ChannelLinear>,
}

impl Pointwise {
    /// Build the maps for `spec`.
    ///
    /// # Errors
    /// [`Error::Config`] for non-positive widths.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &PointwiseConfig) -> Result<Self> {
        cfg.validate()?;
        let (wv, bv) = (vs / "weight_maps", vs / "bias_maps");
        let weight_maps = spec
            .layers()
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let k = layer.filter_factor();
                ChannelLinear::new(&(&wv / l), k * cfg.c_in, k * cfg.c_out, true)
            })
            .collect();
        let bias_maps = (0..spec.num_layers())
            .map(|l| ChannelLinear::new(&(&bv / l), cfg.c_in, cfg.c_out, true))
            .collect();
        Ok(Pointwise { spec: spec.clone(), weight_maps, bias_maps })
    }

    /// The weight-entry map of layer `l`.
    pub fn weight_map(&self, l: usize) -> &ChannelLinear {
        &self.weight_maps[l]
    }

    /// The bias-entry map of layer `l`.
    pub fn bias_map(&self, l: usize) -> &ChannelLinear {
        &self.bias_maps[l]
    }
}

impl WsModuleT for Pointwise {
    /// # Shapes
    /// weights `[b, c_in, n_out, n_in(, kh, kw)]` → `[b, c_out, ..]`; biases `[b, c_in, n_out]` →
    /// `[b, c_out, n_out]`
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, _train: bool) -> WeightSpaceFeatures {
        debug_assert_eq!(wsfeat.num_layers(), self.spec.num_layers());
        let (weights, biases) = wsfeat
            .iter()
            .zip(self.spec.layers())
            .zip(self.weight_maps.iter().zip(&self.bias_maps))
            .map(|(((w, b), layer), (wmap, bmap))| {
                let w = wmap.forward_channels(&fold(w)); // [b, k c_out, n_out, n_in]
                (unfold(&w, layer.kernel), bmap.forward_channels(b))
            })
            .unzip();
        WeightSpaceFeatures::from_parts_unchecked(weights, biases)
    }
}
