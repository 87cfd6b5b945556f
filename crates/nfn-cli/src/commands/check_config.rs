//! `nfn check-config <files>`: parse and validate experiment configs without running them.

use std::path::PathBuf;

use anyhow::Result;

use crate::experiment::ExperimentConfig;

/// Options of `check-config`.
#[derive(clap::Args)]
pub struct Args {
    /// Config files.
    #[arg(required = true)]
    pub configs: Vec<PathBuf>,
}

/// Check every file; the first invalid one is the error.
pub fn run(args: &Args) -> Result<()> {
    for path in &args.configs {
        let cfg = ExperimentConfig::read(path)?;
        println!("{}: ok ({}, {} steps)", path.display(), cfg.model.name(), cfg.trainer.steps);
    }
    Ok(())
}
