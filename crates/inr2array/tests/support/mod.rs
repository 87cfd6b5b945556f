//! Tiny configs shared by the integration tests.
#![allow(dead_code)]

use inr2array::{AutoencoderConfig, DecoderConfig, EncoderConfig};

/// A tiny encoder: C = 8, one block of 2 heads, 2 x 2 latents of width 8.
pub fn tiny_encoder() -> EncoderConfig {
    EncoderConfig {
        channels: 8,
        num_blocks: 1,
        num_heads: 2,
        num_latents: 4,
        latent_dim: 8,
        ..Default::default()
    }
}

/// A tiny autoencoder on 28 x 28 images.
pub fn tiny_autoencoder() -> AutoencoderConfig {
    AutoencoderConfig {
        encoder: tiny_encoder(),
        decoder: DecoderConfig { hidden_dim: 16, ..Default::default() },
        image_size: [28, 28],
    }
}
