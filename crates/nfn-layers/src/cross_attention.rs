//! Cross-attention read-out to a permutation-invariant latent array (design.md §4.5).
//!
//! Perceiver-style, depth 1, no latent self-attention:
//! `Z = Z0 + OutProj(Attn(LN_q(Z0) Wq, LN_kv(X) Wk, LN_kv(X) Wv))`, then
//! `Z = Z + FF_geglu(LN_ff(Z))`, with `X` the weight-space token set `[b, N, C]`.

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::module::WsReadoutT;
use crate::pointwise::{channels_last, ChannelLinear};

/// Configuration of [`CrossAttnReadout`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrossAttnReadoutConfig {
    /// Channels `C` of the weight-space tokens.
    pub channels: i64,
    /// Number of latents `M`.
    pub num_latents: i64,
    /// Latent width `D`.
    pub latent_dim: i64,
    /// Cross-attention heads.
    pub num_heads: i64,
    /// Width of each head.
    pub head_dim: i64,
    /// GEGLU hidden width factor: `Linear(D, 2 f D)`, gate, `Linear(f D, D)`.
    pub ff_mult: i64,
    /// Dropout on the feed-forward output and the attention probabilities (training only).
    pub dropout: f64,
}

impl Default for CrossAttnReadoutConfig {
    fn default() -> Self {
        CrossAttnReadoutConfig {
            channels: 256,   // NFT width (design.md §5.1)
            num_latents: 16, // M = 16 (4 x 4 spatial latent)
            latent_dim: 256, // D = 256
            num_heads: 1,    // one cross head
            head_dim: 256,   // head dim = C
            ff_mult: 4,      // Linear(D, 8D) -> GEGLU -> Linear(4D, D)
            dropout: 0.0,    // no dropout
        }
    }
}

impl CrossAttnReadoutConfig {
    /// Check positive sizes and `0 <= dropout < 1`.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            self.channels,
            self.num_latents,
            self.latent_dim,
            self.num_heads,
            self.head_dim,
            self.ff_mult,
        ];
        if sizes.iter().any(|&s| s < 1) || !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!("invalid cross-attention read-out config {self:?}")));
        }
        Ok(())
    }
}

/// Perceiver cross-attention from `M` learned latents to the weight-space token set (design.md
/// §4.5). Invariant to any permutation of the tokens, hence to hidden-neuron permutations.
///
/// Parameters: `latents` `[M, D]` (init `N(0, 1)`); LayerNorms `ln_latents` (D), `ln_tokens` (C),
/// `ln_ff` (D); `to_q` `[H dh, D]` and `to_kv` `[2 H dh, C]` (no bias; k first, then v);
/// `to_out` (`H dh -> D`); `ff_in` (`D -> 2 f D`, value half first, then gate) and `ff_out`
/// (`f D -> D`).
#[derive(Debug)]
pub struct CrossAttnReadout {
    cfg: CrossAttnReadoutConfig,
    latents: Tensor,
    ln_latents: nn::LayerNorm,
    ln_tokens: nn::LayerNorm,
    to_q: ChannelLinear,
    to_kv: ChannelLinear,
    to_out: ChannelLinear,
    ln_ff: nn::LayerNorm,
    ff_in: ChannelLinear,
    ff_out: ChannelLinear,
}

impl CrossAttnReadout {
    /// Build the read-out for an MLP `spec`.
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid or `spec` has conv layers (the flat token set
    /// needs one feature width for all entries).
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &CrossAttnReadoutConfig) -> Result<Self> {
        cfg.validate()?;
        if spec.is_cnn() {
            return Err(Error::Config(
                "the cross-attention read-out takes MLP weights only".into(),
            ));
        }
        let (c, d, inner) = (cfg.channels, cfg.latent_dim, cfg.num_heads * cfg.head_dim);
        let hidden = cfg.ff_mult * d;
        let ln =
            |name: &str, width: i64| nn::layer_norm(vs / name, vec![width], Default::default());
        Ok(CrossAttnReadout {
            cfg: cfg.clone(),
            latents: vs.var(
                "latents",
                &[cfg.num_latents, d],
                Init::Randn { mean: 0.0, stdev: 1.0 },
            ),
            ln_latents: ln("ln_latents", d),
            ln_tokens: ln("ln_tokens", c),
            to_q: ChannelLinear::new(&(vs / "to_q"), d, inner, false),
            to_kv: ChannelLinear::new(&(vs / "to_kv"), c, 2 * inner, false),
            to_out: ChannelLinear::new(&(vs / "to_out"), inner, d, true),
            ln_ff: ln("ln_ff", d),
            ff_in: ChannelLinear::new(&(vs / "ff_in"), d, 2 * hidden, true),
            ff_out: ChannelLinear::new(&(vs / "ff_out"), hidden, d, true),
        })
    }

    /// The config this read-out was built with.
    pub fn config(&self) -> &CrossAttnReadoutConfig {
        &self.cfg
    }
}

/// The weight-space token set `[b, N, C]`: per layer the weight entries row-major, then the bias
/// (design.md §1.4). No copy per tensor when the features are channel-last in memory.
pub fn tokens(wsfeat: &WeightSpaceFeatures) -> Tensor {
    let (b, c) = (wsfeat.batch_size(), wsfeat.channels());
    let parts: Vec<Tensor> = wsfeat
        .iter()
        .flat_map(|(w, bias)| [channels_last(w).reshape([b, -1, c]), channels_last(bias)])
        .collect();
    Tensor::cat(&parts, 1)
}

impl WsReadoutT for CrossAttnReadout {
    /// # Shapes
    /// MLP features with `C` channels → latents `[b, M, D]`
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> Tensor {
        use tch::nn::Module;
        let cfg = &self.cfg;
        let b = wsfeat.batch_size();
        let (m, h, dh) = (cfg.num_latents, cfg.num_heads, cfg.head_dim);
        let p = if train { cfg.dropout } else { 0.0 };
        let xs = self.ln_tokens.forward(&tokens(wsfeat)); // [b, N, C]
        let n = xs.size()[1];
        let kv = self.to_kv.forward(&xs).view([b, n, 2, h, dh]).permute([2, 0, 3, 1, 4]); // [2, b, H, N, dh]
        let q = self.to_q.forward(&self.ln_latents.forward(&self.latents)); // [M, H dh]
        let q = q.view([1, m, h, dh]).permute([0, 2, 1, 3]).expand([b, h, m, dh], false); // [b, H, M, dh]
        let attn = Tensor::scaled_dot_product_attention::<Tensor>(
            &q,
            &kv.get(0),
            &kv.get(1),
            None,
            p,
            false,
            1.0 / (dh as f64).sqrt(),
            false,
        ); // [b, H, M, dh]
        let attn = attn.permute([0, 2, 1, 3]).reshape([b, m, h * dh]); // [b, M, H dh]
        let zs = self.to_out.forward(&attn) + &self.latents; // [b, M, D]
        let gate_in = self.ff_in.forward(&self.ln_ff.forward(&zs)); // [b, M, 2 f D]
        let halves = gate_in.chunk(2, -1);
        let ff = self.ff_out.forward(&(&halves[0] * halves[1].gelu("none"))); // [b, M, D]
        zs + ff.dropout(p, train)
    }
}
