//! Experiment configs (`xtask/configs/*.toml`) and the glue between INR data sets and the trainer.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nfn_datasets::{InrSet, InrSplit, Split, Standardization};
use nft_model::{Batch, ModelConfig, TrainData, TrainerConfig};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

/// Which data a run trains on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The INR data set folder written by `nfn fit-inrs` or `nfn convert-inrs`.
    pub inrs: PathBuf,
    /// Training batch size (classify_siren: 32).
    pub batch_size: i64,
    /// Evaluation batch size.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: i64,
    /// Train on the augmentation copies too (classify_siren: yes).
    #[serde(default)]
    pub use_copies: bool,
    /// Standardise every weight position with training-set statistics (REFERENCE §3.5,
    /// `normalize=true`; the reference uses it for the CNN zoo).
    #[serde(default)]
    pub standardize: bool,
}

fn default_eval_batch() -> i64 {
    256
}

/// The paper's number for this experiment, shown beside ours in the tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperRef {
    /// The paper's metric (test accuracy in %).
    pub metric: f64,
    /// Where it comes from (e.g. "NFN paper, NFN-NP").
    pub source: String,
}

/// One experiment: data, model, trainer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Run name; outputs go to `<runs>/<name>/`.
    pub name: String,
    /// Task label for the results tables (file `docs/results/<task>.md`).
    #[serde(default = "default_task")]
    pub task: String,
    /// Data.
    pub data: DataConfig,
    /// Model.
    pub model: ModelConfig,
    /// Trainer.
    pub trainer: TrainerConfig,
    /// The paper's number, if any.
    #[serde(default)]
    pub paper: Option<PaperRef>,
}

fn default_task() -> String {
    "inr_classification".into()
}

impl ExperimentConfig {
    /// Read and validate a TOML config.
    ///
    /// # Errors
    /// Unreadable files, unknown fields, invalid values.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
        let cfg: ExperimentConfig =
            toml::from_str(&text).with_context(|| format!("parsing {path:?}"))?;
        cfg.validate().with_context(|| format!("checking {path:?}"))?;
        Ok(cfg)
    }

    /// Check every part.
    ///
    /// # Errors
    /// The first invalid value.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            bail!("name {:?} must be a plain folder name", self.name);
        }
        if self.data.batch_size < 1 || self.data.eval_batch_size < 1 {
            bail!("batch sizes must be positive");
        }
        self.model.validate()?;
        self.trainer.validate()?;
        Ok(())
    }
}

/// The three splits of an INR set, loaded, with the standardisation to apply (if configured).
pub struct Splits {
    /// Per-position statistics of the training split, when `standardize` is set.
    pub standardization: Option<Standardization>,
    /// Training INRs (with copies if configured).
    pub train: InrSplit,
    /// Validation INRs.
    pub val: InrSplit,
    /// Test INRs.
    pub test: InrSplit,
}

/// Load the splits of `cfg.inrs`.
///
/// # Errors
/// A missing or incomplete data set, named with the command that makes it.
pub fn load_splits(cfg: &DataConfig) -> Result<Splits> {
    let set = InrSet::open(&cfg.inrs).with_context(|| {
        format!("opening the INR set {:?} (make it with `cargo xtask fit-inrs`)", cfg.inrs)
    })?;
    let train = set.load(Split::Train, cfg.use_copies)?;
    let standardization = if cfg.standardize { Some(train.standardization()?) } else { None };
    Ok(Splits {
        standardization,
        train,
        val: set.load(Split::Val, false)?,
        test: set.load(Split::Test, false)?,
    })
}

fn prepare(
    ws: &nfn_weightspace::WeightSpaceFeatures,
    std: Option<&Standardization>,
) -> nfn_weightspace::WeightSpaceFeatures {
    std.map_or_else(|| ws.shallow_clone(), |s| s.apply(ws))
}

/// Evaluation batches of a split, in order, standardised if `std` is given, on `device`.
pub fn eval_batches(
    split: &InrSplit,
    batch_size: i64,
    std: Option<&Standardization>,
    device: Device,
) -> Vec<Batch> {
    split
        .batches(batch_size, None, false)
        .map(|(ws, labels)| Batch {
            inputs: prepare(&ws, std).to_device(device),
            targets: labels.to_device(device),
        })
        .collect()
}

/// Training batches as a pure function of the step: epoch `e` visits the split in the order of a
/// permutation seeded with `(seed, e)`, dropping the last partial batch.
pub struct EpochBatches<'a> {
    split: &'a InrSplit,
    std: Option<&'a Standardization>,
    batch_size: i64,
    seed: u64,
    device: Device,
    epoch: Option<(u64, Vec<i64>)>,
}

impl<'a> EpochBatches<'a> {
    /// Batches of `split`, standardised if `std` is given.
    pub fn new(
        split: &'a InrSplit,
        std: Option<&'a Standardization>,
        batch_size: i64,
        seed: u64,
        device: Device,
    ) -> Self {
        EpochBatches { split, std, batch_size, seed, device, epoch: None }
    }

    /// Full batches per epoch.
    pub fn per_epoch(&self) -> u64 {
        (self.split.len() / self.batch_size).max(1) as u64
    }
}

impl TrainData for EpochBatches<'_> {
    fn batch(&mut self, step: u64) -> nft_model::Result<Batch> {
        let per_epoch = self.per_epoch();
        let (epoch, pos) = (step / per_epoch, step % per_epoch);
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut order: Vec<i64> = (0..self.split.len()).collect();
            order.shuffle(&mut StdRng::seed_from_u64(
                self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ));
            self.epoch = Some((epoch, order));
        }
        let order = &self.epoch.as_ref().expect("set above").1;
        let b = self.batch_size.min(self.split.len()) as usize;
        let start = pos as usize * b;
        let idx = Tensor::from_slice(&order[start..start + b]);
        let wsfeat =
            self.split.features(&idx).map_err(|e| nft_model::Error::Config(e.to_string()))?;
        Ok(Batch {
            inputs: prepare(&wsfeat, self.std).to_device(self.device),
            targets: self.split.labels.index_select(0, &idx).to_device(self.device),
        })
    }
}
