//! The trainer shared by every weight-space task: seeded steps, warm-up schedules, periodic
//! validation with best-checkpoint selection, test evaluation, `metrics.jsonl`, atomic checkpoints
//! that resume exactly, and a clear stop on a non-finite loss.

use std::io::Write;
use std::time::Instant;

use nfn_weightspace::WeightSpaceFeatures;
use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Kind, Tensor};

use crate::checkpoint::{load_checkpoint, load_model, save_checkpoint, save_model, RunDir};
use crate::error::{Error, Result};
use crate::optim::{AdamW, OptimConfig};

/// A batch of inputs (by default weight-space features of `b` networks) and their targets (class
/// indices `[b]` int64, values `[b, k]` float, or whatever the task reads).
#[derive(Debug)]
pub struct Batch<X = WeightSpaceFeatures> {
    /// The inputs.
    pub inputs: X,
    /// The targets; their first axis is the batch.
    pub targets: Tensor,
}

impl<X> Batch<X> {
    /// Number of examples.
    pub fn len(&self) -> i64 {
        self.targets.size().first().copied().unwrap_or(0)
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A source of training batches that is a pure function of the step, so a resumed run sees the same
/// batches it would have seen without the interruption.
pub trait TrainData<X = WeightSpaceFeatures> {
    /// The batch for training step `step`.
    ///
    /// # Errors
    /// Whatever loading the data may raise, as [`Error::Config`] or [`Error::Io`].
    fn batch(&mut self, step: u64) -> Result<Batch<X>>;
}

/// A model from weight-space features to one output vector per network.
pub trait InvariantModel: std::fmt::Debug {
    /// # Shapes
    /// features of a batch of `b` networks → `[b, num_outputs]`.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> Tensor;
}

/// What the trainer optimises: a loss per batch and an evaluation over held-out batches.
pub trait Task {
    /// The batch inputs.
    type Input;
    /// The scalar training (or evaluation) loss of a batch.
    fn loss(&self, batch: &Batch<Self::Input>, train: bool) -> Tensor;
    /// Evaluate on held-out batches (eval mode, no gradients).
    fn evaluate(&self, batches: &[Batch<Self::Input>]) -> EvalMetrics;
}

/// Supervised learning of an [`InvariantModel`] with an [`Objective`].
#[derive(Debug, Clone, Copy)]
pub struct Supervised<'a> {
    /// The model.
    pub model: &'a dyn InvariantModel,
    /// The objective.
    pub objective: Objective,
}

impl Task for Supervised<'_> {
    type Input = WeightSpaceFeatures;

    fn loss(&self, batch: &Batch, train: bool) -> Tensor {
        self.objective.loss(&self.model.forward_t(&batch.inputs, train), &batch.targets)
    }

    fn evaluate(&self, batches: &[Batch]) -> EvalMetrics {
        evaluate(self.model, batches, self.objective)
    }
}

/// The training objective, which also fixes the validation score (higher is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Cross-entropy on logits; score = accuracy.
    CrossEntropy,
    /// Mean squared error; score = minus the loss.
    Mse,
    /// Binary cross-entropy on a sigmoid of the output (generalisation prediction); score = minus the loss.
    SigmoidBce,
}

impl Objective {
    /// The loss of `outputs` against `targets`.
    pub fn loss(&self, outputs: &Tensor, targets: &Tensor) -> Tensor {
        match self {
            Objective::CrossEntropy => outputs.cross_entropy_for_logits(targets),
            Objective::Mse => outputs.mse_loss(targets, tch::Reduction::Mean),
            Objective::SigmoidBce => outputs.binary_cross_entropy_with_logits::<Tensor>(
                targets,
                None,
                None,
                tch::Reduction::Mean,
            ),
        }
    }
}

/// Trainer settings (nested in each experiment's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainerConfig {
    /// Total optimisation steps (classify_siren: 200 000).
    pub steps: u64,
    /// Validate (and checkpoint) every this many steps (classify_siren: 3000).
    pub eval_every: u64,
    /// Write a training-loss record every this many steps.
    pub log_every: u64,
    /// Seed for initialisation and dropout.
    pub seed: u64,
    /// The objective of supervised tasks.
    pub objective: Objective,
    /// Optimiser and schedule.
    pub optim: OptimConfig,
    /// Stop after this much training wall time (summed over resumed sessions), validating and
    /// checkpointing at the stop: a CPU budget. `None` runs all `steps`.
    pub time_limit_minutes: Option<f64>,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            steps: 200_000,   // classify_siren
            eval_every: 3000, // classify_siren
            log_every: 50,
            seed: 0,
            objective: Objective::CrossEntropy,
            optim: OptimConfig::default(),
            time_limit_minutes: None,
        }
    }
}

impl TrainerConfig {
    /// Check the values.
    ///
    /// # Errors
    /// [`Error::Config`] for zero steps or intervals, or bad optimiser settings.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.eval_every == 0 || self.log_every == 0 {
            return Err(Error::Config("steps, eval_every and log_every must be positive".into()));
        }
        if self.time_limit_minutes.is_some_and(|m| m.is_nan() || m <= 0.0) {
            return Err(Error::Config("time_limit_minutes must be positive".into()));
        }
        self.optim.validate()
    }
}

/// Evaluation results on one split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    /// Mean loss over networks.
    pub loss: f64,
    /// Fraction classified correctly (cross-entropy objective only), over all networks.
    pub accuracy: Option<f64>,
    /// Networks evaluated.
    pub count: i64,
}

impl EvalMetrics {
    /// The model-selection score (higher is better): accuracy, or minus the loss.
    pub fn score(&self) -> f64 {
        self.accuracy.unwrap_or(-self.loss)
    }
}

/// Evaluate `model` on `batches` in eval mode without gradients. Accuracy counts every network (the
/// reference averages per-batch accuracies over full batches only; REFERENCE §5.5).
pub fn evaluate(
    model: &dyn InvariantModel,
    batches: &[Batch],
    objective: Objective,
) -> EvalMetrics {
    tch::no_grad(|| {
        let (mut loss_sum, mut correct, mut count) = (0.0, 0i64, 0i64);
        for batch in batches {
            let out = model.forward_t(&batch.inputs, false);
            let n = batch.len();
            loss_sum += objective.loss(&out, &batch.targets).double_value(&[]) * n as f64;
            if objective == Objective::CrossEntropy {
                correct += out
                    .argmax(-1, false)
                    .eq_tensor(&batch.targets)
                    .sum(Kind::Int64)
                    .int64_value(&[]);
            }
            count += n;
        }
        let count_f = count.max(1) as f64;
        EvalMetrics {
            loss: loss_sum / count_f,
            accuracy: (objective == Objective::CrossEntropy).then(|| correct as f64 / count_f),
            count,
        }
    })
}

/// What the trainer reports to its caller after each step.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Steps completed.
    pub step: u64,
    /// Total steps.
    pub total: u64,
    /// This step's training loss.
    pub loss: f64,
    /// This step's learning rate.
    pub lr: f64,
    /// Training throughput of this session so far (networks per second).
    pub networks_per_second: f64,
    /// The latest validation metrics, if any.
    pub val: Option<EvalMetrics>,
}

/// The outcome of a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Steps completed.
    pub steps: u64,
    /// Best validation score and the step it came from.
    pub best: Option<(f64, u64)>,
    /// Test metrics of the best checkpoint.
    pub test: EvalMetrics,
    /// Training wall time in seconds, summed over resumed sessions.
    pub train_seconds: f64,
}

fn append_metrics(run: &RunDir, record: &serde_json::Value) -> Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(run.metrics())?;
    writeln!(file, "{record}")?;
    Ok(())
}

/// Drop metric records past `step` (written after the checkpoint a resumed run restarts from) and
/// earlier test records (the test is rerun at the end).
fn truncate_metrics(run: &RunDir, step: u64) -> Result<()> {
    let path = run.metrics();
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line).ok().is_some_and(|v| {
                v.get("step").and_then(serde_json::Value::as_u64).is_some_and(|s| s <= step)
                    && v.get("split").and_then(serde_json::Value::as_str) != Some("test")
            })
        })
        .collect();
    std::fs::write(&path, kept.iter().map(|l| format!("{l}\n")).collect::<String>())?;
    Ok(())
}

/// The held-out splits of a run.
#[derive(Debug)]
pub struct EvalSplits<'a, X = WeightSpaceFeatures> {
    /// Validation batches (model selection).
    pub val: &'a [Batch<X>],
    /// Test batches (evaluated once, with the best checkpoint).
    pub test: &'a [Batch<X>],
}

impl<X> Clone for EvalSplits<'_, X> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<X> Copy for EvalSplits<'_, X> {}

/// Train `task` (whose variables live in `vs`) in `run`, resuming from its last checkpoint if there
/// is one, validating on `splits.val` and finally testing the best checkpoint on `splits.test`.
///
/// # Errors
/// [`Error::NonFiniteLoss`] (the last good checkpoint stays on disk), data errors from `data`, and
/// checkpoint I/O errors.
pub fn train<T: Task>(
    task: &T,
    vs: &mut VarStore,
    cfg: &TrainerConfig,
    run: &RunDir,
    data: &mut dyn TrainData<T::Input>,
    splits: EvalSplits<'_, T::Input>,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<TrainSummary> {
    let EvalSplits { val, test } = splits;
    let mut opt = AdamW::new(vs, &cfg.optim);
    let mut state = load_checkpoint(run, vs, &mut opt)?.unwrap_or_default();
    truncate_metrics(run, state.step)?;
    let mut last_checkpoint = (state.step > 0).then_some(state.step);
    let session = Instant::now();
    let (start_step, base_seconds) = (state.step, state.train_seconds);
    let mut seen = 0i64;
    let mut last_val = None;
    let out_of_time = |seconds: f64| cfg.time_limit_minutes.is_some_and(|m| seconds >= m * 60.0);
    while state.step < cfg.steps && !out_of_time(state.train_seconds) {
        let step = state.step;
        tch::manual_seed((cfg.seed.wrapping_mul(1_000_003) ^ step) as i64);
        let batch = data.batch(step)?;
        let loss = task.loss(&batch, true);
        let loss_value = loss.double_value(&[]);
        if !loss_value.is_finite() {
            return Err(Error::NonFiniteLoss { step, loss: loss_value, last_checkpoint });
        }
        opt.zero_grad();
        loss.backward();
        let lr = cfg.optim.lr_at(step, cfg.steps);
        let grad_norm = opt.step(lr);
        seen += batch.len();
        state.step += 1;
        state.train_seconds = base_seconds + session.elapsed().as_secs_f64();
        let rate = seen as f64 / session.elapsed().as_secs_f64().max(1e-9);
        if state.step % cfg.log_every == 0 {
            append_metrics(
                run,
                &serde_json::json!({"step": state.step, "split": "train", "loss": loss_value,
                    "lr": lr, "grad_norm": grad_norm, "networks_per_second": rate}),
            )?;
        }
        let stop = state.step == cfg.steps || out_of_time(state.train_seconds);
        if state.step % cfg.eval_every == 0 || stop {
            let metrics = task.evaluate(val);
            append_metrics(
                run,
                &serde_json::json!({"step": state.step, "split": "val", "loss": metrics.loss,
                    "accuracy": metrics.accuracy, "seconds": state.train_seconds}),
            )?;
            if state.best.is_none_or(|(best, _)| metrics.score() > best) {
                state.best = Some((metrics.score(), state.step));
                save_model(vs, &run.best())?;
            }
            save_checkpoint(run, vs, &opt, &state)?;
            last_checkpoint = Some(state.step);
            last_val = Some(metrics);
        }
        on_progress(&Progress {
            step: state.step,
            total: cfg.steps,
            loss: loss_value,
            lr,
            networks_per_second: rate,
            val: last_val,
        });
    }
    if run.best().exists() {
        load_model(vs, &run.best())?;
    }
    let test_metrics = task.evaluate(test);
    append_metrics(
        run,
        &serde_json::json!({"step": state.step, "split": "test", "loss": test_metrics.loss,
            "accuracy": test_metrics.accuracy, "count": test_metrics.count,
            "best_step": state.best.map(|b| b.1), "seconds": state.train_seconds,
            "resumed_from": start_step}),
    )?;
    Ok(TrainSummary {
        steps: state.step,
        best: state.best,
        test: test_metrics,
        train_seconds: state.train_seconds,
    })
}
