//! `cargo xtask fit-inrs`: fit SIREN INRs to an image set with the release `nfn` binary.
//!
//! Example: `cargo xtask fit-inrs --dataset fashion-mnist --limit 5500` writes
//! `data/inrs/fashion-mnist/` (resumable: rerun the same command after an interruption).

use anyhow::Result;

use crate::util::{cargo, run as sh};

/// Options of `fit-inrs`.
#[derive(clap::Args)]
pub struct Args {
    /// Arguments passed on to `nfn fit-inrs` (see `nfn fit-inrs --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Set up, build `nfn` in release mode and run `nfn fit-inrs`.
pub fn run(args: &Args) -> Result<()> {
    super::setup::run(&super::setup::Args { reference: false })?;
    sh(cargo()
        .args(["run", "--release", "--quiet", "--package", "nfn-cli", "--bin", "nfn", "--"])
        .arg("fit-inrs")
        .args(&args.rest))
}
