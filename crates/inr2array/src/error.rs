//! The one error type of `inr2array`.

use std::path::PathBuf;

/// Errors from configs, shape checks on outside data, and latent files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config value is invalid or does not fit the network spec.
    #[error("invalid Inr2Array config: {0}")]
    Config(String),
    /// A latent file or folder is missing, corrupt or does not fit.
    #[error("{}: {message}", path.display())]
    File {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An error from the layers.
    #[error(transparent)]
    Layers(#[from] nfn_layers::Error),
    /// An error from the model crate (trainer, checkpoints).
    #[error(transparent)]
    Model(#[from] nft_model::Error),
    /// An error from the weight-space core.
    #[error(transparent)]
    WeightSpace(#[from] nfn_weightspace::Error),
    /// An error raised by LibTorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    /// A JSON error.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// A file error for `path`.
    pub fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::File { path: path.into(), message: message.to_string() }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
