//! Data sets for weight-space learning: image sets (IDX, CIFAR-10), batched SIREN fitting that turns
//! images into INR data sets, our sharded INR data-set format, and batch loading.
//!
//! Sits on `nfn-weightspace` only; used by `nfn-cli`, `nfn-bench` and the training code's callers.
#![warn(missing_docs)]

pub mod error;
pub mod idx;
pub mod images;

pub use error::{Error, Result};
pub use images::{ImageSet, DEFAULT_FASHION_MNIST_DIR};
