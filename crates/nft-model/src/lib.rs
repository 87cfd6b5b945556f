//! Neural Functional Transformer models and their task heads, the NFN baselines (InvariantNFN with NP
//! or HNP layers, StatNet, the MLP on flattened weights), the equivariant editing models (the NFT
//! with an equivariant head, TransferNet), and the trainer shared by every task (AdamW
//! with warm-up, checkpoints that resume exactly, metrics).
//!
//! Sits on `nfn-layers` and `nfn-weightspace`; used by `inr2array`, `nfn-cli` and `nfn-bench`.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod editing;
pub mod error;
pub mod head;
pub mod invariant_nfn;
pub mod mlp;
pub mod model;
pub mod nft;
pub mod probe;
pub mod statnet;
pub mod train;

pub use editing::{EditorConfig, NftEditor, NftEditorConfig, TransferNet, TransferNetConfig};
pub use error::{Error, Result};
pub use head::{HeadInit, MlpHead, MlpHeadConfig};
pub use invariant_nfn::{InvariantNfn, InvariantNfnConfig, NfnLayerKind, PoolKind};
pub use mlp::{MlpConfig, MlpOnWeights};
pub use model::{InvariantModel, ModelConfig};
pub use nft::{NftInput, NftModel, NftModelConfig, NftReadout};
pub use probe::{ProbeConfig, ProbeModel};
pub use statnet::StatNet;
pub use train::{
    evaluate, hardware, kendall_tau_b, load_model, save_model, train, AdamW, Batch, Best,
    Direction, Editing, EvalOutput, EvalSplits, Evaluation, Forward, Metric, Objective,
    OptimConfig, PaperRef, Progress, Run, RunSummary, Schedule, Supervised, Task, TrainData,
    TrainState, TrainSummary, TrainerConfig,
};
