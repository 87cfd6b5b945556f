//! The NFT model for invariant tasks (design.md §6.4, the reconstruction of the unreleased
//! `NPTransformer`): input encoding, learned positional embedding, NFT blocks, then an invariant head.

use nfn_layers::{
    CrossAttnReadout, CrossAttnReadoutConfig, GaussianFourierConfig, GaussianFourierFeatures,
    HnpPool, LearnedPosEmbedding, LearnedPosEmbeddingConfig, NftBlock, NftBlockConfig, NpPool,
    Pointwise, PointwiseConfig, Precision, WsModuleT, WsReadoutT, WsSequential,
};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::error::{Error, Result};
use crate::head::{MlpHead, MlpHeadConfig};
use crate::invariant_nfn::PoolKind;
use crate::model::InvariantModel;

/// How raw 1-channel weights become `channels` features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NftInput {
    /// A per-layer pointwise map `1 -> channels`.
    Pointwise,
    /// Gaussian Fourier features with `channels / 2` frequencies of this scale (Inr2Array: 3).
    Fourier {
        /// Standard deviation of the random frequencies.
        scale: f64,
    },
}

/// The invariant read-out after the NFT blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NftReadout {
    /// Cross-attention to `num_latents` learned latents (design.md §4.5), averaged, then the MLP.
    CrossAttention {
        /// Number of latents M.
        num_latents: i64,
        /// Latent width D.
        latent_dim: i64,
    },
    /// NP or HNP pooling, then the MLP.
    Pool(PoolKind),
}

/// Settings of [`NftModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NftModelConfig {
    /// Input encoding.
    pub input: NftInput,
    /// Feature channels C (Inr2Array: 256).
    pub channels: i64,
    /// Number of NFT blocks (NPTransformer configs: 4).
    pub num_blocks: usize,
    /// Attention heads (Inr2Array: 4).
    pub num_heads: i64,
    /// Feed-forward expansion (NPTransformer configs: 2; Inr2Array: 4).
    pub ff_factor: i64,
    /// Dropout in the blocks (NPTransformer configs: 0.1).
    pub dropout: f64,
    /// The invariant read-out.
    pub readout: NftReadout,
    /// The MLP head after the read-out.
    pub head: MlpHeadConfig,
    /// Activations of the positional embedding and the NFT blocks: `fp32` (default), `bf16`, or
    /// `auto` (bf16 on a GPU); parameters stay fp32 (see [`nfn_layers::precision`]).
    #[serde(skip_serializing_if = "Precision::is_default")]
    pub precision: Precision,
}

impl Default for NftModelConfig {
    fn default() -> Self {
        NftModelConfig {
            input: NftInput::Fourier { scale: 3.0 }, // NPTransformer Fourier variant
            channels: 256,
            num_blocks: 4, // NPTransformer configs
            num_heads: 4,
            ff_factor: 2, // NPTransformer configs
            dropout: 0.1, // NPTransformer configs
            readout: NftReadout::CrossAttention { num_latents: 16, latent_dim: 256 },
            head: MlpHeadConfig { hidden: vec![1000, 1000], dropout: 0.1, ..Default::default() },
            precision: Precision::Fp32,
        }
    }
}

impl NftModelConfig {
    /// Check the values.
    ///
    /// # Errors
    /// [`Error::Config`] for widths that don't divide into heads, an odd Fourier width, or bad head settings.
    pub fn validate(&self) -> Result<()> {
        if self.channels <= 0 || self.num_heads <= 0 || self.channels % self.num_heads != 0 {
            return Err(Error::Config(format!(
                "channels {} must be a positive multiple of num_heads {}",
                self.channels, self.num_heads
            )));
        }
        if matches!(self.input, NftInput::Fourier { .. }) && self.channels % 2 != 0 {
            return Err(Error::Config("Fourier input needs an even channel count".into()));
        }
        if !(0.0..1.0).contains(&self.dropout) || self.ff_factor <= 0 {
            return Err(Error::Config(format!(
                "bad dropout {} or ff_factor {}",
                self.dropout, self.ff_factor
            )));
        }
        self.head.validate()
    }
}

/// Append the learned positional embedding (design.md §2.5) and `num_blocks` NFT blocks (design.md
/// §4.3) to `trunk`, under `vs / "pos_embed"` and `vs / "block<i>"`.
///
/// # Errors
/// [`Error::Layers`] if a layer does not fit the spec.
pub fn push_nft_trunk(
    trunk: &mut WsSequential,
    vs: &nn::Path,
    spec: &NetworkSpec,
    block: &NftBlockConfig,
    num_blocks: usize,
) -> Result<()> {
    let pos = LearnedPosEmbeddingConfig { channels: block.channels };
    trunk.push(Box::new(LearnedPosEmbedding::new(&(vs / "pos_embed"), spec, &pos)?));
    for i in 0..num_blocks {
        trunk.push(Box::new(NftBlock::new(&(vs / format!("block{i}")), spec, block)?));
    }
    Ok(())
}

/// Encoding → positional embedding → NFT blocks → invariant read-out → MLP.
#[derive(Debug)]
pub struct NftModel {
    input: Box<dyn WsModuleT>,
    trunk: WsSequential,
    precision: Precision,
    readout: Box<dyn WsReadoutT>,
    mean_latents: bool,
    head: MlpHead,
}

impl NftModel {
    /// A model for 1-channel features of `spec` with `num_outputs` outputs. CNN specs use per-layer
    /// (unshared) attention projections (design.md §4.4).
    ///
    /// # Errors
    /// [`Error::Layers`] if a layer does not fit the spec.
    pub fn new(
        vs: &nn::Path,
        spec: &NetworkSpec,
        num_outputs: i64,
        cfg: &NftModelConfig,
    ) -> Result<Self> {
        let c = cfg.channels;
        let mut trunk = WsSequential::new();
        let input: Box<dyn WsModuleT> = match cfg.input {
            NftInput::Pointwise => {
                let pcfg = PointwiseConfig { c_in: 1, c_out: c };
                Box::new(Pointwise::new(&(vs / "input"), spec, &pcfg)?)
            }
            NftInput::Fourier { scale } => {
                let fcfg = GaussianFourierConfig { in_channels: 1, mapping_size: c / 2, scale };
                Box::new(GaussianFourierFeatures::new(&(vs / "input"), spec, &fcfg)?)
            }
        };
        let block = NftBlockConfig {
            channels: c,
            num_heads: cfg.num_heads,
            ff_factor: cfg.ff_factor,
            dropout: cfg.dropout,
            share_projections: !spec.is_cnn(),
        };
        push_nft_trunk(&mut trunk, vs, spec, &block, cfg.num_blocks)?;
        let (readout, width, mean_latents): (Box<dyn WsReadoutT>, i64, bool) = match &cfg.readout {
            NftReadout::CrossAttention { num_latents, latent_dim } => {
                let rcfg = CrossAttnReadoutConfig {
                    channels: c,
                    num_latents: *num_latents,
                    latent_dim: *latent_dim,
                    head_dim: c,
                    ..Default::default()
                };
                (
                    Box::new(CrossAttnReadout::new(&(vs / "readout"), spec, &rcfg)?),
                    *latent_dim,
                    true,
                )
            }
            NftReadout::Pool(PoolKind::Np) => {
                (Box::new(NpPool::new(spec)), NpPool::out_features(spec, c), false)
            }
            NftReadout::Pool(PoolKind::Hnp) => {
                (Box::new(HnpPool::new(spec)?), HnpPool::out_features(spec, c), false)
            }
        };
        let head = MlpHead::new(&(vs / "head"), width, num_outputs, &cfg.head);
        Ok(NftModel { input, trunk, precision: cfg.precision, readout, mean_latents, head })
    }
}

impl InvariantModel for NftModel {
    /// # Shapes
    /// 1-channel features of `b` networks → `[b, num_outputs]`
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> Tensor {
        let xs = self.input.forward_t(wsfeat, train);
        let hs = self.precision.run(&xs, |xs| self.trunk.forward_t(xs, train));
        let pooled = self.readout.forward_t(&hs, train); // [b, M, D] or [b, width]
        let pooled =
            if self.mean_latents { pooled.mean_dim(1, false, pooled.kind()) } else { pooled };
        self.head.forward_t(&pooled, train)
    }
}
