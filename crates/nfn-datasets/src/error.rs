//! The one error type of `nfn-datasets`.

use std::path::PathBuf;

/// Errors from reading image files, fitting SIRENs and reading or writing INR data sets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file is missing, truncated or not in the expected format.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// Two files or records that must agree do not (image and label counts, shard and manifest).
    #[error("{}: {message}", path.display())]
    Mismatch {
        /// The file where the disagreement was found.
        path: PathBuf,
        /// What disagrees.
        message: String,
    },
    /// An argument or configuration value is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An error from the weight-space core.
    #[error(transparent)]
    WeightSpace(#[from] nfn_weightspace::Error),
    /// An operating-system I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An error raised by LibTorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

impl Error {
    /// A file error for `path` with a message.
    pub fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::File { path: path.into(), message: message.to_string() }
    }

    /// A mismatch error for `path` with a message.
    pub fn mismatch(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Mismatch { path: path.into(), message: message.to_string() }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
