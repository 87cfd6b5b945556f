//! INR classification straight from the weights (`task = "inr_classification"`, the default): an
//! NFT, NFN or baseline model on an INR set, trained with cross-entropy and judged by test accuracy.

use std::path::Path;

use anyhow::{Context, Result};
use nft_model::train::DataRecord;
use nft_model::{
    EvalSplits, Evaluation, InvariantModel, Metric, ModelConfig, PaperRef, Run, RunSummary,
    Supervised, TrainerConfig,
};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::inrs_input::StatRange;

use crate::data::{eval_batches, load_splits, DataConfig, EpochBatches, Splits};
use crate::driver::{
    device, eval_run, majority_class_baseline, param_count, train_run, Experiment,
};

/// The `task` of these configs.
pub const TASK: &str = "inr_classification";

/// An INR classification experiment: data, model, trainer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Run name; outputs go to `<runs>/<name>/`.
    pub name: String,
    /// Always [`TASK`] (the default).
    #[serde(default = "default_task")]
    pub task: String,
    /// Data.
    pub data: DataConfig,
    /// Model.
    pub model: ModelConfig,
    /// Trainer.
    pub trainer: TrainerConfig,
    /// The paper's test accuracy (%), if any.
    #[serde(default)]
    pub paper: Option<PaperRef>,
}

fn default_task() -> String {
    TASK.into()
}

impl ExperimentConfig {
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
        super::check_common(&self.name, &self.task, TASK, &self.data)?;
        self.model.validate()?;
        if self.model.reads_raw_weights() && self.data.standardize {
            anyhow::bail!(
                "model kind {} runs the networks it reads, so it needs their raw weights: \
                 set data.standardize = false",
                self.model.name()
            );
        }
        self.trainer.validate()?;
        Ok(())
    }
}

/// The loaded data and the built model of an experiment.
struct Prepared {
    splits: Splits,
    vs: VarStore,
    model: Box<dyn InvariantModel>,
    exp: Experiment,
}

fn prepare(cfg: &ExperimentConfig, device: Device) -> Result<Prepared> {
    let splits = load_splits(&cfg.data)?;
    let num_classes = splits.train.labels.max().int64_value(&[]) + 1;
    tch::manual_seed(cfg.trainer.seed as i64);
    let vs = VarStore::new(device);
    let model = cfg.model.build(&vs.root(), &splits.train.spec, num_classes)?;
    let exp = Experiment {
        name: cfg.name.clone(),
        kind: TASK,
        page: "inr_classification",
        model: cfg.model.name().into(),
        params: param_count(&vs),
        data: DataRecord {
            path: cfg.data.inrs.clone(),
            name: dataset_name(&cfg.data.inrs),
            train: splits.train.len(),
            val: splits.val.len(),
            test: splits.test.len(),
        },
        batch_size: cfg.data.batch_size,
        headline: Metric::Accuracy,
        paper: cfg.paper.clone(),
        baselines: vec![majority_class_baseline(&splits.train.labels, &splits.test.labels)],
    };
    Ok(Prepared { splits, vs, model, exp })
}

/// The folder name of a data set path, for tables.
pub fn dataset_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into())
}

/// Train the experiment in `<runs>/<name>/`, resuming it if it holds a checkpoint.
pub fn train(cfg: &ExperimentConfig, runs: &Path) -> Result<RunSummary> {
    let run = Run::claim(runs.join(&cfg.name), cfg)?;
    let device = device();
    let Prepared { splits, mut vs, model, exp } = prepare(cfg, device)?;
    let std = splits.standardization.as_ref();
    let eval_bs = cfg.data.eval_batch_size;
    let val = eval_batches(&splits.val, &splits.val.labels, None, eval_bs, std, device)?;
    let test = eval_batches(&splits.test, &splits.test.labels, None, eval_bs, std, device)?;
    let mut data = EpochBatches::new(
        &splits.train,
        &splits.train.labels,
        std,
        cfg.data.batch_size,
        cfg.trainer.seed,
        device,
    )
    .with_augment(cfg.data.augment);
    let task = Supervised::new(model.as_ref(), cfg.trainer.objective);
    let splits = EvalSplits { val: &val, test: &test };
    train_run(&run, &exp, &task, &mut vs, &cfg.trainer, &mut data, splits)
}

/// Evaluate the best checkpoint of `run` on its test split.
pub fn eval(run: &Run) -> Result<Evaluation> {
    let cfg = ExperimentConfig::read(&run.config())?;
    let device = device();
    let Prepared { splits, mut vs, model, .. } = prepare(&cfg, device)?;
    let std = splits.standardization.as_ref();
    let test = eval_batches(
        &splits.test,
        &splits.test.labels,
        None,
        cfg.data.eval_batch_size,
        std,
        device,
    )?;
    let task = Supervised::new(model.as_ref(), cfg.trainer.objective);
    eval_run(run, &task, &mut vs, &cfg.trainer, &test)
}

/// The best classifier of a finished `inr_classification` run, ready to score other INRs with the
/// run's standardisation (its training statistics, so the run's INR set must be on this machine).
pub struct TrainedClassifier {
    /// The SIREN spec the model reads.
    pub spec: nfn_weightspace::NetworkSpec,
    /// The weight statistics of its training INRs, when known.
    pub trained_range: Option<StatRange>,
    _vs: VarStore,
    model: Box<dyn InvariantModel>,
    standardization: Option<nfn_datasets::loader::Standardization>,
    device: Device,
}

impl TrainedClassifier {
    /// Load the run's best checkpoint.
    ///
    /// # Errors
    /// An unreadable config, a missing INR set or checkpoint, each named.
    pub fn load(run: &Run) -> Result<Self> {
        let cfg = ExperimentConfig::read(&run.config())?;
        let device = device();
        let Prepared { splits, mut vs, model, .. } = prepare(&cfg, device)?;
        let best = run.best();
        nft_model::load_model(&mut vs, &best)
            .with_context(|| format!("loading {best:?} (train the run first)"))?;
        let spec = splits.train.spec.clone();
        let trained_range = Some(StatRange::of(&splits.train.all_features()?));
        Ok(TrainedClassifier {
            spec,
            trained_range,
            _vs: vs,
            model,
            standardization: splits.standardization,
            device,
        })
    }

    /// A classifier from its config and weights alone, for `spec` and `num_classes` (a shipped
    /// model: no INR set needed, so no standardisation).
    ///
    /// # Errors
    /// An unreadable config or weights file, or a config that standardises, each named.
    pub fn from_files(
        config: &Path,
        weights: &Path,
        spec: &nfn_weightspace::NetworkSpec,
        num_classes: i64,
    ) -> Result<Self> {
        let cfg = ExperimentConfig::read(config)?;
        if cfg.data.standardize {
            anyhow::bail!("{config:?}: a standardising model needs its training set to predict");
        }
        let device = device();
        let mut vs = VarStore::new(device);
        let model = cfg.model.build(&vs.root(), spec, num_classes)?;
        nft_model::load_model(&mut vs, weights)?;
        Ok(TrainedClassifier {
            spec: spec.clone(),
            trained_range: None,
            _vs: vs,
            model,
            standardization: None,
            device,
        })
    }
}

impl crate::inrs_input::InrClassifier for TrainedClassifier {
    fn spec(&self) -> &nfn_weightspace::NetworkSpec {
        &self.spec
    }

    fn trained_range(&self) -> Option<&StatRange> {
        self.trained_range.as_ref()
    }

    fn logits(&self, wsfeat: &nfn_weightspace::WeightSpaceFeatures) -> Tensor {
        let x = self.standardization.as_ref().map_or(wsfeat.shallow_clone(), |s| s.apply(wsfeat));
        tch::no_grad(|| self.model.forward_t(&x.to_device(self.device), false))
            .to_device(Device::Cpu)
    }
}
