//! Neural Functional Transformer models and their task heads, plus the NFN baselines, with the
//! shared trainer and evaluation.
//!
//! Sits on `nfn-layers` and `nfn-weightspace`; used by `inr2array`, `nfn-cli` and `nfn-bench`.
//! (Models land with the training issue.)
#![warn(missing_docs)]
