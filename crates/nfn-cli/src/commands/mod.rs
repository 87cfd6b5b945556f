//! One module per `nfn` command: argument wiring only; the work lives in
//! [`crate::experiments`], [`crate::driver`] and the library crates.
pub mod check_config;
pub mod convert_inrs;
pub mod curves;
pub mod edit;
pub mod embed;
pub mod eval;
pub mod export_inrs;
pub mod fit_inrs;
pub mod info;
pub mod inr_stats;
pub mod latents;
pub mod make_zoo;
pub mod merge_set;
pub mod predict;
pub mod show;
pub mod tables;
pub mod train;
