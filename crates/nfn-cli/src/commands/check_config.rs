//! `nfn check-config <files>`: parse and validate experiment configs without running them.

use std::path::PathBuf;

use anyhow::Result;

/// Options of `check-config`.
#[derive(clap::Args)]
pub struct Args {
    /// Config files.
    #[arg(required = true)]
    pub configs: Vec<PathBuf>,
}

/// Check every file as `nfn train` would read it; the first invalid one is the error.
pub fn run(args: &Args) -> Result<()> {
    for path in &args.configs {
        println!("{}: ok ({})", path.display(), crate::experiments::check(path)?);
    }
    Ok(())
}
