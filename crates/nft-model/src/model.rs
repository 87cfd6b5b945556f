//! One config enum for every invariant model, as experiment files name them.

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::error::Result;
use crate::head::MlpHeadConfig;
use crate::invariant_nfn::{InvariantNfn, InvariantNfnConfig};
use crate::mlp::{MlpConfig, MlpOnWeights};
use crate::nft::{NftModel, NftModelConfig};
use crate::probe::{ProbeConfig, ProbeModel};
use crate::statnet::StatNet;

/// A model from weight-space features to one output vector per network.
pub trait InvariantModel: std::fmt::Debug + Send {
    /// # Shapes
    /// features of a batch of `b` networks → `[b, num_outputs]`.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> Tensor;
}

/// Any invariant model (`kind = "nft" | "nfn" | "mlp" | "statnet" | "probe" | "probegen"` in TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelConfig {
    /// The NFT.
    Nft(NftModelConfig),
    /// InvariantNFN with NP or HNP layers.
    Nfn(InvariantNfnConfig),
    /// MLP on the flattened weights.
    Mlp(MlpConfig),
    /// StatNet.
    Statnet(MlpHeadConfig),
    /// Vanilla probing: the network's outputs at learned inputs, then an MLP.
    Probe(ProbeConfig),
    /// ProbeGen: probing with inputs made by a deep linear generator from learned codes.
    Probegen(ProbeConfig),
}

impl ModelConfig {
    /// Check the values.
    ///
    /// # Errors
    /// The model config's own validation error.
    pub fn validate(&self) -> Result<()> {
        match self {
            ModelConfig::Nft(c) => c.validate(),
            ModelConfig::Nfn(c) => c.validate(),
            ModelConfig::Mlp(c) => c.validate(),
            ModelConfig::Statnet(c) => c.validate(),
            ModelConfig::Probe(c) | ModelConfig::Probegen(c) => c.validate(),
        }
    }

    /// A short name for tables (`nft`, `nfn-hnp`, `nfn-np`, `mlp`, `statnet`, `probe`, `probegen`).
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::Nft(_) => "nft",
            ModelConfig::Nfn(c) if c.layer == crate::invariant_nfn::NfnLayerKind::Np => "nfn-np",
            ModelConfig::Nfn(_) => "nfn-hnp",
            ModelConfig::Mlp(_) => "mlp",
            ModelConfig::Statnet(_) => "statnet",
            ModelConfig::Probe(_) => "probe",
            ModelConfig::Probegen(_) => "probegen",
        }
    }

    /// Whether the model runs the networks its input describes, so it must see their raw weights
    /// (no per-position standardisation of the data).
    pub fn reads_raw_weights(&self) -> bool {
        matches!(self, ModelConfig::Probe(_) | ModelConfig::Probegen(_))
    }

    /// Build the model in `vs` for 1-channel features of `spec`.
    ///
    /// # Errors
    /// [`crate::Error::Layers`] if a layer does not fit the spec.
    pub fn build(
        &self,
        vs: &nn::Path,
        spec: &NetworkSpec,
        num_outputs: i64,
    ) -> Result<Box<dyn InvariantModel>> {
        Ok(match self {
            ModelConfig::Nft(c) => Box::new(NftModel::new(vs, spec, num_outputs, c)?),
            ModelConfig::Nfn(c) => Box::new(InvariantNfn::new(vs, spec, num_outputs, c)?),
            ModelConfig::Mlp(c) => Box::new(MlpOnWeights::new(vs, spec, num_outputs, c)),
            ModelConfig::Statnet(c) => Box::new(StatNet::new(vs, spec, num_outputs, c)),
            ModelConfig::Probe(c) => Box::new(ProbeModel::new(vs, spec, num_outputs, c, false)?),
            ModelConfig::Probegen(c) => Box::new(ProbeModel::new(vs, spec, num_outputs, c, true)?),
        })
    }
}
