//! `nfn latents <inr2array_classify config>`: extract the Inr2Array latents of every split into the
//! encoder run's cache (`<encoder_run>/latents/<split>/`), where `nfn train` of the config finds
//! them. With `--shard i/n`, N processes or machines sharing the run folder each encode their own
//! chunks; `nfn merge-set <encoder_run>/latents` then checks the cache is complete.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nfn_weightspace::Shard;

use crate::experiments::{inr2array_classify, ExperimentKind};

/// Options of `latents`.
#[derive(clap::Args)]
pub struct Args {
    /// An `inr2array_classify` experiment config (it names the encoder run and the chunk sizes).
    pub config: PathBuf,
    /// Encode only chunks `k` with `k % n == i` (`i/n`) of every split.
    #[arg(long, value_parser = crate::driver::parse_shard)]
    pub shard: Option<Shard>,
}

/// Extract this part of the latents and say what is still missing.
pub fn run(args: &Args) -> Result<()> {
    if ExperimentKind::of_config(&args.config)? != ExperimentKind::Inr2ArrayClassify {
        bail!(
            "{}: `nfn latents` takes an inr2array_classify config (task = \"{}\")",
            args.config.display(),
            inr2array::CLASSIFY_TASK
        );
    }
    let cfg = inr2array::ClassifyConfig::read(&args.config)?;
    let part = args.shard.unwrap_or_default();
    eprintln!(
        "encoding INRs with {} on {}{} into {}",
        cfg.encoder_run.display(),
        crate::driver::device_name(crate::driver::device()),
        if part.is_all() { String::new() } else { format!(" (shard {part})") },
        cfg.encoder_run.join("latents").display()
    );
    inr2array_classify::extract_part(&cfg, part)
        .with_context(|| format!("extracting the latents of {}", args.config.display()))?;
    crate::commands::merge_set::report_latents(&cfg.encoder_run.join("latents"))
}
