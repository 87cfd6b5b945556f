//! `cargo xtask demo`: the main job on a built-in default, run by the release `nfn` binary.

use anyhow::Result;

use crate::util::{cargo, run as sh};

/// Options of `demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Arguments passed on to `nfn demo` (see `nfn demo --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Set up, build `nfn` in release mode and run `nfn demo`.
pub fn run(args: &Args) -> Result<()> {
    super::setup::run(&super::setup::Args { reference: false })?;
    sh(cargo()
        .args(["run", "--release", "--quiet", "--package", "nfn-cli", "--bin", "nfn", "--", "demo"])
        .args(&args.rest))
}
