//! NP-equivariant linear layer, NpLinear (design.md §3.2; NFN paper, Sec. 3, NP layer).
//!
//! Also holds what the HNP layer shares with it: the summary statistics of design.md §3.1
//! (`Summary`) and the per-layer NP update (`NpMaps`), which HNP's middle layers reuse with their
//! own widths.

use nfn_weightspace::{fold, unfold, NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::init::{grouped_maps, ChannelAffine, MapShape};
use crate::module::{ChannelScaledT, WsModuleT};

/// Configuration of [`NpLinear`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NpLinearConfig {
    /// Input channels `c_in`.
    pub c_in: i64,
    /// Output channels `c_out`.
    pub c_out: i64,
    /// Learned input/output embeddings added to the layer's input ("NP-PosEmb", design.md §3.2).
    pub io_embed: bool,
}

impl Default for NpLinearConfig {
    fn default() -> Self {
        // One raw-weight channel in and out, no IO embedding (the plain NFN-NP layer).
        NpLinearConfig { c_in: 1, c_out: 1, io_embed: false }
    }
}

/// Check that channel counts are positive.
pub(crate) fn check_channels(c_in: i64, c_out: i64) -> Result<()> {
    if c_in < 1 || c_out < 1 {
        return Err(Error::Config(format!("channels must be positive, got {c_in} -> {c_out}")));
    }
    Ok(())
}

/// The mean of `xs` over `dims` (dropped), as a sum scaled on the reduced side: its gradient is
/// then a broadcast view of the small gradient instead of a full-size division.
pub(crate) fn mean_over(xs: &Tensor, dims: &[i64]) -> Tensor {
    let size = xs.size();
    let count: i64 = dims.iter().map(|&d| size[d as usize]).product();
    xs.sum_dim_intlist(dims, false, None) * (1.0 / count as f64)
}

/// The summary statistics of design.md §3.1 over folded weights, per layer `l`.
#[derive(Debug)]
pub(crate) struct Summary {
    /// Folded weights `W_l`: `[b, C_l, n_out, n_in]`.
    pub w: Vec<Tensor>,
    /// Biases `b_l`: `[b, c, n_out]`.
    pub b: Vec<Tensor>,
    /// `A_l`, means over rows: `[b, C_l, n_in]`.
    pub a: Vec<Tensor>,
    /// `E_l`, means over columns: `[b, C_l, n_out]`.
    pub e: Vec<Tensor>,
    /// `G_l` then `β_l` for all `l`, concatenated: `[b, c * (Σ k_l + L)]`.
    pub g: Tensor,
}

impl Summary {
    /// Statistics of already folded weights and biases.
    pub fn new(w: Vec<Tensor>, b: Vec<Tensor>) -> Self {
        // A_l: [b, C_l, n_in]; E_l: [b, C_l, n_out]
        let a: Vec<Tensor> = w.iter().map(|w| mean_over(w, &[2])).collect();
        let e: Vec<Tensor> = w.iter().map(|w| mean_over(w, &[3])).collect();
        let means = a.iter().map(|a| a.mean_dim(2, false, None)); // [b, C_l]
        let bias_means = b.iter().map(|b| b.mean_dim(2, false, None)); // [b, c]
        let g = Tensor::cat(&means.chain(bias_means).collect::<Vec<_>>(), 1); // [b, c (Σk + L)]
        Summary { w, b, a, e, g }
    }

    /// Statistics of features (folding conv filters).
    pub fn of(wsfeat: &WeightSpaceFeatures) -> Self {
        Self::new(
            wsfeat.folded_weights(),
            wsfeat.biases().iter().map(Tensor::shallow_clone).collect(),
        )
    }

    /// Number of layers `L`.
    pub fn num_layers(&self) -> usize {
        self.w.len()
    }
}

/// The six maps of one NP layer `l` (design.md §3.2): `P` (pointwise), `U` (global), `R` (row),
/// `S` (column) writing the weight, `T` (bias from column features), `V` (bias from global).
#[derive(Debug)]
pub(crate) struct NpMaps {
    /// `P`: `C_l -> k_l c_out` per weight entry.
    pub pointwise: ChannelAffine,
    /// `U`: global vector -> `k_l c_out`, broadcast to every entry.
    pub global: ChannelAffine,
    /// `R`: row features -> `k_l c_out`, broadcast along rows.
    pub row: ChannelAffine,
    /// `S`: column features -> `k_l c_out`, broadcast along columns.
    pub col: ChannelAffine,
    /// `T`: column features -> `c_out` per bias entry.
    pub bias_col: ChannelAffine,
    /// `V`: global vector -> `c_out`, broadcast to every bias entry.
    pub bias_global: ChannelAffine,
}

/// Input widths of one NP-style layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NpWidths {
    /// Folded input channels `k_l c_in`.
    pub weight: i64,
    /// Global vector width.
    pub global: i64,
    /// Row-feature width.
    pub row: i64,
    /// Column-feature width.
    pub col: i64,
}

impl NpMaps {
    /// Maps with grouped init: `{P, U, R, S}` and `{T, V}` (design.md §3.2).
    pub fn new(vs: &nn::Path, w: NpWidths, k_l: i64, c_out: i64) -> Self {
        let out = k_l * c_out;
        let shape = |name, c_in, c_out| MapShape { name, c_in, c_out };
        let mut wm = grouped_maps(
            vs,
            &[
                shape("pointwise", w.weight, out),
                shape("global", w.global, out),
                shape("row", w.row, out),
                shape("col", w.col, out),
            ],
        )
        .into_iter();
        let mut bm = grouped_maps(
            vs,
            &[shape("bias_col", w.col, c_out), shape("bias_global", w.global, c_out)],
        )
        .into_iter();
        let next = |it: &mut std::vec::IntoIter<ChannelAffine>| {
            it.next().expect("grouped_maps returns one map per shape")
        };
        NpMaps {
            pointwise: next(&mut wm),
            global: next(&mut wm),
            row: next(&mut wm),
            col: next(&mut wm),
            bias_col: next(&mut bm),
            bias_global: next(&mut bm),
        }
    }

    /// The NP update of one layer; `out_scale` (`[b, k_l c_out]`) multiplies each network's
    /// weight output channels, folded into the per-network maps rather than a pass over the
    /// output.
    ///
    /// # Shapes
    /// `w` `[b, C_l, n_out, n_in]`, `global` `[b, G]`, `rowfeat` `[b, n_in, R]`, `colfeat`
    /// `[b, n_out, S]` (both channels-last, see [`cat_last`]) → weight
    /// `[b, k_l c_out, n_out, n_in]`, bias `[b, c_out, n_out]`
    pub fn forward(
        &self,
        w: &Tensor,
        global: &Tensor,
        rowfeat: &Tensor,
        colfeat: &Tensor,
        out_scale: Option<&Tensor>,
    ) -> (Tensor, Tensor) {
        let (b, c, n_out, n_in) = w.size4().expect("folded weights are 4-D");
        let (o, p) = (self.pointwise.c_out(), n_out * n_in);
        // Everything but the pointwise term is constant along rows or columns.
        let shift = self.global.forward_vec(global) + &self.pointwise.bias; // [b, o]
        let rows = self.row.forward_vec(rowfeat) + shift.unsqueeze(1); // [b, n_in, o]
        let b_global = self.bias_global.forward_vec(global).unsqueeze(1); // [b, 1, c_out]

        // cols [b, n_out, o], b_out [b, n_out, c_out]
        let (cols, b_out) = ChannelAffine::forward_vec_pair(&self.col, &self.bias_col, colfeat);
        let b_out = (b_out + b_global).transpose(1, 2);
        // Channels first for the broadcast sum, which takes its layout from them.
        let (rows, cols) = (rows.transpose(1, 2).contiguous(), cols.transpose(1, 2).contiguous());
        // A scale folds into per-network copies of the pointwise weight where they are smaller
        // than the output; otherwise it multiplies the output. Scale [b, o, 1], weight [b, o, C_l].
        let fold_scale = out_scale.filter(|_| c < p).map(|s| s.unsqueeze(2));
        let (rows, cols, weight) = match &fold_scale {
            None => (rows, cols, None),
            Some(scale) => (rows * scale, cols * scale, Some(&self.pointwise.weight * scale)),
        };
        let sum = rows.unsqueeze(2) + cols.unsqueeze(3); // [b, o, n_out, n_in], contiguous
        let w_out = match weight {
            // Few entries per network: one GEMM over all `b p` entries, channels last (the
            // batched product's weight gradient would be `b` products of inner dimension `p`).
            None if p <= FEW_ENTRIES => {
                let pointwise =
                    w.reshape([b, c, p]).transpose(1, 2).matmul(&self.pointwise.weight.tr());
                sum + pointwise.transpose(1, 2).reshape([b, o, n_out, n_in])
            }
            weight => {
                let weight =
                    weight.unwrap_or_else(|| self.pointwise.weight.expand([b, o, c], false));
                // The broadcast sum is fresh, so the GEMM accumulates into it in place (out of
                // place, baddbmm would first copy it whole). An unsafe view is not a view to
                // autograd: an in-place update of a tracked view would make backward clone the
                // whole gradient.
                let mut w_out = sum.internal_unsafe_view([b, o, p]);
                let _ = w_out.baddbmm_(&weight, &w.reshape([b, c, p]));
                w_out.reshape([b, o, n_out, n_in])
            }
        };
        scale_output((w_out, b_out), out_scale.filter(|_| fold_scale.is_none()))
    }
}

/// Tensors with at most this many entries per network take the channels-last pointwise product.
const FEW_ENTRIES: i64 = 64;

/// Channels-first per-neuron features `[b, c_i, n]` concatenated channels-last, `[b, n, Σ c_i]`,
/// the layout in which an affine map over them is one GEMM over all `b n` neurons.
pub(crate) fn cat_last(parts: &[&Tensor]) -> Tensor {
    Tensor::cat(&parts.iter().map(|p| p.transpose(1, 2)).collect::<Vec<_>>(), 2)
}

/// A folded weight output `[b, o, n_out, n_in]` scaled per network and channel by `scale`
/// (`[b, o]`), its bias untouched.
pub(crate) fn scale_output((w, b): (Tensor, Tensor), scale: Option<&Tensor>) -> (Tensor, Tensor) {
    match scale {
        Some(scale) => (w * scale.unsqueeze(2).unsqueeze(3), b),
        None => (w, b),
    }
}

/// Learned IO embeddings of one NpLinear (design.md §3.2 "Optional IO embedding").
///
/// With a single layer (`L == 1`) both weight embeddings go to `W_0` (the reference's code would
/// emit an extra weight tensor there).
#[derive(Debug)]
struct IoEmbed {
    /// `[1, k_0 c_in, 1, n_in]`, added to the folded `W_0` per input column.
    in_embed: Tensor,
    /// `[1, k_{L-1} c_in, n_out, 1]`, added to the folded `W_{L-1}` per output row.
    out_embed: Tensor,
    /// `[1, c_in, n_out]`, added to `b_{L-1}`.
    out_bias_embed: Tensor,
}

/// Permutation-equivariant linear map on weight-space features, `c_in -> c_out` channels
/// (NFN paper's NP layer, design.md §3.2).
///
/// Equivariant to permuting every neuron layer, inputs and outputs included, unless `io_embed`.
#[derive(Debug)]
pub struct NpLinear {
    spec: NetworkSpec,
    cfg: NpLinearConfig,
    layers: Vec<NpMaps>,
    io_embed: Option<IoEmbed>,
}

impl NpLinear {
    /// Build the layer for `spec`; parameters live under `vs / "layers" / l / <map>` and
    /// `vs / "io_embed"`.
    ///
    /// # Errors
    /// [`Error::Config`] if a channel count is not positive.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &NpLinearConfig) -> Result<Self> {
        check_channels(cfg.c_in, cfg.c_out)?;
        let k = spec.filter_factors();
        let n_layers = k.len();
        let c = cfg.c_in;
        let global = c * (k.iter().sum::<i64>() + n_layers as i64);
        let layers = (0..n_layers)
            .map(|l| {
                let mut row = c * k[l];
                if l > 0 {
                    row += c * (k[l - 1] + 1);
                }
                let mut col = c * (k[l] + 1);
                if l + 1 < n_layers {
                    col += c * k[l + 1];
                }
                let widths = NpWidths { weight: c * k[l], global, row, col };
                NpMaps::new(&(vs / "layers" / l), widths, k[l], cfg.c_out)
            })
            .collect();
        let io_embed = cfg.io_embed.then(|| {
            let p = vs / "io_embed";
            let randn = Init::Randn { mean: 0.0, stdev: 1.0 };
            let (n_in, n_out) = (spec.n_in(), spec.n_out());
            IoEmbed {
                in_embed: p.var("in_embed", &[1, k[0] * c, 1, n_in], randn),
                out_embed: p.var("out_embed", &[1, k[n_layers - 1] * c, n_out, 1], randn),
                out_bias_embed: p.var("out_bias_embed", &[1, c, n_out], randn),
            }
        });
        Ok(NpLinear { spec: spec.clone(), cfg: cfg.clone(), layers, io_embed })
    }

    /// The layer's config.
    pub fn config(&self) -> &NpLinearConfig {
        &self.cfg
    }

    /// The spec the layer was built for.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    /// Folded weights and biases, with the IO embeddings added when configured.
    fn embedded_inputs(&self, wsfeat: &WeightSpaceFeatures) -> (Vec<Tensor>, Vec<Tensor>) {
        let mut w: Vec<Tensor> = wsfeat.weights().iter().map(fold).collect();
        let mut b: Vec<Tensor> = wsfeat.biases().iter().map(Tensor::shallow_clone).collect();
        if let Some(io) = &self.io_embed {
            let last = w.len() - 1;
            w[0] = &w[0] + &io.in_embed;
            w[last] = &w[last] + &io.out_embed;
            b[last] = &b[last] + &io.out_bias_embed;
        }
        (w, b)
    }
}

impl NpLinear {
    /// The layer's update, weight output `l` scaled by `scales[l]` when given.
    fn forward_with(
        &self,
        wsfeat: &WeightSpaceFeatures,
        scales: Option<&[Tensor]>,
    ) -> WeightSpaceFeatures {
        debug_assert_eq!(wsfeat.channels(), self.cfg.c_in);
        debug_assert!(
            wsfeat.check_spec(&self.spec).is_ok(),
            "features do not fit the layer's spec"
        );
        let (w, b) = self.embedded_inputs(wsfeat);
        let s = Summary::new(w, b);
        let n_layers = s.num_layers();
        let (weights, biases) = (0..n_layers)
            .map(|l| {
                let mut rowfeat = vec![&s.a[l]]; // [b, C_l, n_in]
                if l > 0 {
                    rowfeat.extend([&s.e[l - 1], &s.b[l - 1]]);
                }
                let mut colfeat = vec![&s.e[l], &s.b[l]]; // [b, _, n_out]
                if l + 1 < n_layers {
                    colfeat.push(&s.a[l + 1]);
                }
                let (rowfeat, colfeat) = (cat_last(&rowfeat), cat_last(&colfeat));
                let scale = scales.map(|scales| &scales[l]);
                let (w_out, b_out) =
                    self.layers[l].forward(&s.w[l], &s.g, &rowfeat, &colfeat, scale);
                (unfold(&w_out, self.spec.layer(l).kernel), b_out) // [b, c_out, n_out, n_in(, k..)]
            })
            .unzip();
        WeightSpaceFeatures::from_parts_unchecked(weights, biases)
    }
}

/// [`WsModuleT`] and [`ChannelScaledT`] for an NP-style layer: one with a `spec`, a `cfg.c_out`
/// and `forward_with(&self, wsfeat, scales: Option<&[Tensor]>)`.
macro_rules! channel_scaled_layer {
    ($layer:ty) => {
        impl WsModuleT for $layer {
            /// # Shapes
            /// weights `[b, c_in, n_out, n_in(, kh, kw)]` → `[b, c_out, n_out, n_in(, kh, kw)]`;
            /// biases `[b, c_in, n_out]` → `[b, c_out, n_out]`
            fn forward_t(&self, wsfeat: &WeightSpaceFeatures, _train: bool) -> WeightSpaceFeatures {
                self.forward_with(wsfeat, None)
            }
        }

        impl ChannelScaledT for $layer {
            fn weight_channels(&self) -> Vec<i64> {
                self.spec.filter_factors().iter().map(|k| k * self.cfg.c_out).collect()
            }

            fn forward_scaled(
                &self,
                wsfeat: &WeightSpaceFeatures,
                scales: &[Tensor],
            ) -> WeightSpaceFeatures {
                self.forward_with(wsfeat, Some(scales))
            }
        }
    };
}
pub(crate) use channel_scaled_layer;

channel_scaled_layer!(NpLinear);

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// `NpMaps::forward` against its formula written out, at sizes that take the channels-last
    /// pointwise product (`n_out n_in <= 64`) and the batched one, scaled or not.
    #[test]
    fn the_np_update_is_its_formula_on_both_pointwise_paths() {
        tch::manual_seed(4);
        let opts = (Kind::Double, Device::Cpu);
        let mut vs = nn::VarStore::new(Device::Cpu);
        let (b, c, k, c_out, g, r, s) = (2, 3, 1, 4, 5, 6, 7);
        let widths = NpWidths { weight: c, global: g, row: r, col: s };
        let maps = NpMaps::new(&vs.root(), widths, k, c_out);
        vs.double();
        let o = k * c_out;
        for (n_out, n_in) in [(4, 5), (9, 8)] {
            let w = Tensor::randn([b, c, n_out, n_in], opts);
            let global = Tensor::randn([b, g], opts);
            let rowfeat = Tensor::randn([b, n_in, r], opts);
            let colfeat = Tensor::randn([b, n_out, s], opts);
            let scale = Tensor::rand([b, o], opts);
            let affine = |m: &ChannelAffine, x: &Tensor| x.matmul(&m.weight.tr()) + &m.bias;
            let shift = affine(&maps.global, &global) + &maps.pointwise.bias; // [b, o]
            let rows = affine(&maps.row, &rowfeat).transpose(1, 2); // [b, o, n_in]
            let cols = affine(&maps.col, &colfeat).transpose(1, 2); // [b, o, n_out]
            let pointwise =
                Tensor::einsum("oc,bcij->boij", &[&maps.pointwise.weight, &w], None::<i64>);
            let want_w =
                pointwise + shift.view([b, o, 1, 1]) + rows.unsqueeze(2) + cols.unsqueeze(3);
            let want_b = (affine(&maps.bias_col, &colfeat)
                + affine(&maps.bias_global, &global).unsqueeze(1))
            .transpose(1, 2);
            for out_scale in [None, Some(&scale)] {
                let (got_w, got_b) = maps.forward(&w, &global, &rowfeat, &colfeat, out_scale);
                let want_w = match out_scale {
                    Some(scale) => &want_w * scale.view([b, o, 1, 1]),
                    None => want_w.shallow_clone(),
                };
                let at = format!("{n_out} x {n_in}, scaled {}", out_scale.is_some());
                assert!(got_w.allclose(&want_w, 1e-10, 1e-10, false), "weights at {at}");
                assert!(got_b.allclose(&want_b, 1e-10, 1e-10, false), "biases at {at}");
            }
        }
    }
}
