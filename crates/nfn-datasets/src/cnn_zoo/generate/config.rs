//! The generation config of a zoo and the manifest (`parts/config.json`) that ties its parts to
//! that config and to the images they were trained on.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::Device;

use super::hyper::HyperSpace;
use super::part::PARTS_DIR;
use crate::error::{Error, Result};

/// The generation manifest inside `parts/`.
pub const GEN_MANIFEST: &str = "config.json";

fn default_device() -> Device {
    Device::Cpu
}

/// How to generate a zoo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZooGenConfig {
    /// Data-set name for the `config.dataset` column.
    pub dataset: String,
    /// Number of networks.
    pub networks: usize,
    /// Zoo seed: with the network index it fixes hyperparameters, initial weights and data order.
    pub seed: u64,
    /// Networks trained together as one computation (and written as one part).
    pub group: usize,
    /// Minibatch size per network.
    pub batch_size: i64,
    /// Checkpoint epochs, strictly increasing; the last is the final one (the `step` column).
    pub epochs: Vec<usize>,
    /// Cap on optimizer steps per epoch; `None` = one pass over each network's subset.
    pub steps_per_epoch: Option<usize>,
    /// Test images evaluated at each checkpoint (the first ones); `None` = all.
    pub eval_images: Option<usize>,
    /// Training images evaluated per network (its subset's first ones); `None` = its subset.
    pub train_eval_images: Option<usize>,
    /// Images per network in one evaluation forward pass.
    pub eval_batch: i64,
    /// The hyperparameter distributions.
    pub space: HyperSpace,
    /// Where to train (not serialised; CPU by default).
    #[serde(skip, default = "default_device")]
    pub device: Device,
}

impl Default for ZooGenConfig {
    fn default() -> Self {
        ZooGenConfig {
            dataset: "mnist".into(),
            networks: 1000,
            seed: 0,
            // 64 on CPU: at 28x28, batch 32, a conv activation of 64 networks stays under glibc's
            // 32 MB mmap threshold; 256 ran at half the CNN-steps/s (page faults, examples/
            // zoo_gen_bench.rs). On a GPU use far larger groups (e.g. 1024).
            group: 64,
            batch_size: 32,
            // The reference checkpoints 0..=3 then every 20 epochs to 86; a short CPU budget.
            epochs: vec![0, 1, 2, 4],
            steps_per_epoch: None,
            eval_images: None,
            train_eval_images: Some(10_000),
            eval_batch: 64,
            space: HyperSpace::default(),
            device: Device::Cpu,
        }
    }
}

impl ZooGenConfig {
    /// Check sizes and the checkpoint list.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("zoo generation: {m}")));
        if self.networks == 0 || self.group == 0 || self.batch_size < 1 || self.eval_batch < 1 {
            return bad("networks, group, batch_size and eval_batch must be positive".into());
        }
        if self.dataset.is_empty() || self.dataset.contains([',', '"', '\n']) {
            return bad(format!("dataset name {:?} must be non-empty plain text", self.dataset));
        }
        let increasing = self.epochs.windows(2).all(|w| w[0] < w[1]);
        if self.epochs.is_empty() || !increasing || self.final_epoch() == 0 {
            return bad(format!("epochs {:?} must increase strictly to at least 1", self.epochs));
        }
        if [self.steps_per_epoch, self.eval_images, self.train_eval_images].contains(&Some(0)) {
            return bad("steps_per_epoch, eval_images and train_eval_images must not be 0".into());
        }
        self.space.validate()
    }

    /// The final checkpoint epoch.
    pub fn final_epoch(&self) -> usize {
        self.epochs.last().copied().unwrap_or(0)
    }

    /// Number of groups (parts).
    pub fn groups(&self) -> usize {
        self.networks.div_ceil(self.group)
    }

    /// The networks of group `g`.
    pub fn group_range(&self, g: usize) -> std::ops::Range<usize> {
        g * self.group..((g + 1) * self.group).min(self.networks)
    }
}

/// The images a zoo was trained on, as recorded in the manifest (to refuse mixing parts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZooDataInfo {
    /// Training images.
    pub n_train: usize,
    /// Test images evaluated.
    pub n_eval: usize,
    /// Image height.
    pub height: i64,
    /// Image width.
    pub width: i64,
    /// CRC-32 of the training labels (as bytes).
    pub train_labels_crc: u32,
    /// CRC-32 of the evaluated test labels.
    pub test_labels_crc: u32,
}

/// The version of the batched trainer whose draws a zoo's parts hold: 1 draws the dropout masks
/// from each network's own stream; 0 (manifests without the field) drew them from LibTorch's
/// generator, so parts of the two differ for the same config and are not mixed.
pub const ZOO_TRAINER_VERSION: u32 = 1;

/// `parts/config.json`: the configuration (without the device), the data it ran on, and the
/// trainer version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenManifest {
    /// The generation config.
    pub config: ZooGenConfig,
    /// The images.
    pub data: ZooDataInfo,
    /// [`ZOO_TRAINER_VERSION`] of the trainer that made the parts (0 where absent).
    #[serde(default)]
    pub trainer: u32,
}

impl GenManifest {
    /// Read `dir/parts/config.json`.
    ///
    /// # Errors
    /// [`Error::File`] naming the file if it is missing or not a manifest.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(PARTS_DIR).join(GEN_MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::file(&path, format!("cannot read the zoo generation manifest: {e}"))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Error::file(&path, format!("not a zoo generation manifest: {e}")))
    }

    /// Write it if absent, else check that the one there is the same.
    pub(crate) fn create_or_check(&self, dir: &Path) -> Result<()> {
        let parts = dir.join(PARTS_DIR);
        std::fs::create_dir_all(&parts)
            .map_err(|e| Error::file(&parts, format!("cannot create: {e}")))?;
        let path = parts.join(GEN_MANIFEST);
        if !path.exists() {
            let json = serde_json::to_string_pretty(self).expect("a manifest serialises to JSON");
            nfn_weightspace::io::write_atomically(&path, |out| {
                out.write_all(json.as_bytes()).map_err(|e| e.to_string())
            })?;
            return Ok(());
        }
        let there = Self::read(dir)?;
        if there.trainer != self.trainer {
            return Err(Error::mismatch(
                path,
                format!(
                    "the folder holds parts made by zoo trainer version {} (this is version {}: \
                     other dropout draws); finish it with that nfn or use another folder",
                    there.trainer, self.trainer
                ),
            ));
        }
        if there != *self {
            return Err(Error::mismatch(
                path,
                "the folder holds parts of another zoo (other config or images); use another folder",
            ));
        }
        Ok(())
    }
}
