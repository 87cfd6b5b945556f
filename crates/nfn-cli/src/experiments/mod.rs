//! Every experiment kind, found by the `task` field of its config: how it trains into a run folder,
//! how a finished run is evaluated, and how its config is checked. Each kind's file builds its data
//! and model; the run handling they share lives in [`crate::driver`].

pub mod classify;
pub mod edit;
pub mod inr2array_classify;
pub mod inr2array_pretrain;
pub mod zoo;

use std::path::Path;

use anyhow::{bail, Context, Result};
use nft_model::{Evaluation, Run, RunSummary};
use serde::de::DeserializeOwned;

use crate::data::DataConfig;

/// The kinds of experiment, by the config's `task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentKind {
    /// INR classification from the weights (the default).
    Classify,
    /// Inr2Array autoencoder pretraining.
    Inr2ArrayPretrain,
    /// Classification of Inr2Array latents.
    Inr2ArrayClassify,
    /// INR editing.
    Edit,
    /// Predicting CNN generalisation from a zoo.
    Zoo,
}

impl ExperimentKind {
    /// The kind a `task` value names (`None`: the default, classification).
    ///
    /// # Errors
    /// An unknown task, listing the known ones.
    pub fn from_task(task: Option<&str>) -> Result<Self> {
        Ok(match task {
            None | Some(classify::TASK) => ExperimentKind::Classify,
            Some(inr2array::PRETRAIN_TASK) => ExperimentKind::Inr2ArrayPretrain,
            Some(inr2array::CLASSIFY_TASK) => ExperimentKind::Inr2ArrayClassify,
            Some(edit::TASK) => ExperimentKind::Edit,
            Some(zoo::TASK) => ExperimentKind::Zoo,
            Some(other) => bail!(
                "unknown task {other:?}; known: {:?}, {:?}, {:?}, {:?}, {:?}",
                classify::TASK,
                inr2array::PRETRAIN_TASK,
                inr2array::CLASSIFY_TASK,
                edit::TASK,
                zoo::TASK
            ),
        })
    }

    /// The kind of the config file at `path`.
    ///
    /// # Errors
    /// An unreadable or unparsable file, or an unknown task, naming the file.
    pub fn of_config(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
        let table: toml::Table = text.parse().with_context(|| format!("parsing {path:?}"))?;
        Self::from_task(table.get("task").and_then(toml::Value::as_str))
            .with_context(|| format!("in {path:?}"))
    }
}

/// Read the TOML config at `path` as `C` and validate it, naming the file in every error.
///
/// # Errors
/// Unreadable files, unknown fields, invalid values.
pub fn read_config<C: DeserializeOwned>(
    path: &Path,
    validate: impl FnOnce(&C) -> Result<()>,
) -> Result<C> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    let cfg: C = toml::from_str(&text).with_context(|| format!("parsing {path:?}"))?;
    validate(&cfg).with_context(|| format!("checking {path:?}"))?;
    Ok(cfg)
}

/// The checks every INR-set experiment shares: a plain folder name, its task, positive batches.
///
/// # Errors
/// The first invalid value.
pub fn check_common(name: &str, task: &str, expected: &str, data: &DataConfig) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) {
        bail!("name {name:?} must be a plain folder name");
    }
    if task != expected {
        bail!("task must be {expected:?}, got {task:?}");
    }
    if data.batch_size < 1 || data.eval_batch_size < 1 {
        bail!("batch sizes must be positive");
    }
    if let Some(aug) = &data.augment {
        if expected != classify::TASK {
            bail!("data.augment is for INR classification only ({expected} runs take none)");
        }
        aug.check()?;
    }
    Ok(())
}

/// Validate the config at `path` as its kind; a one-line description of it.
///
/// # Errors
/// The first invalid value, naming the file.
pub fn check(path: &Path) -> Result<String> {
    Ok(match ExperimentKind::of_config(path)? {
        ExperimentKind::Classify => {
            let cfg = classify::ExperimentConfig::read(path)?;
            format!("INR classification, {}, {} steps", cfg.model.name(), cfg.trainer.steps)
        }
        ExperimentKind::Inr2ArrayPretrain => {
            let cfg = inr2array::PretrainConfig::read(path)?;
            format!("Inr2Array pretraining, {} steps", cfg.trainer.steps)
        }
        ExperimentKind::Inr2ArrayClassify => {
            inr2array::ClassifyConfig::read(path)?;
            "Inr2Array latent classifier".into()
        }
        ExperimentKind::Edit => {
            let cfg = edit::EditConfig::read(path)?;
            format!(
                "INR editing, {}, {}, {} steps",
                cfg.style.name(),
                cfg.model.name(),
                cfg.trainer.steps
            )
        }
        ExperimentKind::Zoo => {
            let cfg = zoo::ZooConfig::read(path)?;
            format!("CNN generalisation, {}, {} steps", cfg.model.name(), cfg.trainer.steps)
        }
    })
}

/// Train the experiment of the config at `path` in `<runs>/<name>/` (resuming it).
///
/// # Errors
/// An invalid config, missing data, a run folder of another config, or a training error.
pub fn train(path: &Path, runs: &Path) -> Result<RunSummary> {
    match ExperimentKind::of_config(path)? {
        ExperimentKind::Classify => classify::train(&classify::ExperimentConfig::read(path)?, runs),
        ExperimentKind::Inr2ArrayPretrain => {
            inr2array_pretrain::train(&inr2array::PretrainConfig::read(path)?, runs)
        }
        ExperimentKind::Inr2ArrayClassify => {
            inr2array_classify::train(&inr2array::ClassifyConfig::read(path)?, runs)
        }
        ExperimentKind::Edit => edit::train(&edit::EditConfig::read(path)?, runs),
        ExperimentKind::Zoo => zoo::train(&zoo::ZooConfig::read(path)?, runs),
    }
}

/// Evaluate the best checkpoint of the run folder `dir` on its test split, whatever its kind.
///
/// # Errors
/// Not a run folder, missing data or checkpoint, naming them.
pub fn eval(dir: &Path) -> Result<Evaluation> {
    let run = Run::open(dir)?;
    match ExperimentKind::of_config(&run.config())? {
        ExperimentKind::Classify => classify::eval(&run),
        ExperimentKind::Inr2ArrayPretrain => inr2array_pretrain::eval(&run),
        ExperimentKind::Inr2ArrayClassify => inr2array_classify::eval(&run),
        ExperimentKind::Edit => edit::eval(&run),
        ExperimentKind::Zoo => zoo::eval(&run),
    }
}
