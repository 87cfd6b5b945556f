//! InvariantNFN: the NFN classifier / regressor baseline (design.md §3.5), with NP or HNP layers.

use nfn_layers::{
    ChannelDropout, ChannelScaledT, GaussianFourierConfig, GaussianFourierFeatures, HnpLinear,
    HnpLinearConfig, HnpPool, IoSinusoidalConfig, IoSinusoidalEncoding, LinearReluDropout,
    NpLinear, NpLinearConfig, NpPool, WsActivation, WsLayerNorm, WsLayerNormConfig, WsModuleT,
    WsReadoutT, WsSequential,
};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::error::{Error, Result};
use crate::head::{MlpHead, MlpHeadConfig};
use crate::model::InvariantModel;

/// Which equivariant linear layer the trunk uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NfnLayerKind {
    /// NP layers (design.md §3.2): equivariant to permuting all neurons; combine with IO encodings.
    Np,
    /// HNP layers (design.md §3.3): equivariant to hidden-neuron permutations only.
    Hnp,
}

/// Which invariant pooling ends the trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// Means over every neuron axis (design.md §3.4).
    Np,
    /// Keeps the input and output neurons (design.md §3.4); the reference head's default.
    Hnp,
}

/// Settings of [`InvariantNfn`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvariantNfnConfig {
    /// NP or HNP layers.
    pub layer: NfnLayerKind,
    /// Output channels of each equivariant layer (classify_siren: [512, 512, 512]).
    pub hidden: Vec<i64>,
    /// Gaussian Fourier input features (classify_siren: m 128, scale 10; MNIST variants scale 3).
    pub fourier: Option<GaussianFourierConfig>,
    /// IO sinusoidal encoding (NFN-NP on SIRENs: max_freq 10, 6 bands, no layer code).
    pub io_encoding: Option<IoSinusoidalConfig>,
    /// Learned IO embeddings in every NP layer (NP-PosEmb, CNN zoo).
    pub io_embed: bool,
    /// Weight-space LayerNorm after each equivariant layer.
    pub layer_norm: bool,
    /// Channel dropout after each activation (MNIST variants: 0.1).
    pub feature_dropout: f64,
    /// The pooling (reference: HNP, even for NP trunks).
    pub pool: PoolKind,
    /// The MLP head (reference: 1000-1000, dropout 0.5 for SIRENs).
    pub head: MlpHeadConfig,
}

impl Default for InvariantNfnConfig {
    fn default() -> Self {
        InvariantNfnConfig {
            layer: NfnLayerKind::Hnp,
            hidden: vec![512, 512, 512],
            fourier: Some(GaussianFourierConfig { in_channels: 1, mapping_size: 128, scale: 10.0 }),
            io_encoding: None,
            io_embed: false,
            layer_norm: false,
            feature_dropout: 0.0,
            pool: PoolKind::Hnp,
            head: MlpHeadConfig { hidden: vec![1000, 1000], dropout: 0.5, ..Default::default() },
        }
    }
}

impl InvariantNfnConfig {
    /// Check the values.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty trunk, non-positive widths or a dropout outside `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.is_empty() || self.hidden.iter().any(|&c| c <= 0) {
            return Err(Error::Config(format!(
                "InvariantNFN needs positive widths, got {:?}",
                self.hidden
            )));
        }
        if !(0.0..1.0).contains(&self.feature_dropout) {
            return Err(Error::Config(format!(
                "feature_dropout {} not in [0, 1)",
                self.feature_dropout
            )));
        }
        self.head.validate()
    }
}

/// Encodings, `[equivariant layer, (LayerNorm), ReLU, (ChannelDropout)] x n`, pooling, MLP head.
#[derive(Debug)]
pub struct InvariantNfn {
    trunk: WsSequential,
    pool: Box<dyn WsReadoutT>,
    head: MlpHead,
}

impl InvariantNfn {
    /// A model for 1-channel features of `spec` with `num_outputs` outputs.
    ///
    /// # Errors
    /// [`Error::Layers`] if a layer does not fit the spec (e.g. HNP needs two or more layers).
    pub fn new(
        vs: &nn::Path,
        spec: &NetworkSpec,
        num_outputs: i64,
        cfg: &InvariantNfnConfig,
    ) -> Result<Self> {
        let mut trunk = WsSequential::new();
        let mut c = 1;
        if let Some(ff) = &cfg.fourier {
            trunk.push(Box::new(GaussianFourierFeatures::new(&(vs / "fourier"), spec, ff)?));
            c = 2 * ff.mapping_size;
        }
        if let Some(io) = &cfg.io_encoding {
            trunk.push(Box::new(IoSinusoidalEncoding::new(&(vs / "io_encoding"), spec, io)?));
            c += io.extra_channels();
        }
        for (i, &c_out) in cfg.hidden.iter().enumerate() {
            let p = vs / format!("layer{i}");
            let linear: Box<dyn ChannelScaledT> = match cfg.layer {
                NfnLayerKind::Np => {
                    let lcfg = NpLinearConfig { c_in: c, c_out, io_embed: cfg.io_embed };
                    Box::new(NpLinear::new(&(&p / "linear"), spec, &lcfg)?)
                }
                NfnLayerKind::Hnp => {
                    let lcfg = HnpLinearConfig { c_in: c, c_out };
                    Box::new(HnpLinear::new(&(&p / "linear"), spec, &lcfg)?)
                }
            };
            if cfg.layer_norm {
                // the norm sits between the layer and the ReLU, so the dropout cannot fold in
                trunk.push(linear);
                let ln = WsLayerNormConfig { channels: c_out, ..Default::default() };
                trunk.push(Box::new(WsLayerNorm::new(&(&p / "norm"), spec, &ln)?));
                trunk.push(Box::new(WsActivation::Relu));
                if cfg.feature_dropout > 0.0 {
                    trunk.push(Box::new(ChannelDropout::new(cfg.feature_dropout)?));
                }
            } else {
                trunk.push(Box::new(LinearReluDropout::new(linear, cfg.feature_dropout)?));
            }
            c = c_out;
        }
        let (pool, width): (Box<dyn WsReadoutT>, i64) = match cfg.pool {
            PoolKind::Np => (Box::new(NpPool::new(spec)), NpPool::out_features(spec, c)),
            PoolKind::Hnp => (Box::new(HnpPool::new(spec)?), HnpPool::out_features(spec, c)),
        };
        let head = MlpHead::new(&(vs / "head"), width, num_outputs, &cfg.head);
        Ok(InvariantNfn { trunk, pool, head })
    }
}

impl InvariantModel for InvariantNfn {
    /// # Shapes
    /// 1-channel features of `b` networks → `[b, num_outputs]`
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> Tensor {
        let hs = self.trunk.forward_t(wsfeat, train);
        let pooled = self.pool.forward_t(&hs, train); // [b, width]
        self.head.forward_t(&pooled, train)
    }
}
