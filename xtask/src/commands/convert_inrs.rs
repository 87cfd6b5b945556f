//! `cargo xtask convert-inrs`: convert a reference SIREN folder into our INR-set format with the
//! release `nfn` binary.
//!
//! Example: `cargo xtask convert-inrs --from data/siren/siren_mnist_wts --dataset mnist --copies 10`
//! writes `data/inrs/mnist-reference/` (resumable: rerun the same command after an interruption).

use anyhow::Result;

/// Options of `convert-inrs`.
#[derive(clap::Args)]
pub struct Args {
    /// Arguments passed on to `nfn convert-inrs` (see `nfn convert-inrs --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Set up, build `nfn` in release mode and run `nfn convert-inrs`.
pub fn run(args: &Args) -> Result<()> {
    let mut nfn_args = vec!["convert-inrs".to_string()];
    nfn_args.extend(args.rest.iter().cloned());
    super::nfn::run_nfn(&nfn_args)
}
