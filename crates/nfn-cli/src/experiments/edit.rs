//! INR editing (`task = "inr_editing"`; NFT paper, INR editing; design.md §6.2): an editor turns
//! each SIREN into one that renders the edited image (dilated, eroded, morphological gradient,
//! contrast-equalised); judged by the test MSE of the rendering against the edited image.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nfn_datasets::{EditStyle, EditTargets, InrSet, InrSplit, Split};
use nft_model::train::DataRecord;
use nft_model::{
    Editing, EditorConfig, EvalSplits, Evaluation, Metric, PaperRef, Run, RunSummary, TrainerConfig,
};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::classify::dataset_name;
use crate::data::{eval_batches, open_set, DataConfig, Dataset, EpochBatches};
use crate::driver::{device, eval_run, param_count, train_run, Experiment};

/// The `task` of these configs.
pub const TASK: &str = "inr_editing";

/// An INR editing experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditConfig {
    /// Run name; outputs go to `<runs>/<name>/`.
    pub name: String,
    /// Always [`TASK`].
    pub task: String,
    /// The edit.
    pub style: EditStyle,
    /// The folder of the original images (default: the INR set's data set at its usual place).
    #[serde(default)]
    pub images: Option<PathBuf>,
    /// Data (`standardize` must stay off: the editor adds its change to the raw weights).
    pub data: DataConfig,
    /// The editor.
    pub model: EditorConfig,
    /// Trainer.
    pub trainer: TrainerConfig,
    /// The paper's test MSE, if any.
    #[serde(default)]
    pub paper: Option<PaperRef>,
}

impl EditConfig {
    /// Read and validate a TOML config.
    ///
    /// # Errors
    /// Unreadable files, unknown fields, invalid values, each naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
        let cfg: EditConfig = toml::from_str(&text).with_context(|| format!("parsing {path:?}"))?;
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
        if self.task != TASK {
            bail!("task must be {TASK:?}, got {:?}", self.task);
        }
        if self.data.batch_size < 1 || self.data.eval_batch_size < 1 {
            bail!("batch sizes must be positive");
        }
        if self.data.standardize {
            bail!("data.standardize must be off for editing: the edit is added to the raw weights");
        }
        self.trainer.validate()?;
        Ok(())
    }
}

/// An INR split with the edited image of each of its INRs.
struct Edited {
    split: InrSplit,
    targets: Tensor,
}

/// The three splits with their targets (made from the original images and cached beside the set).
fn load(cfg: &EditConfig, set: &InrSet) -> Result<[Edited; 3]> {
    let dataset = Dataset::from_name(&set.manifest.dataset)?;
    let dir = cfg.images.clone().unwrap_or_else(|| dataset.default_dir());
    let targets = EditTargets::build_or_load(set, &dataset.load(&dir)?, cfg.style)
        .with_context(|| format!("making the {} targets of {:?}", cfg.style.name(), set.dir()))?;
    let with = |split: Split, copies: bool| -> Result<Edited> {
        let split_inrs = set.load(split, copies)?;
        let t = targets.targets_for(split, &split_inrs.image_index)?;
        Ok(Edited { split: split_inrs, targets: t })
    };
    Ok([
        with(Split::Train, cfg.data.use_copies)?,
        with(Split::Val, false)?,
        with(Split::Test, false)?,
    ])
}

fn experiment(cfg: &EditConfig, vs: &VarStore, sets: &[Edited; 3]) -> Experiment {
    Experiment {
        name: cfg.name.clone(),
        kind: TASK,
        page: "inr_editing",
        model: format!("{} ({})", cfg.model.name(), cfg.style.name()),
        params: param_count(vs),
        data: DataRecord {
            path: cfg.data.inrs.clone(),
            name: dataset_name(&cfg.data.inrs),
            train: sets[0].split.len(),
            val: sets[1].split.len(),
            test: sets[2].split.len(),
        },
        batch_size: cfg.data.batch_size,
        headline: Metric::Mse,
        paper: cfg.paper.clone(),
    }
}

/// The image size the SIRENs are rendered at.
fn image_size(set: &InrSet) -> [i64; 2] {
    let [_, h, w] = set.manifest.image_shape;
    [h, w]
}

/// Train the editor of `cfg` in `<runs>/<name>/`, resuming it if it holds a checkpoint.
pub fn train(cfg: &EditConfig, runs: &Path) -> Result<RunSummary> {
    let run = Run::claim(runs.join(&cfg.name), cfg)?;
    let device = device();
    let set = open_set(&cfg.data.inrs)?;
    let sets = load(cfg, &set)?;
    tch::manual_seed(cfg.trainer.seed as i64);
    let mut vs = VarStore::new(device);
    let model = cfg.model.build(&vs.root(), &set.manifest.spec)?;
    let exp = experiment(cfg, &vs, &sets);
    let [train, val, test] = &sets;
    let eval_bs = cfg.data.eval_batch_size;
    let val = eval_batches(&val.split, &val.targets, None, eval_bs, None, device)?;
    let test = eval_batches(&test.split, &test.targets, None, eval_bs, None, device)?;
    let (bs, seed) = (cfg.data.batch_size, cfg.trainer.seed);
    let mut data = EpochBatches::new(&train.split, &train.targets, None, bs, seed, device);
    let task = Editing { model: model.as_ref(), image_size: image_size(&set) };
    let splits = EvalSplits { val: &val, test: &test };
    train_run(&run, &exp, &task, &mut vs, &cfg.trainer, &mut data, splits)
}

/// Evaluate the best editor of `run` on its test split.
pub fn eval(run: &Run) -> Result<Evaluation> {
    let cfg = EditConfig::read(&run.config())?;
    let device: Device = device();
    let set = open_set(&cfg.data.inrs)?;
    let [_, _, test] = load(&cfg, &set)?;
    let mut vs = VarStore::new(device);
    let model = cfg.model.build(&vs.root(), &set.manifest.spec)?;
    let test =
        eval_batches(&test.split, &test.targets, None, cfg.data.eval_batch_size, None, device)?;
    let task = Editing { model: model.as_ref(), image_size: image_size(&set) };
    eval_run(run, &task, &mut vs, &cfg.trainer, &test)
}
