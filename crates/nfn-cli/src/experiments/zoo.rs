//! Predicting CNN generalisation (`task = "cnn_generalization"`, design.md §6.3): an invariant
//! model reads the weights of a Small CNN Zoo network (downloaded, or made by `nfn make-zoo`) and
//! predicts its test accuracy; judged by Kendall's τ-b on the test split, selected by val τ.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nfn_datasets::cnn_zoo::load_cnn_zoo_splits;
use nfn_datasets::{CnnZoo, InrSplit, Standardization};
use nfn_weightspace::NetworkSpec;
use nft_model::train::DataRecord;
use nft_model::{
    EvalSplits, Evaluation, InvariantModel, Metric, ModelConfig, Objective, PaperRef, Run,
    RunSummary, Supervised, TrainerConfig,
};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::data::{eval_batches, EpochBatches};
use crate::driver::{device, eval_run, param_count, train_run, Experiment};
use crate::experiments::classify::dataset_name;

/// The `task` of these configs.
pub const TASK: &str = "cnn_generalization";

/// Which zoo a run trains on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZooDataConfig {
    /// The zoo folder (`weights.npy`, `metrics.csv.gz`, `layout.csv`).
    pub zoo: PathBuf,
    /// The permutation file that splits it (default: `<zoo>/split.csv`, which `nfn make-zoo`
    /// writes; the reference's files come from `cargo xtask download cnn-zoo-splits`).
    #[serde(default)]
    pub split: Option<PathBuf>,
    /// Training batch size (predict_gen: 8).
    pub batch_size: i64,
    /// Evaluation batch size.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: i64,
    /// Standardise every weight position with training-set statistics (the reference's NFN-NP
    /// zoo model does, design.md §6.4).
    #[serde(default)]
    pub standardize: bool,
}

fn default_eval_batch() -> i64 {
    256
}

impl ZooDataConfig {
    /// The permutation file.
    pub fn split_file(&self) -> PathBuf {
        self.split.clone().unwrap_or_else(|| self.zoo.join("split.csv"))
    }
}

/// A generalisation-prediction experiment: zoo, model, trainer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZooConfig {
    /// Run name; outputs go to `<runs>/<name>/`.
    pub name: String,
    /// Always [`TASK`].
    pub task: String,
    /// Data.
    pub data: ZooDataConfig,
    /// Model (one output: the predicted accuracy, through a sigmoid for BCE).
    pub model: ModelConfig,
    /// Trainer; `objective` is `sigmoid_bce` (the reference) or `mse`.
    pub trainer: TrainerConfig,
    /// The paper's test τ, if any.
    #[serde(default)]
    pub paper: Option<PaperRef>,
}

impl ZooConfig {
    /// Read and validate a TOML config.
    ///
    /// # Errors
    /// Unreadable files, unknown fields, invalid values, each naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        super::read_config(path, Self::validate)
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
        if self.trainer.objective == Objective::CrossEntropy {
            bail!(
                "trainer.objective must be \"sigmoid_bce\" or \"mse\" (a regression of accuracy)"
            );
        }
        self.model.validate()?;
        self.trainer.validate()?;
        Ok(())
    }
}

/// One split of a zoo in the in-memory form the batchers read: flat weights in our order and the
/// `[n, 1]` accuracies as targets.
pub struct ZooSplit {
    /// The networks (labels are unused: zeros).
    pub split: InrSplit,
    /// `[n, 1]` f32 test accuracies in `[0, 1]`.
    pub targets: Tensor,
    /// The `weights.npy` row of each network.
    pub rows: Vec<i64>,
}

impl ZooSplit {
    fn new(zoo: CnnZoo) -> Result<Self> {
        let spec = zoo.wsfeat.spec().context("zoo features")?;
        let n = zoo.targets.size()[0];
        let split = InrSplit {
            spec,
            params: zoo.wsfeat.flatten().squeeze_dim(1),
            labels: Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
            image_index: Tensor::from_slice(&zoo.rows),
            copy: Tensor::zeros([n], (Kind::Int64, Device::Cpu)),
            psnr: Tensor::full([n], f64::NAN, (Kind::Float, Device::Cpu)),
        };
        Ok(ZooSplit { split, targets: zoo.targets.view([-1, 1]), rows: zoo.rows })
    }

    /// Number of networks.
    pub fn len(&self) -> i64 {
        self.split.len()
    }

    /// Whether it holds no networks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All networks in evaluation batches of `batch_size`, in order, standardised if `std` is
    /// given, on `device`.
    ///
    /// # Errors
    /// As [`eval_batches`].
    pub fn batches(
        &self,
        batch_size: i64,
        std: Option<&Standardization>,
        device: Device,
    ) -> Result<Vec<nft_model::Batch>> {
        eval_batches(&self.split, &self.targets, None, batch_size, std, device)
    }
}

/// The three splits of a zoo, with the standardisation to apply (if configured).
pub struct ZooSplits {
    /// Per-position statistics of the training split, when `standardize` is set.
    pub standardization: Option<Standardization>,
    /// Training networks.
    pub train: ZooSplit,
    /// Validation networks.
    pub val: ZooSplit,
    /// Test networks.
    pub test: ZooSplit,
}

/// Load the zoo of `cfg`, saying how to get it when it is missing.
///
/// # Errors
/// Missing or malformed zoo files, named.
pub fn load(cfg: &ZooDataConfig) -> Result<ZooSplits> {
    let split_file = cfg.split_file();
    let [train, val, test] = load_cnn_zoo_splits(&cfg.zoo, &split_file).with_context(|| {
        format!(
            "loading the CNN zoo {:?} with the split {split_file:?} (download one with `cargo \
             xtask download cnn-zoo-cifar10` and `cnn-zoo-splits`, or make one with `nfn make-zoo`)",
            cfg.zoo
        )
    })?;
    let train = ZooSplit::new(train)?;
    let standardization = if cfg.standardize { Some(train.split.standardization()?) } else { None };
    Ok(ZooSplits { standardization, train, val: ZooSplit::new(val)?, test: ZooSplit::new(test)? })
}

/// The loaded zoo and the built model of an experiment.
pub struct Prepared {
    /// The zoo.
    pub splits: ZooSplits,
    /// The model's variables.
    pub vs: VarStore,
    /// The model (one output).
    pub model: Box<dyn InvariantModel>,
    exp: Experiment,
}

/// Load the zoo and build the model of `cfg` on `device`.
///
/// # Errors
/// Missing data, a model that does not fit the zoo's spec.
pub fn prepare(cfg: &ZooConfig, device: Device) -> Result<Prepared> {
    let splits = load(&cfg.data)?;
    tch::manual_seed(cfg.trainer.seed as i64);
    let vs = VarStore::new(device);
    let spec: &NetworkSpec = &splits.train.split.spec;
    let model = cfg.model.build(&vs.root(), spec, 1)?;
    let exp = Experiment {
        name: cfg.name.clone(),
        kind: TASK,
        page: "cnn_generalization",
        model: cfg.model.name().into(),
        params: param_count(&vs),
        data: DataRecord {
            path: cfg.data.zoo.clone(),
            name: dataset_name(&cfg.data.zoo),
            train: splits.train.len(),
            val: splits.val.len(),
            test: splits.test.len(),
        },
        batch_size: cfg.data.batch_size,
        headline: Metric::KendallTau,
        paper: cfg.paper.clone(),
        baselines: Vec::new(),
    };
    Ok(Prepared { splits, vs, model, exp })
}

/// Train the experiment in `<runs>/<name>/`, resuming it if it holds a checkpoint.
///
/// # Errors
/// An invalid config, missing data, a run folder of another config, or a training error.
pub fn train(cfg: &ZooConfig, runs: &Path) -> Result<RunSummary> {
    let run = Run::claim(runs.join(&cfg.name), cfg)?;
    let device = device();
    let Prepared { splits, mut vs, model, exp } = prepare(cfg, device)?;
    let std = splits.standardization.as_ref();
    let eval_bs = cfg.data.eval_batch_size;
    let val = splits.val.batches(eval_bs, std, device)?;
    let test = splits.test.batches(eval_bs, std, device)?;
    let mut data = EpochBatches::new(
        &splits.train.split,
        &splits.train.targets,
        std,
        cfg.data.batch_size,
        cfg.trainer.seed,
        device,
    );
    let task = Supervised::new(model.as_ref(), cfg.trainer.objective);
    let splits = EvalSplits { val: &val, test: &test };
    train_run(&run, &exp, &task, &mut vs, &cfg.trainer, &mut data, splits)
}

/// Evaluate the best checkpoint of `run` on its test split.
///
/// # Errors
/// Missing data or checkpoint, named.
pub fn eval(run: &Run) -> Result<Evaluation> {
    let cfg = ZooConfig::read(&run.config())?;
    let device = device();
    let Prepared { splits, mut vs, model, .. } = prepare(&cfg, device)?;
    let std = splits.standardization.as_ref();
    let test = splits.test.batches(cfg.data.eval_batch_size, std, device)?;
    let task = Supervised::new(model.as_ref(), cfg.trainer.objective);
    eval_run(run, &task, &mut vs, &cfg.trainer, &test)
}

/// The predicted and the true test accuracies of the test split under the best checkpoint of
/// `run`, in split order: `([n], [n])` f32 on the CPU.
///
/// # Errors
/// Missing data or checkpoint, named.
pub fn test_predictions(run: &Run) -> Result<(Tensor, Tensor)> {
    let cfg = ZooConfig::read(&run.config())?;
    let device = device();
    let Prepared { splits, mut vs, model, .. } = prepare(&cfg, device)?;
    let best = run.best();
    nft_model::load_model(&mut vs, &best)
        .with_context(|| format!("loading {best:?} (train the run first)"))?;
    let std = splits.standardization.as_ref();
    let batches = splits.test.batches(cfg.data.eval_batch_size, std, device)?;
    let preds: Vec<Tensor> = tch::no_grad(|| {
        batches
            .iter()
            .map(|b| cfg.trainer.objective.prediction(model.forward_t(&b.inputs, false)))
            .collect()
    });
    Ok((
        Tensor::cat(&preds, 0).view([-1]).to_kind(Kind::Float).to_device(Device::Cpu),
        splits.test.targets.view([-1]),
    ))
}
