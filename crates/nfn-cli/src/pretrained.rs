//! The pretrained models shipped with nfn (`crates/nfn-cli/pretrained/<dataset>/`, written by
//! `cargo xtask ship-pretrained`): a `card.json` (SIREN spec, classes, measured test accuracy of
//! each model) and one folder per model with its configs and weights. They load from their files
//! alone: no runs or INR sets needed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nfn_weightspace::NetworkSpec;
use serde::Deserialize;

use crate::experiments::classify::TrainedClassifier;
use crate::experiments::inr2array_classify::TrainedLatentClassifier;
use crate::inrs_input::{InrClassifier, StatRange};

/// The models of one data set.
#[derive(Debug, Deserialize)]
pub struct Card {
    /// The SIREN spec the models read.
    pub spec: NetworkSpec,
    /// Output classes.
    pub num_classes: i64,
    /// The model used when none is named.
    pub default: String,
    /// Per model (`inr2array`, or a direct classifier such as `nft` or `probegen`): its record,
    /// `test_accuracy` among it.
    pub models: serde_json::Map<String, serde_json::Value>,
}

impl Card {
    /// The weight statistics of model `name`'s training INRs, if the card records them.
    pub fn weight_range(&self, name: &str) -> Option<StatRange> {
        serde_json::from_value(self.models.get(name)?.get("weight_range")?.clone()).ok()
    }
}

/// Where the shipped models are: `NFN_PRETRAINED_DIR`, else this crate's `pretrained/` folder.
pub fn base_dir() -> PathBuf {
    std::env::var_os("NFN_PRETRAINED_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("pretrained"), PathBuf::from)
}

/// The folder and card of the models for `dataset`.
///
/// # Errors
/// No such data set (naming the ones there are), or an unreadable card.
pub fn open(dataset: &str) -> Result<(PathBuf, Card)> {
    let base = base_dir();
    let dir = base.join(dataset);
    let card_path = dir.join("card.json");
    if !card_path.exists() {
        let mut there: Vec<String> = std::fs::read_dir(&base)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().join("card.json").exists())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        there.sort();
        bail!(
            "no pretrained models for {dataset:?} in {} (there are: {})",
            base.display(),
            if there.is_empty() { "none".into() } else { there.join(", ") }
        );
    }
    let text =
        std::fs::read_to_string(&card_path).with_context(|| format!("reading {card_path:?}"))?;
    let card: Card =
        serde_json::from_str(&text).with_context(|| format!("parsing {card_path:?}"))?;
    Ok((dir, card))
}

/// The Inr2Array encoder + latent classifier shipped for `dataset`, with the card's weight range.
///
/// # Errors
/// An unknown data set or unreadable files, each named.
pub fn load_inr2array(dataset: &str) -> Result<(TrainedLatentClassifier, Card)> {
    let (dir, card) = open(dataset)?;
    let d = dir.join("inr2array");
    let mut m = TrainedLatentClassifier::from_files(
        [&d.join("encoder.toml"), &d.join("encoder.safetensors")],
        [&d.join("config.toml"), &d.join("model.safetensors")],
        &card.spec,
    )?;
    m.trained_range = card.weight_range("inr2array");
    Ok((m, card))
}

/// Load model `model` (default: the card's) of `dataset`, with its card and name.
///
/// # Errors
/// An unknown data set or model, or unreadable files, each named.
pub fn load(dataset: &str, model: Option<&str>) -> Result<(Box<dyn InrClassifier>, Card, String)> {
    let (dir, card) = open(dataset)?;
    let name = model.unwrap_or(&card.default).to_string();
    let loaded: Box<dyn InrClassifier> = match name.as_str() {
        "inr2array" => Box::new(load_inr2array(dataset)?.0),
        // A direct classifier of any model kind (`nft`, `probegen`, ...): its config and weights.
        direct
            if card.models.contains_key(direct)
                && dir.join(direct).join("config.toml").exists() =>
        {
            let d = dir.join(direct);
            let mut m = TrainedClassifier::from_files(
                &d.join("config.toml"),
                &d.join("model.safetensors"),
                &card.spec,
                card.num_classes,
            )?;
            m.trained_range = card.weight_range(&name);
            Box::new(m)
        }
        other => bail!(
            "no pretrained model {other:?} for {dataset:?}: use one of {}",
            card.models.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    };
    Ok((loaded, card, name))
}
