//! Permutation-equivariant layers on weight-space features: the NFN layers (NP, HNP), the NFT
//! weight-space attention and block, invariant pooling and read-outs, and input encodings.
//!
//! Sits on `nfn-weightspace`; used by `nft-model` and `inr2array`. Every layer is a small struct
//! built from a `tch::nn::Path`, implementing [`WsModuleT`] (features to features) or
//! [`WsReadoutT`] (features to a tensor). Section numbers (§) refer to `docs/design.md`.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod error;
pub mod module;

// Shared blocks (design.md §2)
pub mod elementwise;
pub mod encodings;
pub mod layer_norm;
pub mod pointwise;
pub mod scale;

// NFN layers (design.md §3)
pub mod hnp_linear;
pub mod init;
pub mod np_linear;
pub mod pool;
pub mod stats;

// NFT layers (design.md §4)
pub mod attention;
pub mod cross_attention;
pub mod nft_block;
pub mod precision;

pub use error::{Error, Result};
pub use module::{ChannelScaledT, WsModuleT, WsReadoutT, WsSequential};
// NFN re-exports (np_linear, hnp_linear, pool, stats, init)
pub use hnp_linear::{HnpLinear, HnpLinearConfig};
pub use init::ChannelAffine;
pub use np_linear::{NpLinear, NpLinearConfig};
pub use pool::{HnpPool, NpPool};
pub use stats::StatFeaturizer;
// NFT and shared-block re-exports (elementwise, encodings, layer_norm, pointwise, scale, attention, nft_block, cross_attention)
pub use attention::{NpAttention, NpAttentionConfig};
pub use cross_attention::{CrossAttnReadout, CrossAttnReadoutConfig};
pub use elementwise::{ChannelDropout, LinearReluDropout, WsActivation, WsDropout};
pub use encodings::{
    GaussianFourierConfig, GaussianFourierFeatures, IoSinusoidalConfig, IoSinusoidalEncoding,
    LearnedPosEmbedding, LearnedPosEmbeddingConfig,
};
pub use layer_norm::{WsLayerNorm, WsLayerNormConfig};
pub use nft_block::{NftBlock, NftBlockConfig};
pub use pointwise::{ChannelLinear, Pointwise, PointwiseConfig};
pub use precision::Precision;
pub use scale::{LearnedScale, LearnedScaleConfig};
