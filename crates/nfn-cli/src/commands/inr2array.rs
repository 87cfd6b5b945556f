//! Inr2Array experiments: `nfn train` dispatches configs with `task = "inr2array_pretrain"` or
//! `task = "inr2array_classify"` here.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// Pretrain the Inr2Array autoencoder of `config`; returns the run folder.
pub fn pretrain(config: &Path, runs: &Path) -> Result<PathBuf> {
    let _ = (config, runs);
    bail!("Inr2Array pretraining is not implemented yet")
}

/// Extract latents with a pretrained encoder and train the latent classifier; returns the run folder.
pub fn classify(config: &Path, runs: &Path) -> Result<PathBuf> {
    let _ = (config, runs);
    bail!("the Inr2Array classifier is not implemented yet")
}
