//! The one error type of `nfn-layers`.

/// Errors from building layers (configs that do not fit a spec) and loading parameters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A layer config is invalid or does not fit the network spec.
    #[error("invalid layer config: {0}")]
    Config(String),
    /// An error from the weight-space core.
    #[error(transparent)]
    WeightSpace(#[from] nfn_weightspace::Error),
    /// An error raised by LibTorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
