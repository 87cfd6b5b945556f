//! NFT weight-space self-attention, NpAttention (design.md §4.1, §4.2; NFT paper, Sec. 3).
//!
//! Output = layer-level term (attention among the `2L` per-tensor mean tokens) + neuron-level term
//! (for each neuron layer `m`, one softmax over the columns of `W_{m-1}`, the bias `b_{m-1}` and
//! the rows of `W_m`, each token a `dh x d_m` block). There is no output projection.
//!
//! Implementation: features are projected channel-last (one GEMM per tensor), each token set is
//! gathered into one `[b, H, 3, T, d_m * dh]` tensor and attends with two batched matmuls.
//! Within a token the entries are flattened neuron-major (`n * dh + t`) rather than the
//! reference's channel-major order; attention only takes dot products of whole tokens, so the
//! result is the same.

use nfn_weightspace::{fold, unfold, NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::module::WsModuleT;
use crate::pointwise::{channels_first, channels_last, ChannelLinear};
use crate::precision::{cast_like, is_half};

/// Configuration of [`NpAttention`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NpAttentionConfig {
    /// Channels `C` in and out.
    pub channels: i64,
    /// Heads `H`; `dh = C / H`.
    pub num_heads: i64,
    /// Dropout on the neuron-level attention probabilities (training only).
    pub dropout: f64,
    /// One `C -> 3C` projection for all tensors (MLPs); `false` gives per-layer projections
    /// `k_l C -> 3C` / `C -> 3C` and unprojections `C -> k_l C` (required for CNNs,
    /// design.md §4.4).
    pub share_projections: bool,
    /// Keep the layer-level ("diagonal") term.
    pub layer_term: bool,
    /// Keep the neuron-level ("cross") term.
    pub neuron_term: bool,
}

impl Default for NpAttentionConfig {
    fn default() -> Self {
        NpAttentionConfig {
            channels: 256,           // Inr2Array encoder width (design.md §5.1)
            num_heads: 4,            // H = 4, dh = 64 (design.md §5.1)
            dropout: 0.0,            // Inr2Array uses no dropout
            share_projections: true, // MLP / SIREN weights
            layer_term: true,        // both terms on (no ablation)
            neuron_term: true,
        }
    }
}

impl NpAttentionConfig {
    /// Check positive sizes, `channels % num_heads == 0`, `0 <= dropout < 1` and at least one term.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        if self.channels < 1 || self.num_heads < 1 || self.channels % self.num_heads != 0 {
            return Err(Error::Config(format!(
                "channels ({}) must be a positive multiple of num_heads ({})",
                self.channels, self.num_heads
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!("dropout must lie in [0, 1), got {}", self.dropout)));
        }
        if !self.layer_term && !self.neuron_term {
            return Err(Error::Config("attention needs the layer or the neuron term".into()));
        }
        Ok(())
    }
}

/// The q/k/v projections (design.md §4.1).
#[derive(Debug)]
enum Projections {
    /// `to_qkv`: one `C -> 3C` map for every tensor.
    Shared(ChannelLinear),
    /// Per layer `l`: `weight_to_qkv/{l}` (`k_l C -> 3C`), `bias_to_qkv/{l}` (`C -> 3C`) and
    /// `unproject_weight/{l}` (`C -> k_l C`), the latter applied to each weight contribution.
    PerLayer { weight: Vec<ChannelLinear>, bias: Vec<ChannelLinear>, unproject: Vec<ChannelLinear> },
}

impl Projections {
    fn weight(&self, l: usize) -> &ChannelLinear {
        match self {
            Projections::Shared(p) => p,
            Projections::PerLayer { weight, .. } => &weight[l],
        }
    }

    fn bias(&self, l: usize) -> &ChannelLinear {
        match self {
            Projections::Shared(p) => p,
            Projections::PerLayer { bias, .. } => &bias[l],
        }
    }
}

/// NP-equivariant weight-space self-attention (design.md §4.2).
///
/// Parameters: `to_qkv/{weight,bias}` when projections are shared, otherwise
/// `weight_to_qkv/{l}`, `bias_to_qkv/{l}`, `unproject_weight/{l}` (each `{weight,bias}`). The
/// `3C` projected channels are head-major: channel `h * 3dh + s * dh + t` is head `h`, slot
/// `s ∈ {q, k, v}`, sub-channel `t`.
#[derive(Debug)]
pub struct NpAttention {
    spec: NetworkSpec,
    cfg: NpAttentionConfig,
    proj: Projections,
}

impl NpAttention {
    /// Build the attention for `spec`.
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid, or projections are shared on a CNN spec (folded
    /// widths differ per layer, design.md §8.13).
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &NpAttentionConfig) -> Result<Self> {
        cfg.validate()?;
        let c = cfg.channels;
        let proj = if cfg.share_projections {
            if spec.is_cnn() {
                return Err(Error::Config(
                    "shared projections need dense layers; use share_projections = false for CNNs"
                        .into(),
                ));
            }
            Projections::Shared(ChannelLinear::new(&(vs / "to_qkv"), c, 3 * c, true))
        } else {
            let (wv, bv, uv) = (vs / "weight_to_qkv", vs / "bias_to_qkv", vs / "unproject_weight");
            let ks = spec.filter_factors();
            Projections::PerLayer {
                weight: ks
                    .iter()
                    .enumerate()
                    .map(|(l, k)| ChannelLinear::new(&(&wv / l), k * c, 3 * c, true))
                    .collect(),
                bias: (0..ks.len())
                    .map(|l| ChannelLinear::new(&(&bv / l), c, 3 * c, true))
                    .collect(),
                unproject: ks
                    .iter()
                    .enumerate()
                    .map(|(l, k)| ChannelLinear::new(&(&uv / l), c, k * c, true))
                    .collect(),
            }
        };
        Ok(NpAttention { spec: spec.clone(), cfg: cfg.clone(), proj })
    }

    /// The config this layer was built with.
    pub fn config(&self) -> &NpAttentionConfig {
        &self.cfg
    }

    /// Layer-level term: one `[b, C]` output per weight tensor and per bias tensor.
    ///
    /// The mean of the projected entries equals the projection of the mean entry (the maps are
    /// affine), so only the `2L` means are projected.
    fn layer_term(&self, ws: &[Tensor], bs: &[Tensor]) -> (Vec<Tensor>, Vec<Tensor>) {
        let n_layers = ws.len();
        let (h, c) = (self.cfg.num_heads, self.cfg.channels);
        let dh = c / h;
        let b = ws[0].size()[0];
        let tokens: Vec<Tensor> = ws
            .iter()
            .enumerate()
            .map(|(l, w)| self.proj.weight(l).forward(&w.mean_dim(&[1i64, 2][..], false, None)))
            .chain(
                bs.iter()
                    .enumerate()
                    .map(|(l, x)| self.proj.bias(l).forward(&x.mean_dim(1, false, None))),
            )
            .collect(); // 2L x [b, 3C]
        let qkv = Tensor::stack(&tokens, 1).view([b, 2 * n_layers as i64, h, 3, dh]);
        let qkv = qkv.permute([3, 0, 2, 1, 4]); // [3, b, H, 2L, dh]
        let out = Tensor::scaled_dot_product_attention::<Tensor>(
            &qkv.get(0),
            &qkv.get(1),
            &qkv.get(2),
            None,
            0.0,
            false,
            1.0 / (dh as f64).sqrt(),
            false,
        ); // [b, H, 2L, dh]
        let out = out.permute([0, 2, 1, 3]).reshape([b, 2 * n_layers as i64, c]); // [b, 2L, C]
        let per_w = (0..n_layers).map(|l| out.select(1, l as i64)).collect();
        let per_b = (0..n_layers).map(|l| out.select(1, (n_layers + l) as i64)).collect();
        (per_w, per_b)
    }

    /// Neuron-level term, added into `out_w` (`[b, n_out, n_in, H, dh]` per layer) and `out_b`
    /// (`[b, n_out, H, dh]`).
    fn neuron_term(
        &self,
        qkv_w: &[Tensor],
        qkv_b: &[Tensor],
        train: bool,
        out_w: &mut [Vec<Tensor>],
        out_b: &mut [Vec<Tensor>],
    ) {
        let n_layers = qkv_w.len();
        let dims = self.spec.dims();
        let (h, c) = (self.cfg.num_heads, self.cfg.channels);
        let dh = c / h;
        let b = qkv_w[0].size()[0];
        let p = if train { self.cfg.dropout } else { 0.0 };
        for m in 0..=n_layers {
            let d_m = dims[m];
            let mut parts = Vec::with_capacity(3);
            if m >= 1 {
                let (d_prev, l) = (dims[m - 1], m - 1);
                // columns of W_{m-1}: [b, d_m, d_prev, 3C] -> [b, H, 3, d_prev, d_m, dh]
                parts.push(qkv_w[l].view([b, d_m, d_prev, h, 3, dh]).permute([0, 3, 4, 2, 1, 5]));
                // the bias b_{m-1}: [b, d_m, 3C] -> [b, H, 3, 1, d_m, dh]
                parts.push(qkv_b[l].view([b, d_m, h, 3, dh]).permute([0, 2, 3, 1, 4]).unsqueeze(3));
            }
            if m < n_layers {
                // rows of W_m: [b, d_next, d_m, 3C] -> [b, H, 3, d_next, d_m, dh]
                let d_next = dims[m + 1];
                parts.push(qkv_w[m].view([b, d_next, d_m, h, 3, dh]).permute([0, 3, 4, 1, 2, 5]));
            }
            let tokens = Tensor::cat(&parts, 3); // [b, H, 3, T, d_m, dh]
            let t = tokens.size()[3];
            // unbind (not select): its backward stacks the three gradients, no zero-filling
            let qkv = tokens.view([b, h, 3, t, d_m * dh]).unbind(2); // 3 x [b, H, T, d_m dh]
            let scale = 1.0 / ((dh * d_m) as f64).sqrt();
            // Plain matmul-softmax-matmul: with T ~ 35 tokens of d_m * dh ~ 2048 entries, LibTorch's
            // CPU flash kernel was 7% slower here and kept more memory for the backward.
            let logits = qkv[0].matmul(&qkv[1].transpose(-1, -2)) * scale;
            // In bf16 (mixed precision) the softmax runs in fp32, as autocast would run it.
            let probs = if is_half(logits.kind()) {
                logits.softmax(-1, Kind::Float).to_kind(logits.kind())
            } else {
                logits.softmax(-1, None)
            };
            let probs = if p > 0.0 { probs.dropout(p, train) } else { probs };
            let out = probs.matmul(&qkv[2]); // [b, H, T, d_m * dh]
            let out = out.view([b, h, t, d_m, dh]);
            // split_with_sizes (not narrow): its backward concatenates, no zero-filling
            let mut sizes = Vec::with_capacity(3);
            if m >= 1 {
                sizes.extend([dims[m - 1], 1]);
            }
            if m < n_layers {
                sizes.push(dims[m + 1]);
            }
            let mut pieces = out.split_with_sizes(&sizes, 2).into_iter();
            let mut next = || pieces.next().expect("one piece per token kind");
            if m >= 1 {
                let cols = next(); // [b, H, d_prev, d_m, dh]
                out_w[m - 1].push(cols.permute([0, 3, 2, 1, 4])); // [b, d_m, d_prev, H, dh]
                let bias = next().squeeze_dim(2); // [b, H, d_m, dh]
                out_b[m - 1].push(bias.permute([0, 2, 1, 3])); // [b, d_m, H, dh]
            }
            if m < n_layers {
                let rows = next(); // [b, H, d_next, d_m, dh]
                out_w[m].push(rows.permute([0, 2, 3, 1, 4])); // [b, d_next, d_m, H, dh]
            }
        }
    }
}

/// Sum a non-empty list of contributions.
fn sum_all(parts: Vec<Tensor>) -> Tensor {
    let mut it = parts.into_iter();
    let first = it.next().expect("every tensor receives at least one attention contribution");
    it.fold(first, |acc, x| acc + x)
}

impl WsModuleT for NpAttention {
    /// # Shapes
    /// weights `[b, C, n_out, n_in(, kh, kw)]` and biases `[b, C, n_out]` keep their shapes.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> WeightSpaceFeatures {
        debug_assert_eq!(wsfeat.num_layers(), self.spec.num_layers());
        let n_layers = wsfeat.num_layers();
        let (h, c) = (self.cfg.num_heads, self.cfg.channels);
        let b = wsfeat.batch_size();
        let ws: Vec<Tensor> = wsfeat.weights().iter().map(|w| channels_last(&fold(w))).collect(); // [b, n_out, n_in, k C]
        let bs: Vec<Tensor> = wsfeat.biases().iter().map(channels_last).collect(); // [b, n_out, C]
        let mut out_w: Vec<Vec<Tensor>> = (0..n_layers).map(|_| Vec::with_capacity(3)).collect();
        let mut out_b: Vec<Vec<Tensor>> = (0..n_layers).map(|_| Vec::with_capacity(2)).collect();
        if self.cfg.neuron_term {
            let qkv_w: Vec<Tensor> =
                ws.iter().enumerate().map(|(l, w)| self.proj.weight(l).forward(w)).collect(); // [b, n_out, n_in, 3C]
            let qkv_b: Vec<Tensor> =
                bs.iter().enumerate().map(|(l, x)| self.proj.bias(l).forward(x)).collect(); // [b, n_out, 3C]
            self.neuron_term(&qkv_w, &qkv_b, train, &mut out_w, &mut out_b);
        }
        if self.cfg.layer_term {
            let (lw, lb) = self.layer_term(&ws, &bs);
            for (l, (lw, lb)) in lw.into_iter().zip(lb).enumerate() {
                out_w[l].push(lw.view([b, 1, 1, h, c / h]));
                out_b[l].push(lb.view([b, 1, h, c / h]));
            }
        }
        let (weights, biases) = out_w
            .into_iter()
            .zip(out_b)
            .zip(self.spec.layers())
            .enumerate()
            .map(|(l, ((w_parts, b_parts), layer))| {
                let (n_out, n_in) = (layer.n_out, layer.n_in);
                let count = w_parts.len() as f64;
                let mut w = sum_all(w_parts).reshape([b, n_out, n_in, c]); // [b, n_out, n_in, C]
                if let Projections::PerLayer { unproject, .. } = &self.proj {
                    // Each contribution is unprojected (design.md §8.13): the bias counts
                    // `count` times.
                    w = unproject[l].forward(&w); // [b, n_out, n_in, k C]
                    if let Some(bias) = &unproject[l].bias {
                        w = w.g_add(&(cast_like(bias, &w) * (count - 1.0)));
                    }
                }
                let bias = sum_all(b_parts).reshape([b, n_out, c]); // [b, n_out, C]
                (unfold(&channels_first(&w), layer.kernel), channels_first(&bias))
            })
            .unzip();
        WeightSpaceFeatures::from_parts_unchecked(weights, biases)
    }
}
