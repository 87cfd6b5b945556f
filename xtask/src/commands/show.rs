//! `cargo xtask show <run>`: a PNG grid of original images, input SIREN renderings and Inr2Array
//! reconstructions for a few test INRs of a pretraining run, through `nfn show`.

use std::path::PathBuf;

use anyhow::Result;

/// Options of `show`.
#[derive(clap::Args)]
pub struct Args {
    /// The Inr2Array pretraining run folder, e.g. `data/runs/inr2array_fashion_small`.
    pub run: PathBuf,
    /// Where the PNG goes (default: `<run>/reconstructions.png`, as `nfn show` chooses).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Write the PNG.
pub fn run(args: &Args) -> Result<()> {
    let mut nfn_args = vec!["show".into(), args.run.clone().into_os_string()];
    if let Some(out) = &args.out {
        nfn_args.extend(["--out".into(), out.clone().into_os_string()]);
    }
    super::nfn::run_nfn(&nfn_args)
}
