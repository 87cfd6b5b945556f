//! One module per `nfn` command.
pub mod check_config;
pub mod convert_inrs;
pub mod demo;
pub mod eval;
pub mod fit_inrs;
pub mod info;
pub mod inr2array;
pub mod train;
