//! A run folder, `data/runs/<experiment>/`: the one place that claims it for a config, and reads and
//! writes its files (`config.toml`, `metrics.jsonl`, checkpoints, `state.json`, `summary.json`).
//! Every command that trains goes through [`Run`]; nothing else writes these files.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::metrics::{Direction, Evaluation, Metric};
use crate::error::{Error, Result};

/// A claimed run folder.
#[derive(Debug, Clone)]
pub struct Run {
    root: PathBuf,
}

impl Run {
    /// Claim `root` for `config`: a new folder gets the resolved config as `config.toml`; a folder
    /// that holds the same config is resumed; one that holds a different config is refused, with one
    /// exception: a larger `trainer.steps` under a constant learning-rate schedule extends the run
    /// (see [`Run::extends`]), so a later sitting trains it on instead of starting again.
    ///
    /// # Errors
    /// [`Error::RunConflict`] for a different config, [`Error::Checkpoint`] naming an unreadable
    /// `config.toml`, [`Error::Io`] if the folder cannot be made.
    pub fn claim<C: Serialize>(root: impl Into<PathBuf>, config: &C) -> Result<Self> {
        let run = Run { root: root.into() };
        std::fs::create_dir_all(&run.root)?;
        let path = run.config();
        let text = toml::to_string_pretty(config).map_err(|e| Error::checkpoint(&path, e))?;
        if path.exists() {
            let old = std::fs::read_to_string(&path).map_err(|e| Error::checkpoint(&path, e))?;
            let parse = |s: &str| s.parse::<toml::Table>().map_err(|e| Error::checkpoint(&path, e));
            let (old, new) = (parse(&old)?, parse(&text)?);
            if old == new {
                return Ok(run);
            }
            let Some(from) = Run::extends(&old, &new) else {
                return Err(Error::RunConflict { path: run.root.clone() });
            };
            // The shorter budget's result and selected model are kept beside the run, not
            // overwritten: `summary.steps<N>.json`, `model.steps<N>.safetensors`.
            if run.summary().exists() {
                std::fs::rename(run.summary(), run.root.join(format!("summary.steps{from}.json")))?;
            }
            if run.best().exists() {
                std::fs::copy(run.best(), run.root.join(format!("model.steps{from}.safetensors")))?;
            }
            write_atomic(&path, text.as_bytes())?;
            return Ok(run);
        }
        write_atomic(&path, text.as_bytes())?;
        Ok(run)
    }

    /// Whether config `new` extends the run of config `old`: the two are equal but for a larger
    /// `trainer.steps`, and the learning rate does not depend on the step budget (a constant
    /// schedule after warm-up), so that the steps already taken are the first steps of a run
    /// trained under `new` from the start (the trainer resumes from the last checkpoint; batches
    /// and dropout are seeded per step). Returns the old budget. A cosine schedule is never
    /// extended: its rate at every step depends on the total.
    pub fn extends(old: &toml::Table, new: &toml::Table) -> Option<i64> {
        fn trainer(t: &toml::Table) -> Option<&toml::Table> {
            t.get("trainer")?.as_table()
        }
        let steps = |t: &toml::Table| trainer(t)?.get("steps")?.as_integer();
        let (from, to) = (steps(old)?, steps(new)?);
        let schedule = trainer(old)?.get("optim").and_then(|o| o.get("schedule"));
        // The new config with the old budget must be the old config.
        let mut same_budget = new.clone();
        if let Some(toml::Value::Table(t)) = same_budget.get_mut("trainer") {
            t.insert("steps".into(), toml::Value::Integer(from));
        }
        let constant = schedule.and_then(toml::Value::as_str) == Some("constant");
        (same_budget == *old && to > from && constant).then_some(from)
    }

    /// An existing run folder (one that holds a `config.toml`), for evaluation.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if the folder has no `config.toml`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let run = Run { root: root.into() };
        if !run.config().exists() {
            return Err(Error::checkpoint(run.config(), "not a run folder (no config.toml)"));
        }
        Ok(run)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The resolved config.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The latest checkpoint (model + optimiser), for resuming.
    pub fn last(&self) -> PathBuf {
        self.root.join("last.safetensors")
    }

    /// The best-validation model weights.
    pub fn best(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }

    /// One JSON object per line: training and evaluation metrics.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// The trainer's progress (`state.json`).
    pub fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }

    /// The trainer's progress as the trainer wrote it (`state.json`): steps done, the selected
    /// checkpoint's step and value, training seconds.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] naming the file when it is missing or not a trainer state.
    pub fn read_state(&self) -> Result<super::TrainState> {
        let path = self.state();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::checkpoint(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::checkpoint(&path, e))
    }

    /// The finished run's record for tables (`summary.json`).
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }

    /// The `task` field of the run's config (which kind of experiment it is).
    ///
    /// # Errors
    /// [`Error::Checkpoint`] naming an unreadable config.
    pub fn config_task(&self) -> Result<Option<String>> {
        let path = self.config();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::checkpoint(&path, e))?;
        let table: toml::Table = text.parse().map_err(|e| Error::checkpoint(&path, e))?;
        Ok(table.get("task").and_then(toml::Value::as_str).map(str::to_string))
    }

    /// Read the run's config as `C`.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] naming the file and the parse error.
    pub fn read_config<C: DeserializeOwned>(&self) -> Result<C> {
        let path = self.config();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::checkpoint(&path, e))?;
        toml::from_str(&text).map_err(|e| Error::checkpoint(&path, e))
    }

    /// The value cached in `<name>.json` in the run folder, or `compute`'s, written there
    /// atomically for the next session (reference values that are slow to compute, such as a
    /// task's baselines).
    ///
    /// # Errors
    /// `compute`'s error, or [`Error::Checkpoint`] naming an unreadable or unwritable file.
    pub fn cached<T, E>(
        &self,
        name: &str,
        compute: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error>,
    {
        let path = self.root.join(format!("{name}.json"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(value) = serde_json::from_str(&text) {
                return Ok(value);
            }
        }
        let value = compute()?;
        let text = serde_json::to_string_pretty(&value).map_err(|e| Error::checkpoint(&path, e))?;
        write_atomic(&path, text.as_bytes())?;
        Ok(value)
    }

    /// Append one record to `metrics.jsonl`.
    pub(crate) fn append_metrics(&self, record: &serde_json::Value) -> Result<()> {
        let path = self.metrics();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::checkpoint(&path, e))?;
        writeln!(file, "{record}").map_err(|e| Error::checkpoint(&path, e))
    }

    /// Drop metric records past `step` (written after the checkpoint a resumed run restarts from)
    /// and earlier test records (the test is rerun at the end); a torn last line goes too.
    pub(crate) fn truncate_metrics(&self, step: u64) -> Result<()> {
        let path = self.metrics();
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
        let kept: String = text
            .lines()
            .filter(|line| {
                serde_json::from_str::<serde_json::Value>(line).ok().is_some_and(|v| {
                    v["step"].as_u64().is_some_and(|s| s <= step) && v["split"] != "test"
                })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        write_atomic(&path, kept.as_bytes())
    }

    /// Write `summary.json` atomically.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] naming the file.
    pub fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        let path = self.summary();
        let text =
            serde_json::to_string_pretty(summary).map_err(|e| Error::checkpoint(&path, e))?;
        write_atomic(&path, text.as_bytes())
    }

    /// Read `summary.json`.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] naming the file if it is missing or not a summary.
    pub fn read_summary(&self) -> Result<RunSummary> {
        let path = self.summary();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::checkpoint(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::checkpoint(&path, e))
    }
}

/// Write `bytes` to a temporary file beside `path`, then rename it over `path`, so that a kill never
/// leaves a half-written file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    nfn_weightspace::io::replace_atomically(path, |tmp| {
        std::fs::write(tmp, bytes).map_err(|e| e.to_string())
    })
    .map_err(|e| Error::checkpoint(path, e))
}

/// The paper's number for an experiment, shown beside ours in the tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperRef {
    /// The paper's value of the run's headline metric, in the metric's unit.
    pub metric: f64,
    /// Where it comes from (paper, table, row).
    pub source: String,
}

/// One test metric of a finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// The metric.
    pub metric: Metric,
    /// Its name for tables.
    pub label: String,
    /// Its unit (`%` or empty).
    pub unit: String,
    /// Which way it improves.
    pub direction: Direction,
    /// The value on the test split.
    pub value: f64,
}

impl MetricRecord {
    /// Every metric of an evaluation, loss included.
    pub fn all(eval: &Evaluation) -> Vec<MetricRecord> {
        eval.values
            .iter()
            .map(|(&metric, &value)| MetricRecord {
                metric,
                label: metric.label().into(),
                unit: metric.unit().into(),
                direction: metric.direction(),
                value,
            })
            .collect()
    }
}

/// The data a run trained and was tested on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// The data set folder (as the config names it).
    pub path: PathBuf,
    /// Its short name for tables (the folder's name).
    pub name: String,
    /// Networks in the training split (with augmentation copies if used).
    pub train: i64,
    /// Networks in the validation split (as evaluated).
    pub val: i64,
    /// Networks in the test split.
    pub test: i64,
}

/// The budget a run was given and what it used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetRecord {
    /// Steps the config asks for.
    pub planned_steps: u64,
    /// Steps completed.
    pub steps: u64,
    /// Networks per training step.
    pub batch_size: i64,
    /// A wall-time limit, if the config set one (demos only).
    pub time_limit_minutes: Option<f64>,
    /// Training wall time in seconds, summed over resumed sessions.
    pub train_seconds: f64,
}

/// A reference point measured on the test split beside a run's result (e.g. editing's "do
/// nothing" MSE), in the unit of `metric`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRecord {
    /// A short name for tables.
    pub name: String,
    /// What it measures.
    pub description: String,
    /// The metric.
    pub metric: Metric,
    /// Its value on the test split.
    pub value: f64,
}

/// How the tested checkpoint was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectionRecord {
    /// The validation metric that selected it.
    pub metric: Metric,
    /// Its direction.
    pub direction: Direction,
    /// Its best validation value.
    pub value: Option<f64>,
    /// The step of the selected checkpoint.
    pub step: Option<u64>,
}

/// `summary.json`: everything the tables need to state a finished run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The experiment (run folder) name.
    pub experiment: String,
    /// The kind of experiment (the config's `task`, e.g. `inr_classification`, `inr2array_pretrain`).
    pub kind: String,
    /// The results page it belongs to (`inr_classification`, `inr_reconstruction`, ...).
    pub page: String,
    /// The model, as tables name it.
    pub model: String,
    /// Trainable parameters.
    pub params: i64,
    /// The data.
    pub data: DataRecord,
    /// The metric tables show and the paper number refers to.
    pub headline: Metric,
    /// Every test metric.
    pub test: Vec<MetricRecord>,
    /// How the tested checkpoint was chosen.
    pub selection: SelectionRecord,
    /// The paper's number, if any.
    pub paper: Option<PaperRef>,
    /// Reference points on the test split (a task's baselines), if any.
    #[serde(default)]
    pub baselines: Vec<BaselineRecord>,
    /// Budget.
    pub budget: BudgetRecord,
    /// The compute used.
    pub hardware: String,
    /// When it finished (RFC 3339, UTC).
    pub finished: String,
}

impl RunSummary {
    /// The test value of `metric`, if recorded.
    pub fn test_value(&self, metric: Metric) -> Option<f64> {
        self.test.iter().find(|r| r.metric == metric).map(|r| r.value)
    }
}

/// A one-line description of the compute: the GPU count, or the CPU model and thread count.
pub fn hardware() -> String {
    if tch::Cuda::is_available() {
        return format!("CUDA x{}", tch::Cuda::device_count());
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "CPU".into());
    format!("{cpu}, {} threads", tch::get_num_threads())
}
