//! Equivariant models for weight-space editing (design.md §3.5 TransferNet, design.md §6.4 NFT with
//! an equivariant head): they predict a change `Δθ` with the input's shapes and return `θ + Δθ`.

use nfn_layers::{
    GaussianFourierConfig, GaussianFourierFeatures, HnpLinear, HnpLinearConfig, IoSinusoidalConfig,
    IoSinusoidalEncoding, LearnedScale, LearnedScaleConfig, NftBlockConfig, NpLinear,
    NpLinearConfig, Pointwise, PointwiseConfig, WsActivation, WsModuleT, WsSequential,
};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::nn;

use crate::error::{Error, Result};
use crate::invariant_nfn::NfnLayerKind;

/// Settings of [`TransferNet`], the NFN editing network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferNetConfig {
    /// NP (with the IO encoding) or HNP layers.
    pub layer: NfnLayerKind,
    /// Gaussian Fourier features of the raw weights (reference: m 128, scale 3).
    pub fourier: GaussianFourierConfig,
    /// Hidden channels (reference: 128).
    pub hidden: i64,
    /// Hidden equivariant layers after the first (reference: 2, i.e. 3 hidden layers in all).
    pub extra_layers: usize,
    /// Initial output scale (reference: 0.01).
    pub out_scale: f64,
}

impl Default for TransferNetConfig {
    fn default() -> Self {
        TransferNetConfig {
            layer: NfnLayerKind::Hnp,
            fourier: GaussianFourierConfig { in_channels: 1, mapping_size: 128, scale: 3.0 },
            hidden: 128,
            extra_layers: 2,
            out_scale: 0.01,
        }
    }
}

fn equiv_layer(
    vs: &nn::Path,
    spec: &NetworkSpec,
    kind: NfnLayerKind,
    c_in: i64,
    c_out: i64,
) -> Result<Box<dyn WsModuleT>> {
    Ok(match kind {
        NfnLayerKind::Np => {
            Box::new(NpLinear::new(vs, spec, &NpLinearConfig { c_in, c_out, io_embed: false })?)
        }
        NfnLayerKind::Hnp => Box::new(HnpLinear::new(vs, spec, &HnpLinearConfig { c_in, c_out })?),
    })
}

/// Fourier features [+ IO encoding] → equivariant layers with ReLU → one channel → learned scale,
/// added to the input.
#[derive(Debug)]
pub struct TransferNet {
    delta: WsSequential,
}

impl TransferNet {
    /// An editing network for 1-channel features of `spec`.
    ///
    /// # Errors
    /// [`Error::Config`] for a non-positive width; [`Error::Layers`] if a layer does not fit.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &TransferNetConfig) -> Result<Self> {
        if cfg.hidden <= 0 {
            return Err(Error::Config(format!("TransferNet hidden width {}", cfg.hidden)));
        }
        let mut delta = WsSequential::new();
        delta.push(Box::new(GaussianFourierFeatures::new(&(vs / "fourier"), spec, &cfg.fourier)?));
        let mut c = 2 * cfg.fourier.mapping_size;
        if cfg.layer == NfnLayerKind::Np {
            let io = IoSinusoidalConfig { max_freq: 3.0, num_bands: 3, enc_layers: false };
            delta.push(Box::new(IoSinusoidalEncoding::new(&(vs / "io_encoding"), spec, &io)?));
            c += io.extra_channels();
        }
        for i in 0..=cfg.extra_layers {
            delta.push(equiv_layer(&(vs / format!("layer{i}")), spec, cfg.layer, c, cfg.hidden)?);
            delta.push(Box::new(WsActivation::Relu));
            c = cfg.hidden;
        }
        delta.push(equiv_layer(&(vs / "out"), spec, cfg.layer, c, 1)?);
        let scale = LearnedScaleConfig { init_scale: cfg.out_scale };
        delta.push(Box::new(LearnedScale::new(&(vs / "scale"), spec, &scale)?));
        Ok(TransferNet { delta })
    }
}

impl WsModuleT for TransferNet {
    /// # Shapes
    /// 1-channel features → 1-channel features of the same spec (`θ + Δθ`).
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> WeightSpaceFeatures {
        wsfeat.add(&self.delta.forward_t(wsfeat, train))
    }
}

/// Settings of [`NftEditor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NftEditorConfig {
    /// Channels C.
    pub channels: i64,
    /// NFT blocks (NPTransformer configs: 4).
    pub num_blocks: usize,
    /// Attention heads.
    pub num_heads: i64,
    /// Feed-forward expansion (NPTransformer configs: 2).
    pub ff_factor: i64,
    /// Dropout in the blocks (NPTransformer configs: 0.1).
    pub dropout: f64,
    /// Gaussian Fourier scale of the input encoding (NPTransformer configs: 3).
    pub fourier_scale: f64,
    /// Initial output scale (0.01 as in the NFN editing models).
    pub out_scale: f64,
}

impl Default for NftEditorConfig {
    fn default() -> Self {
        NftEditorConfig {
            channels: 256,
            num_blocks: 4,
            num_heads: 4,
            ff_factor: 2,
            dropout: 0.1,
            fourier_scale: 3.0,
            out_scale: 0.01,
        }
    }
}

/// The NFT with an equivariant head (design.md §6.4): Fourier input, learned positional embedding,
/// NFT blocks, per-layer pointwise map to one channel, learned scale, added to the input weights.
#[derive(Debug)]
pub struct NftEditor {
    delta: WsSequential,
}

impl NftEditor {
    /// An editor for 1-channel features of `spec` (per-layer projections for CNNs, design.md §4.4).
    ///
    /// # Errors
    /// [`Error::Config`] for an odd or non-positive width; [`Error::Layers`] if a layer does not fit.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &NftEditorConfig) -> Result<Self> {
        let c = cfg.channels;
        if c <= 0 || c % 2 != 0 {
            return Err(Error::Config(format!("NftEditor needs an even positive width, got {c}")));
        }
        let mut delta = WsSequential::new();
        let fourier =
            GaussianFourierConfig { in_channels: 1, mapping_size: c / 2, scale: cfg.fourier_scale };
        delta.push(Box::new(GaussianFourierFeatures::new(&(vs / "input"), spec, &fourier)?));
        let block = NftBlockConfig {
            channels: c,
            num_heads: cfg.num_heads,
            ff_factor: cfg.ff_factor,
            dropout: cfg.dropout,
            share_projections: !spec.is_cnn(),
        };
        crate::nft::push_nft_trunk(&mut delta, vs, spec, &block, cfg.num_blocks)?;
        let out = PointwiseConfig { c_in: c, c_out: 1 };
        delta.push(Box::new(Pointwise::new(&(vs / "out"), spec, &out)?));
        let scale = LearnedScaleConfig { init_scale: cfg.out_scale };
        delta.push(Box::new(LearnedScale::new(&(vs / "scale"), spec, &scale)?));
        Ok(NftEditor { delta })
    }
}

impl WsModuleT for NftEditor {
    /// # Shapes
    /// 1-channel features → 1-channel features of the same spec (`θ + Δθ`).
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> WeightSpaceFeatures {
        wsfeat.add(&self.delta.forward_t(wsfeat, train))
    }
}

/// Either editing model, as experiment files name them (`kind = "nft" | "nfn"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EditorConfig {
    /// The NFT with an equivariant head.
    Nft(NftEditorConfig),
    /// TransferNet with NP or HNP layers.
    Nfn(TransferNetConfig),
}

impl EditorConfig {
    /// A short name for tables (`nft-editor`, `nfn-np-editor`, `nfn-hnp-editor`).
    pub fn name(&self) -> &'static str {
        match self {
            EditorConfig::Nft(_) => "nft-editor",
            EditorConfig::Nfn(c) if c.layer == NfnLayerKind::Np => "nfn-np-editor",
            EditorConfig::Nfn(_) => "nfn-hnp-editor",
        }
    }

    /// Build the editor in `vs` for 1-channel features of `spec`.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid widths; [`Error::Layers`] if a layer does not fit.
    pub fn build(&self, vs: &nn::Path, spec: &NetworkSpec) -> Result<Box<dyn WsModuleT>> {
        Ok(match self {
            EditorConfig::Nft(c) => Box::new(NftEditor::new(vs, spec, c)?),
            EditorConfig::Nfn(c) => Box::new(TransferNet::new(vs, spec, c)?),
        })
    }
}
