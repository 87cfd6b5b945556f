//! `cargo xtask eval <run>`: evaluate a finished run's best checkpoint on its test split.

use std::path::PathBuf;

use anyhow::Result;

/// Options of `eval`.
#[derive(clap::Args)]
pub struct Args {
    /// The run folder, e.g. `data/runs/fmnist_nft_small`.
    pub run: PathBuf,
}

/// Evaluate.
pub fn run(args: &Args) -> Result<()> {
    super::nfn::run_nfn(&["eval".as_ref(), args.run.as_os_str()])
}
