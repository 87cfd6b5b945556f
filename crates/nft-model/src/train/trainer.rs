//! The training loop shared by every task: seeded steps, warm-up schedules, periodic validation
//! with best-checkpoint selection by the task's metric and direction, a test of the best
//! checkpoint, `metrics.jsonl`, atomic checkpoints that resume exactly, and a clear stop on a
//! non-finite loss.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

use super::checkpoint::{load_checkpoint, load_model, save_checkpoint, save_model, Best};
use super::metrics::{Evaluation, Metric};
use super::optim::{AdamW, OptimConfig};
use super::run::Run;
use super::task::{evaluate_metrics, Batch, Objective, Task, TrainData};
use crate::error::{Error, Result};

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
    /// The validation metric that selects the best checkpoint (default: the task's own).
    pub select: Option<Metric>,
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
            select: None,
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

/// What the trainer reports to its caller after each step.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
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
    pub val: Option<&'a Evaluation>,
}

/// The outcome of a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Steps completed.
    pub steps: u64,
    /// The best validation value of the selection metric and its step.
    pub best: Option<Best>,
    /// Test metrics of the best checkpoint.
    pub test: Evaluation,
    /// Training wall time in seconds, summed over resumed sessions.
    pub train_seconds: f64,
}

/// The held-out splits of a run.
#[derive(Debug)]
pub struct EvalSplits<'a, X = nfn_weightspace::WeightSpaceFeatures> {
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

/// The metrics a run of `task` reports on val and test: the task's own, and the selection metric
/// (`cfg.select`, or the task's).
pub fn reported_metrics<T: Task + ?Sized>(task: &T, cfg: &TrainerConfig) -> Vec<Metric> {
    let mut metrics = task.metrics();
    metrics.push(cfg.select.unwrap_or_else(|| task.selection()));
    metrics
}

/// A `metrics.jsonl` record: step, split, then every metric of the evaluation.
fn eval_record(
    step: u64,
    split: &str,
    eval: &Evaluation,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut record = serde_json::json!({"step": step, "split": split, "count": eval.count});
    for (metric, value) in &eval.values {
        record[metric.key()] = serde_json::json!(value);
    }
    if let (Some(r), serde_json::Value::Object(extra)) = (record.as_object_mut(), extra) {
        r.extend(extra);
    }
    record
}

/// Train `task` (whose variables live in `vs`) in `run`, resuming from its last checkpoint if there
/// is one, validating on `splits.val` (the best checkpoint by `task.selection()`, or the config's
/// `select`, in that metric's direction) and finally testing the best checkpoint on `splits.test`.
///
/// # Errors
/// [`Error::NonFiniteLoss`] (the last good checkpoint stays on disk), data errors from `data`, and
/// checkpoint I/O errors.
pub fn train<T: Task>(
    task: &T,
    vs: &mut VarStore,
    cfg: &TrainerConfig,
    run: &Run,
    data: &mut dyn TrainData<T::Input>,
    splits: EvalSplits<'_, T::Input>,
    on_progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<TrainSummary> {
    let EvalSplits { val, test } = splits;
    let select = cfg.select.unwrap_or_else(|| task.selection());
    let metrics = reported_metrics(task, cfg);
    let mut opt = AdamW::new(vs, &cfg.optim);
    let mut state = load_checkpoint(run, vs, &mut opt)?.unwrap_or_default();
    run.truncate_metrics(state.step)?;
    let mut last_checkpoint = (state.step > 0).then_some(state.step);
    let session = Instant::now();
    let (start_step, base_seconds) = (state.step, state.train_seconds);
    let mut seen = 0i64;
    let mut last_val: Option<Evaluation> = None;
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
            run.append_metrics(&serde_json::json!({"step": state.step, "split": "train",
                "loss": loss_value, "lr": lr, "grad_norm": grad_norm,
                "networks_per_second": rate}))?;
        }
        let stop = state.step == cfg.steps || out_of_time(state.train_seconds);
        if state.step % cfg.eval_every == 0 || stop {
            let eval = evaluate_metrics(task, val, &metrics);
            let seconds = serde_json::json!({"seconds": state.train_seconds});
            run.append_metrics(&eval_record(state.step, "val", &eval, seconds))?;
            let value = eval.get(select).unwrap_or(f64::NAN);
            let improved = match state.best {
                None => !value.is_nan(),
                Some(best) => select.direction().better(value, best.value),
            };
            if improved {
                state.best = Some(Best { metric: select, value, step: state.step });
                save_model(vs, &run.best())?;
            }
            save_checkpoint(run, vs, &opt, &state)?;
            last_checkpoint = Some(state.step);
            last_val = Some(eval);
        }
        on_progress(&Progress {
            step: state.step,
            total: cfg.steps,
            loss: loss_value,
            lr,
            networks_per_second: rate,
            val: last_val.as_ref(),
        });
    }
    if run.best().exists() {
        load_model(vs, &run.best())?;
    }
    let test_eval = evaluate_metrics(task, test, &metrics);
    let extra = serde_json::json!({"best_step": state.best.map(|b| b.step),
        "seconds": state.train_seconds, "resumed_from": start_step});
    run.append_metrics(&eval_record(state.step, "test", &test_eval, extra))?;
    Ok(TrainSummary {
        steps: state.step,
        best: state.best,
        test: test_eval,
        train_seconds: state.train_seconds,
    })
}
