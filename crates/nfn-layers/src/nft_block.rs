//! The pre-LN NFT block (design.md §4.3; NFT paper, Sec. 3).
//!
//! `x = x + Dropout(NpAttention(LN_1(x)))`, then
//! `x = x + Dropout(Pointwise(f C -> C)(GELU(Pointwise(C -> f C)(LN_2(x)))))`.

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::nn;

use crate::attention::{NpAttention, NpAttentionConfig};
use crate::elementwise::{WsActivation, WsDropout};
use crate::error::{Error, Result};
use crate::layer_norm::{WsLayerNorm, WsLayerNormConfig};
use crate::module::WsModuleT;
use crate::pointwise::{Pointwise, PointwiseConfig};

/// Configuration of [`NftBlock`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NftBlockConfig {
    /// Channels `C`.
    pub channels: i64,
    /// Attention heads `H`.
    pub num_heads: i64,
    /// Feed-forward expansion `f` (hidden width `f C`).
    pub ff_factor: i64,
    /// Dropout on both residual branches and on the attention probabilities.
    pub dropout: f64,
    /// Shared q/k/v projections (MLPs); `false` for CNN weight spaces.
    pub share_projections: bool,
}

impl Default for NftBlockConfig {
    fn default() -> Self {
        NftBlockConfig {
            channels: 256,           // Inr2Array encoder (design.md §5.1)
            num_heads: 4,            // H = 4, dh = 64
            ff_factor: 4,            // ff_factor = 4
            dropout: 0.0,            // no dropout in Inr2Array (0.1 in the unreleased NFT configs)
            share_projections: true, // SIREN weights
        }
    }
}

impl NftBlockConfig {
    /// The attention config this block uses.
    pub fn attention(&self) -> NpAttentionConfig {
        NpAttentionConfig {
            channels: self.channels,
            num_heads: self.num_heads,
            dropout: self.dropout,
            share_projections: self.share_projections,
            ..NpAttentionConfig::default()
        }
    }

    /// Check the attention config, `ff_factor >= 1` and `channels >= 2` (LayerNorm).
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        self.attention().validate()?;
        WsLayerNormConfig { channels: self.channels, ..Default::default() }.validate()?;
        if self.ff_factor < 1 {
            return Err(Error::Config(format!("ff_factor must be >= 1, got {}", self.ff_factor)));
        }
        Ok(())
    }
}

/// One pre-LN transformer block in weight space (design.md §4.3).
///
/// Parameters: `ln_attn`, `attn`, `ln_ff`, `ff_in`, `ff_out` (see the sub-layers).
#[derive(Debug)]
pub struct NftBlock {
    ln_attn: WsLayerNorm,
    attn: NpAttention,
    ln_ff: WsLayerNorm,
    ff_in: Pointwise,
    ff_out: Pointwise,
    dropout: WsDropout,
}

impl NftBlock {
    /// Build the block for `spec`.
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid or does not fit `spec` (shared projections on a CNN).
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &NftBlockConfig) -> Result<Self> {
        cfg.validate()?;
        let c = cfg.channels;
        let ln = WsLayerNormConfig { channels: c, ..Default::default() };
        Ok(NftBlock {
            ln_attn: WsLayerNorm::new(&(vs / "ln_attn"), spec, &ln)?,
            attn: NpAttention::new(&(vs / "attn"), spec, &cfg.attention())?,
            ln_ff: WsLayerNorm::new(&(vs / "ln_ff"), spec, &ln)?,
            ff_in: Pointwise::new(
                &(vs / "ff_in"),
                spec,
                &PointwiseConfig { c_in: c, c_out: cfg.ff_factor * c },
            )?,
            ff_out: Pointwise::new(
                &(vs / "ff_out"),
                spec,
                &PointwiseConfig { c_in: cfg.ff_factor * c, c_out: c },
            )?,
            dropout: WsDropout::new(cfg.dropout)?,
        })
    }

    /// The attention sub-layer.
    pub fn attention(&self) -> &NpAttention {
        &self.attn
    }
}

impl WsModuleT for NftBlock {
    /// # Shapes
    /// weights `[b, C, n_out, n_in(, kh, kw)]` and biases `[b, C, n_out]` keep their shapes.
    fn forward_t(&self, xs: &WeightSpaceFeatures, train: bool) -> WeightSpaceFeatures {
        let attn = self.attn.forward_t(&self.ln_attn.forward_t(xs, train), train);
        let xs = xs.add(&self.dropout.forward_t(&attn, train));
        let hidden = self.ff_in.forward_t(&self.ln_ff.forward_t(&xs, train), train); // [.., f C, ..]
        let hidden = WsActivation::Gelu.forward_t(&hidden, train);
        let ff = self.ff_out.forward_t(&hidden, train); // [.., C, ..]
        xs.add(&self.dropout.forward_t(&ff, train))
    }
}
