//! One module per `nfn` command.
pub mod demo;
pub mod eval;
pub mod fit_inrs;
pub mod info;
pub mod train;
