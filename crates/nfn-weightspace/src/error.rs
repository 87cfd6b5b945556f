//! The one error type of `nfn-weightspace`.

use std::path::PathBuf;

/// Errors from building, checking, converting and reading weight-space data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A network spec is not a valid chain of layers.
    #[error("invalid network spec: {0}")]
    InvalidSpec(String),
    /// A tensor has the wrong shape for the layer it stands for.
    #[error("layer {layer} {what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Weight-layer index.
        layer: usize,
        /// `"weight"` or `"bias"`.
        what: &'static str,
        /// The expected shape, in words (free axes written as `_`).
        expected: String,
        /// The shape that was found.
        got: Vec<i64>,
    },
    /// Features do not belong to the given spec.
    #[error("features do not match the spec: {0}")]
    SpecMismatch(String),
    /// A tensor holds NaN or infinite values.
    #[error("layer {layer} {what} holds {count} non-finite value(s) (NaN or inf)")]
    NonFinite {
        /// Weight-layer index.
        layer: usize,
        /// `"weight"` or `"bias"`.
        what: &'static str,
        /// How many entries are not finite.
        count: i64,
    },
    /// A tensor has a dtype this operation does not take.
    #[error("{what}: unsupported dtype {got}, expected {expected}")]
    Dtype {
        /// What was being read or checked.
        what: String,
        /// The dtype found.
        got: String,
        /// What is accepted.
        expected: String,
    },
    /// A job part (`--shard i/n`) that does not exist or does not parse.
    #[error("invalid shard: {0}")]
    InvalidShard(String),
    /// A permutation does not fit the spec, or is not a permutation.
    #[error("invalid permutation: {0}")]
    InvalidPermutation(String),
    /// A file could not be read or parsed.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
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
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
