//! What a task is to the trainer: how a batch becomes a loss, which metrics it reports on held-out
//! splits, and which of them selects the best checkpoint (in that metric's direction).

use nfn_weightspace::WeightSpaceFeatures;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::metrics::{Evaluation, Metric, MetricAccumulator};
use crate::error::Result;
use crate::model::InvariantModel;

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
    /// Whatever loading the data may raise, as [`crate::Error::Data`] naming the file.
    fn batch(&mut self, step: u64) -> Result<Batch<X>>;
}

/// One evaluated batch: its mean loss, and the outputs the metrics compare with the targets.
#[derive(Debug)]
pub struct EvalOutput {
    /// The batch's mean loss.
    pub loss: f64,
    /// The task's output in the targets' space (class scores, probabilities, pixels).
    pub outputs: Tensor,
    /// The targets the metrics compare with.
    pub targets: Tensor,
}

/// What the trainer optimises and how it is judged.
pub trait Task {
    /// The batch inputs.
    type Input;

    /// The scalar loss of a batch (with gradients when `train`).
    fn loss(&self, batch: &Batch<Self::Input>, train: bool) -> Tensor;

    /// Evaluate one batch in eval mode (the caller disables gradients).
    fn eval_batch(&self, batch: &Batch<Self::Input>) -> EvalOutput;

    /// The metrics reported on validation and test, besides the loss.
    fn metrics(&self) -> Vec<Metric>;

    /// The metric that selects the best checkpoint, in its own direction.
    fn selection(&self) -> Metric;
}

/// Evaluate `task` on held-out batches: eval mode, no gradients, every metric of the task.
pub fn evaluate<T: Task + ?Sized>(task: &T, batches: &[Batch<T::Input>]) -> Evaluation {
    evaluate_metrics(task, batches, &task.metrics())
}

/// [`evaluate`] with an explicit list of metrics (the loss is always included).
pub fn evaluate_metrics<T: Task + ?Sized>(
    task: &T,
    batches: &[Batch<T::Input>],
    metrics: &[Metric],
) -> Evaluation {
    tch::no_grad(|| {
        let mut acc = MetricAccumulator::new(metrics);
        for batch in batches {
            let out = task.eval_batch(batch);
            acc.add(out.loss, &out.outputs, &out.targets);
        }
        acc.finish()
    })
}

/// The training objective of a supervised task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Cross-entropy on logits; reports accuracy, selects by accuracy.
    CrossEntropy,
    /// Mean squared error; reports MSE, MAE, R² and τ, selects by MSE.
    Mse,
    /// Binary cross-entropy on a sigmoid of the output (generalisation prediction); the outputs
    /// are the sigmoid; reports τ, R² and MAE, selects by τ.
    SigmoidBce,
}

impl Objective {
    /// The loss of raw model `outputs` against `targets`.
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

    /// Raw model outputs mapped into the targets' space (the sigmoid for [`Objective::SigmoidBce`]).
    pub fn prediction(&self, outputs: Tensor) -> Tensor {
        match self {
            Objective::SigmoidBce => outputs.sigmoid(),
            Objective::CrossEntropy | Objective::Mse => outputs,
        }
    }

    /// The metrics this objective reports.
    pub fn metrics(&self) -> Vec<Metric> {
        match self {
            Objective::CrossEntropy => vec![Metric::Accuracy],
            Objective::Mse => vec![Metric::Mse, Metric::Mae, Metric::R2, Metric::KendallTau],
            Objective::SigmoidBce => vec![Metric::KendallTau, Metric::R2, Metric::Mae],
        }
    }

    /// The metric that selects the best checkpoint by default.
    pub fn selection(&self) -> Metric {
        self.metrics()[0]
    }
}

/// A model from a batch's inputs to one output vector per example.
pub trait Forward {
    /// The batch inputs.
    type Input;
    /// # Shapes
    /// a batch of `b` inputs → `[b, num_outputs]`.
    fn apply_t(&self, xs: &Self::Input, train: bool) -> Tensor;
}

impl<M: InvariantModel> Forward for M {
    type Input = WeightSpaceFeatures;
    fn apply_t(&self, xs: &WeightSpaceFeatures, train: bool) -> Tensor {
        InvariantModel::forward_t(self, xs, train)
    }
}

impl Forward for dyn InvariantModel + '_ {
    type Input = WeightSpaceFeatures;
    fn apply_t(&self, xs: &WeightSpaceFeatures, train: bool) -> Tensor {
        InvariantModel::forward_t(self, xs, train)
    }
}

/// Supervised learning of a model with an [`Objective`]: classification of INRs (weights in) and of
/// Inr2Array latents (latent arrays in), regression of CNN generalisation.
#[derive(Debug, Clone, Copy)]
pub struct Supervised<'a, M: ?Sized> {
    /// The model.
    pub model: &'a M,
    /// The objective.
    pub objective: Objective,
    /// The metric that selects the best checkpoint (`None`: the objective's default).
    pub select: Option<Metric>,
}

impl<'a, M: Forward + ?Sized> Supervised<'a, M> {
    /// `model` trained on `objective`, selected by the objective's default metric.
    pub fn new(model: &'a M, objective: Objective) -> Self {
        Supervised { model, objective, select: None }
    }
}

impl<M: Forward + ?Sized> Task for Supervised<'_, M> {
    type Input = M::Input;

    fn loss(&self, batch: &Batch<M::Input>, train: bool) -> Tensor {
        self.objective.loss(&self.model.apply_t(&batch.inputs, train), &batch.targets)
    }

    fn eval_batch(&self, batch: &Batch<M::Input>) -> EvalOutput {
        let out = self.model.apply_t(&batch.inputs, false);
        let loss = self.objective.loss(&out, &batch.targets).double_value(&[]);
        EvalOutput {
            loss,
            outputs: self.objective.prediction(out),
            targets: batch.targets.shallow_clone(),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        let mut metrics = self.objective.metrics();
        metrics.extend(self.select.filter(|m| !metrics.contains(m)));
        metrics
    }

    fn selection(&self) -> Metric {
        self.select.unwrap_or_else(|| self.objective.selection())
    }
}
