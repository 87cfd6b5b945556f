//! Neural Functional Transformer models and their task heads, the NFN baselines, and the trainer
//! shared by every task (AdamW with warm-up, checkpoints that resume exactly, metrics).
//!
//! Sits on `nfn-layers` and `nfn-weightspace`; used by `inr2array`, `nfn-cli` and `nfn-bench`.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod checkpoint;
pub mod error;
pub mod head;
pub mod mlp;
pub mod optim;
pub mod trainer;

pub use checkpoint::{load_model, save_model, RunDir, TrainState};
pub use error::{Error, Result};
pub use head::{MlpHead, MlpHeadConfig};
pub use mlp::{MlpConfig, MlpOnWeights};
pub use optim::{AdamW, OptimConfig, Schedule};
pub use trainer::{
    evaluate, train, Batch, EvalMetrics, EvalSplits, InvariantModel, Objective, Progress,
    TrainData, TrainSummary, TrainerConfig,
};
