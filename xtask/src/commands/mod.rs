//! One module per xtask command.
pub mod bench;
pub mod convert_inrs;
pub mod demo;
pub mod download;
pub mod eval;
pub mod fit_inrs;
pub mod fuzz;
pub mod gpu_check;
pub mod gpu_pack;
pub mod nfn;
pub mod reproduce;
pub mod setup;
pub mod ship_pretrained;
pub mod show;
pub mod tables;
pub mod test;
pub mod train;
