//! `cargo xtask tables`: rebuild `docs/results/*.md` (one page per kind of task) from the runs on
//! disk, through `nfn tables`, which reads each run's `summary.json`. The pages are never edited by
//! hand.

use std::path::PathBuf;

use anyhow::Result;

use crate::util::root;

/// Options of `tables`.
#[derive(clap::Args)]
pub struct Args {
    /// Where runs are.
    #[arg(long, default_value = "data/runs")]
    pub runs: PathBuf,
    /// Where the pages go.
    #[arg(long, default_value = "docs/results")]
    pub out: PathBuf,
}

/// Rebuild the pages.
pub fn run(args: &Args) -> Result<()> {
    let (runs, out) = (root().join(&args.runs), root().join(&args.out));
    super::nfn::run_nfn(&[
        "tables".as_ref(),
        "--runs".as_ref(),
        runs.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
}
