//! The one error type of `nft-model`.

use std::path::PathBuf;

/// Errors from configs, training and checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config value is invalid.
    #[error("invalid config: {0}")]
    Config(String),
    /// The loss became NaN or infinite; the last good checkpoint is kept.
    #[error("non-finite loss {loss} at step {step} (training batch {step}); last good checkpoint: {last_checkpoint:?}")]
    NonFiniteLoss {
        /// The step that produced it.
        step: u64,
        /// The loss value.
        loss: f64,
        /// The step of the last checkpoint on disk, if any.
        last_checkpoint: Option<u64>,
    },
    /// A checkpoint or run file is missing, corrupt or does not fit the model.
    #[error("{}: {message}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Loading training or evaluation data failed; the source names the file.
    #[error("loading data: {0}")]
    Data(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The run folder holds a run of a different config.
    #[error("{} holds a run of a different config; remove the folder or rename the experiment", path.display())]
    RunConflict {
        /// The run folder.
        path: PathBuf,
    },
    /// An error from the layers.
    #[error(transparent)]
    Layers(#[from] nfn_layers::Error),
    /// An error from the weight-space core.
    #[error(transparent)]
    WeightSpace(#[from] nfn_weightspace::Error),
    /// An error raised by LibTorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// A checkpoint error for `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Checkpoint { path: path.into(), message: message.to_string() }
    }

    /// A data-loading error, keeping its source.
    pub fn data(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Data(Box::new(source))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
