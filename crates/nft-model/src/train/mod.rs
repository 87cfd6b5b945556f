//! Training and evaluation shared by every experiment kind: the [`Task`] a model is trained on,
//! the [`metrics`] it reports, the checkpointable optimiser, checkpoints, the [`Run`] folder and
//! the training loop.

pub mod checkpoint;
pub mod editing;
pub mod metrics;
pub mod optim;
pub mod run;
pub mod task;
pub mod trainer;

pub use checkpoint::{load_model, save_model, Best, TrainState};
pub use editing::Editing;
pub use metrics::{fmt_value, kendall_tau_b, Direction, Evaluation, Metric, MetricAccumulator};
pub use optim::{AdamW, OptimConfig, Schedule};
pub use run::{
    hardware, BaselineRecord, BudgetRecord, DataRecord, MetricRecord, PaperRef, Run, RunSummary,
    SelectionRecord,
};
pub use task::{
    evaluate, evaluate_metrics, Batch, EvalOutput, Forward, Objective, Supervised, Task, TrainData,
};
pub use trainer::{reported_metrics, train, EvalSplits, Progress, TrainSummary, TrainerConfig};
