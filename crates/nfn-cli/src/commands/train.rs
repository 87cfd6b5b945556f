//! `nfn train <config.toml>`: train one experiment of any kind, resuming its run folder if it holds
//! a checkpoint; writes `summary.json` for `nfn tables`.

use std::path::PathBuf;

use anyhow::Result;

/// Options of `train`.
#[derive(clap::Args)]
pub struct Args {
    /// The experiment config.
    pub config: PathBuf,
    /// Where runs go (`<runs>/<name>/`).
    #[arg(long, default_value = "data/runs")]
    pub runs: PathBuf,
}

/// Train.
pub fn run(args: &Args) -> Result<()> {
    crate::experiments::train(&args.config, &args.runs).map(|_| ())
}
