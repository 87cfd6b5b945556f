//! `cargo xtask show <run>`: a PNG of a run, through `nfn show`: original images, input SIREN
//! renderings and reconstructions (Inr2Array pretraining); original images, edited targets, input
//! and edited SIRENs (INR editing); predicted against true test accuracy (CNN generalisation); or,
//! for a zoo folder, the histogram of its networks' test accuracies.

use std::path::PathBuf;

use anyhow::Result;

/// Options of `show`.
#[derive(clap::Args)]
pub struct Args {
    /// The run folder, e.g. `data/runs/inr2array_fashion_12k` or `data/runs/edit_fmnist_gradient_nft_12k`.
    pub run: PathBuf,
    /// Where the PNG goes (default: `<run>/show.png`, as `nfn show` chooses).
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
