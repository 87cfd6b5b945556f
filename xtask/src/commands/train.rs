//! `cargo xtask train <config.toml>`: train one experiment through `nfn train` (resumes if its run
//! folder holds a checkpoint).

use std::path::PathBuf;

use anyhow::Result;

/// Options of `train`.
#[derive(clap::Args)]
pub struct Args {
    /// The experiment config, e.g. `xtask/configs/fmnist_nft_small.toml`.
    pub config: PathBuf,
    /// Where runs go (`<runs>/<experiment name>/`).
    #[arg(long, default_value = "data/runs")]
    pub runs: PathBuf,
}

/// Train.
pub fn run(args: &Args) -> Result<()> {
    super::nfn::run_nfn(&[
        "train".as_ref(),
        args.config.as_os_str(),
        "--runs".as_ref(),
        args.runs.as_os_str(),
    ])
}
