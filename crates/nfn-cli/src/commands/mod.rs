//! One module per `nfn` command.
pub mod demo;
pub mod fit_inrs;
pub mod info;
