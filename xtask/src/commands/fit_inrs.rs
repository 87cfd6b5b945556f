//! `cargo xtask fit-inrs`: fit SIREN INRs to an image set with the release `nfn` binary (a CUDA build
//! where there is a GPU).
//!
//! Example: `cargo xtask fit-inrs --dataset fashion-mnist --limit 5500` writes
//! `data/inrs/fashion-mnist/` (resumable: rerun the same command after an interruption).

use anyhow::Result;

/// Options of `fit-inrs`.
#[derive(clap::Args)]
pub struct Args {
    /// Arguments passed on to `nfn fit-inrs` (see `nfn fit-inrs --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Set up, build `nfn` in release mode and run `nfn fit-inrs`.
pub fn run(args: &Args) -> Result<()> {
    let nfn_args: Vec<&str> =
        std::iter::once("fit-inrs").chain(args.rest.iter().map(String::as_str)).collect();
    super::nfn::run_nfn(&nfn_args)
}
