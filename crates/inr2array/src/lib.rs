//! Inr2Array: an NFT encoder that turns a SIREN's weights into a permutation-invariant array of
//! latent vectors, a spatial hypernetwork decoder trained by function-space reconstruction, and a
//! transformer classifier over the latent array (design.md §4.5, §5).
//!
//! Sits on `nft-model` (trainer, [`nft_model::Task`]), `nfn-layers` (NFT blocks, cross-attention
//! read-out) and `nfn-weightspace`. The `nfn` CLI glues data sets in (`nfn train` on
//! `xtask/configs/inr2array_*.toml`, `nfn show`).
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod autoencoder;
pub mod classifier;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod error;
pub mod latents;
pub mod render;

pub use autoencoder::{reference_trainer, small_trainer, AutoencoderConfig, Inr2ArrayAutoencoder};
pub use classifier::{ClassifierConfig, TransformerClassifier};
pub use config::{ClassifyConfig, PretrainConfig, CLASSIFY_TASK, PRETRAIN_TASK};
pub use decoder::{DecoderConfig, DecoderType, SpatialDecoder};
pub use encoder::{EncoderConfig, Inr2ArrayEncoder};
pub use error::{Error, Result};
pub use latents::{
    extract_latents, latent_batches, missing_chunks, read_latents, LatentBatches, LatentMeta,
};
pub use render::{axis_cells, pixel_cells, SpatialRenderer};
