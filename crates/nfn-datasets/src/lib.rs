//! Data sets for weight-space learning: image sets (IDX, CIFAR-10), batched SIREN fitting that turns
//! images into INR data sets, the reference INR and Small CNN Zoo formats, and batch loading.
//!
//! Sits on `nfn-weightspace` only; used by `nfn-cli`, `nfn-bench` and the training code's callers.
#![warn(missing_docs)]
