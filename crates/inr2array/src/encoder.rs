//! The Inr2Array encoder: SIREN weights to a permutation-invariant latent array (design.md §5.1, §4.5).
//!
//! raw weights (C = 1) → Gaussian Fourier features (m = C/2, scale 3) → learned positional
//! embedding → N NFT blocks → Perceiver cross-attention read-out to `M x D` latents.

use nfn_layers::{
    CrossAttnReadout, CrossAttnReadoutConfig, GaussianFourierConfig, GaussianFourierFeatures,
    LearnedPosEmbedding, LearnedPosEmbeddingConfig, NftBlock, NftBlockConfig, Precision, WsModuleT,
    WsReadoutT,
};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::error::{Error, Result};

/// Configuration of [`Inr2ArrayEncoder`]; the default is the paper's (`model=nft`, `crossattn_4x4`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncoderConfig {
    /// NFT width `C` (the Fourier features have `m = C / 2` frequencies).
    pub channels: i64,
    /// Standard deviation of the Fourier frequencies.
    pub fourier_scale: f64,
    /// Number of NFT blocks.
    pub num_blocks: usize,
    /// Attention heads per NFT block.
    pub num_heads: i64,
    /// NFT feed-forward expansion.
    pub ff_factor: i64,
    /// Dropout inside the NFT blocks.
    pub dropout: f64,
    /// Number of latents `M` (a square: the latents lie on a `g x g` grid).
    pub num_latents: i64,
    /// Latent width `D`.
    pub latent_dim: i64,
    /// Activations of the positional embedding and the NFT blocks: `fp32` (default), `bf16`, or
    /// `auto` (bf16 on a GPU); parameters stay fp32 (see [`nfn_layers::precision`]).
    #[serde(skip_serializing_if = "Precision::is_default")]
    pub precision: Precision,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            channels: 256,      // m = 128 Fourier frequencies -> C = 256
            fourier_scale: 3.0, // GaussFF scale 3
            num_blocks: 6,      // 6 NFT blocks
            num_heads: 4,       // H = 4, dh = 64
            ff_factor: 4,       // ff_factor 4
            dropout: 0.0,       // no dropout
            num_latents: 16,    // 4 x 4 spatial latent
            latent_dim: 256,    // D = 256
            precision: Precision::Fp32,
        }
    }
}

impl EncoderConfig {
    /// A CPU-sized encoder: C = 64, 2 blocks, 16 latents of width 64.
    pub fn small() -> Self {
        EncoderConfig { channels: 64, num_blocks: 2, latent_dim: 64, ..Default::default() }
    }

    /// Side `g` of the latent grid (`M = g²`).
    pub fn grid_side(&self) -> i64 {
        (self.num_latents as f64).sqrt().round() as i64
    }

    /// The NFT block config.
    pub fn block(&self) -> NftBlockConfig {
        NftBlockConfig {
            channels: self.channels,
            num_heads: self.num_heads,
            ff_factor: self.ff_factor,
            dropout: self.dropout,
            share_projections: true,
        }
    }

    /// The read-out config: one cross head of width `C`, GEGLU ×4, no dropout.
    pub fn readout(&self) -> CrossAttnReadoutConfig {
        CrossAttnReadoutConfig {
            channels: self.channels,
            num_latents: self.num_latents,
            latent_dim: self.latent_dim,
            num_heads: 1,
            head_dim: self.channels,
            ff_mult: 4,
            dropout: 0.0,
        }
    }

    /// Check an even width, a square number of latents and the sub-configs.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        let g = self.grid_side();
        if self.channels < 2 || self.channels % 2 != 0 {
            return Err(Error::Config(format!("channels must be even, got {}", self.channels)));
        }
        if self.num_latents < 1 || g * g != self.num_latents {
            return Err(Error::Config(format!(
                "num_latents must be a square (g x g grid), got {}",
                self.num_latents
            )));
        }
        if !(self.fourier_scale.is_finite() && self.fourier_scale >= 0.0) {
            return Err(Error::Config(format!("bad fourier_scale {}", self.fourier_scale)));
        }
        self.block().validate()?;
        self.readout().validate()?;
        Ok(())
    }
}

/// The Inr2Array encoder (design.md §5.1). Invariant to hidden-neuron permutations of its input.
///
/// Parameters: `fourier` (buffer `projection`), `pos_emb`, `blocks/<i>`, `readout`.
#[derive(Debug)]
pub struct Inr2ArrayEncoder {
    cfg: EncoderConfig,
    fourier: GaussianFourierFeatures,
    pos_emb: LearnedPosEmbedding,
    blocks: Vec<NftBlock>,
    readout: CrossAttnReadout,
}

impl Inr2ArrayEncoder {
    /// Build the encoder for SIRENs (or any MLP) of `spec`.
    ///
    /// # Errors
    /// [`Error::Config`] / [`Error::Layers`] if the config is invalid or `spec` has conv layers.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &EncoderConfig) -> Result<Self> {
        cfg.validate()?;
        let c = cfg.channels;
        let fourier = GaussianFourierFeatures::new(
            &(vs / "fourier"),
            spec,
            &GaussianFourierConfig {
                in_channels: 1,
                mapping_size: c / 2,
                scale: cfg.fourier_scale,
            },
        )?;
        let pos_emb = LearnedPosEmbedding::new(
            &(vs / "pos_emb"),
            spec,
            &LearnedPosEmbeddingConfig { channels: c },
        )?;
        let blocks_vs = vs / "blocks";
        let blocks = (0..cfg.num_blocks)
            .map(|i| NftBlock::new(&(&blocks_vs / i), spec, &cfg.block()))
            .collect::<nfn_layers::Result<Vec<_>>>()?;
        let readout = CrossAttnReadout::new(&(vs / "readout"), spec, &cfg.readout())?;
        Ok(Inr2ArrayEncoder { cfg: cfg.clone(), fourier, pos_emb, blocks, readout })
    }

    /// The config.
    pub fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    /// Encode raw SIREN weights.
    ///
    /// # Shapes
    /// features with 1 channel (`W_l` `[b, 1, n_out, n_in]`, `b_l` `[b, 1, n_out]`) → `[b, M, D]`
    pub fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> Tensor {
        debug_assert_eq!(wsfeat.channels(), 1);
        let xs = self.fourier.forward_t(wsfeat, train); // [b, C, ..]
        let xs = self.cfg.precision.run(&xs, |xs| {
            let xs = self.pos_emb.forward_t(xs, train);
            self.blocks.iter().fold(xs, |xs, block| block.forward_t(&xs, train))
        });
        self.readout.forward_t(&xs, train) // [b, M, D]
    }
}
