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

/// Check every file (by its `task`, as `nfn train` would read it); the first invalid one is the error.
pub fn run(args: &Args) -> Result<()> {
    for path in &args.configs {
        match super::train::task_of(path)?.as_deref() {
            Some(inr2array::PRETRAIN_TASK) => {
                inr2array::PretrainConfig::read(path)?;
                println!("{}: ok (Inr2Array pretraining)", path.display());
            }
            Some(inr2array::CLASSIFY_TASK) => {
                inr2array::ClassifyConfig::read(path)?;
                println!("{}: ok (Inr2Array classifier)", path.display());
            }
            _ => {
                let cfg = ExperimentConfig::read(path)?;
                println!(
                    "{}: ok ({}, {} steps)",
                    path.display(),
                    cfg.model.name(),
                    cfg.trainer.steps
                );
            }
        }
    }
    Ok(())
}
