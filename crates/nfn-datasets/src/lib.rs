//! Data sets for weight-space learning: image sets (IDX, CIFAR-10), batched SIREN fitting that turns
//! images into INR data sets, our sharded INR data-set format, converting the reference SIREN sets
//! into it, batch loading, and the edited targets of the INR-editing task.
//!
//! Sits on `nfn-weightspace` only; used by `nfn-cli` and `nfn-fuzz`.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod error;
mod framing;
pub mod idx;
pub mod images;
pub mod mat;

pub use error::{Error, Result};
pub use framing::frame_bytes;
pub use images::{ImageSet, DEFAULT_FASHION_MNIST_DIR};
pub mod siren_fit;
pub use siren_fit::{fit_sirens, FitProgress, SirenFit, SirenFitConfig};
pub mod inr_set;
pub use inr_set::{
    write_inr_set, write_inr_set_part, InrSetManifest, InrSetOptions, InrSource, Split,
    SplitProtocol, SplitRanges,
};
pub mod convert;
pub use convert::{convert_reference_inrs, ConversionPlan, ConvertOptions};
pub mod loader;
pub use loader::{InrSet, InrSplit, Standardization};
pub mod cnn_zoo;
pub mod pth;
pub use cnn_zoo::{load_cnn_zoo, CnnZoo};
pub mod edit;
pub use edit::{edit_image, edit_images, edit_targets, EditStyle, EditTargets};
