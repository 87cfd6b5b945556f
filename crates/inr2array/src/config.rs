//! Experiment configs of the Inr2Array runs (`xtask/configs/inr2array_*.toml`): pretraining the
//! autoencoder (design.md §5.4) and classifying its latents (design.md §5.5).

use std::path::{Path, PathBuf};

use nft_model::{PaperRef, TrainerConfig};
use serde::{Deserialize, Serialize};

use crate::autoencoder::AutoencoderConfig;
use crate::classifier::ClassifierConfig;
use crate::error::{Error, Result};

/// The `task` of a pretraining config.
pub const PRETRAIN_TASK: &str = "inr2array_pretrain";
/// The `task` of a classification config.
pub const CLASSIFY_TASK: &str = "inr2array_classify";

/// The INR data of a pretraining run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainDataConfig {
    /// The INR data set folder written by `nfn fit-inrs`.
    pub inrs: PathBuf,
    /// Training batch size (reference: 64, drop last).
    #[serde(default = "default_pretrain_batch")]
    pub batch_size: i64,
    /// Evaluation batch size.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: i64,
    /// Train on the augmentation copies too (reference: `extra_aug = 10`).
    #[serde(default)]
    pub use_copies: bool,
    /// Validate on only the first this many validation INRs (CPU runs).
    #[serde(default)]
    pub val_limit: Option<i64>,
    /// More INR sets whose training INRs join the training split, e.g. the same images fitted with
    /// another recipe (`nfn fit-inrs --recipe reference`) or by another tool, so that the encoder
    /// learns INRs of more than one fitter. Validation and test stay `inrs`'s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_train: Vec<PathBuf>,
}

fn default_pretrain_batch() -> i64 {
    64
}

fn default_eval_batch() -> i64 {
    256
}

fn check_common(name: &str, task: &str, expected: &str, batches: &[i64]) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(Error::Config(format!("name {name:?} must be a plain folder name")));
    }
    if task != expected {
        return Err(Error::Config(format!("task must be {expected:?}, got {task:?}")));
    }
    if batches.iter().any(|&b| b < 1) {
        return Err(Error::Config("batch and chunk sizes must be positive".into()));
    }
    Ok(())
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    toml::from_str(&text).map_err(|e| Error::file(path, e))
}

/// An Inr2Array pretraining experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    /// Run name; outputs go to `<runs>/<name>/`.
    pub name: String,
    /// Always [`PRETRAIN_TASK`].
    pub task: String,
    /// Data.
    pub data: PretrainDataConfig,
    /// The autoencoder.
    #[serde(default)]
    pub model: AutoencoderConfig,
    /// Trainer (see [`crate::autoencoder::reference_trainer`] for the paper's values).
    #[serde(default = "crate::autoencoder::reference_trainer")]
    pub trainer: TrainerConfig,
    /// The paper's number, if any.
    #[serde(default)]
    pub paper: Option<PaperRef>,
}

impl PretrainConfig {
    /// Read and validate a TOML config.
    ///
    /// # Errors
    /// [`Error::File`] for unreadable files or unknown fields, [`Error::Config`] for invalid values.
    pub fn read(path: &Path) -> Result<Self> {
        let cfg: Self = read_toml(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check every part.
    ///
    /// # Errors
    /// [`Error::Config`] for the first invalid value.
    pub fn validate(&self) -> Result<()> {
        let d = &self.data;
        check_common(&self.name, &self.task, PRETRAIN_TASK, &[d.batch_size, d.eval_batch_size])?;
        if d.val_limit.is_some_and(|n| n < 1) {
            return Err(Error::Config("val_limit must be positive".into()));
        }
        self.model.validate()?;
        self.trainer.validate()?;
        Ok(())
    }
}

/// The data of a latent classification run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyDataConfig {
    /// The INR data set to encode (default: the pretraining run's).
    #[serde(default)]
    pub inrs: Option<PathBuf>,
    /// Training batch size (reference: 128, shuffle, drop last).
    #[serde(default = "default_classify_batch")]
    pub batch_size: i64,
    /// Evaluation batch size.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: i64,
    /// Networks encoded per forward pass during extraction.
    #[serde(default = "default_pretrain_batch")]
    pub extract_batch_size: i64,
    /// Networks per latent chunk file.
    #[serde(default = "default_chunk")]
    pub chunk_size: i64,
    /// More INR sets whose training INRs are encoded too and added to the training latents, e.g.
    /// the same images fitted with another recipe (`nfn fit-inrs --recipe reference`), so that the
    /// classifier learns latents of INRs from more than one fitter. Their latents are cached under
    /// `<encoder_run>/latents/extra/<set folder name>/train/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_train: Vec<PathBuf>,
    /// Train on the latents of the set's augmentation copies too (the other fits of every training
    /// image, design.md §6.1), cached apart under `<encoder_run>/latents/train-copies/`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_copies: bool,
}

fn default_classify_batch() -> i64 {
    128
}

fn default_chunk() -> i64 {
    2048
}

/// An Inr2Array latent classification experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// Run name; outputs go to `<runs>/<name>/`.
    pub name: String,
    /// Always [`CLASSIFY_TASK`].
    pub task: String,
    /// The pretraining run folder whose best encoder makes the latents (its latents are cached in
    /// `<encoder_run>/latents/<split>/`).
    pub encoder_run: PathBuf,
    /// Data.
    pub data: ClassifyDataConfig,
    /// The classifier (`latent_dim` must match the encoder's).
    #[serde(default)]
    pub model: ClassifierConfig,
    /// Trainer.
    pub trainer: TrainerConfig,
    /// If set, train this many epochs: `steps = epochs * steps_per_epoch`, validating every epoch
    /// (reference: 100).
    #[serde(default)]
    pub epochs: Option<u64>,
    /// The paper's number, if any.
    #[serde(default)]
    pub paper: Option<PaperRef>,
}

impl ClassifyConfig {
    /// Read and validate a TOML config.
    ///
    /// # Errors
    /// [`Error::File`] for unreadable files or unknown fields, [`Error::Config`] for invalid values.
    pub fn read(path: &Path) -> Result<Self> {
        let cfg: Self = read_toml(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check every part.
    ///
    /// # Errors
    /// [`Error::Config`] for the first invalid value.
    pub fn validate(&self) -> Result<()> {
        let d = &self.data;
        let sizes = [d.batch_size, d.eval_batch_size, d.extract_batch_size, d.chunk_size];
        check_common(&self.name, &self.task, CLASSIFY_TASK, &sizes)?;
        if self.epochs == Some(0) {
            return Err(Error::Config("epochs must be positive".into()));
        }
        self.model.validate()?;
        self.trainer.validate()?;
        Ok(())
    }

    /// The trainer settings for `per_epoch` steps per epoch (applies [`Self::epochs`]).
    pub fn trainer_for(&self, per_epoch: u64) -> TrainerConfig {
        let mut cfg = self.trainer.clone();
        if let Some(epochs) = self.epochs {
            cfg.steps = epochs * per_epoch;
            cfg.eval_every = per_epoch;
        }
        cfg
    }
}
