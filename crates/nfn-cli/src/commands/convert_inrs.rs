//! `nfn convert-inrs`: convert a reference SIREN folder (design.md §6.1, `.pth` state dicts in
//! `randinit_smaller_<d>s/` class folders) into our sharded INR data set (resumable).
//!
//! Example: `nfn convert-inrs --from data/siren/siren_mnist_wts --dataset mnist --copies 10`
//! writes `data/inrs/mnist-reference/`. The reference's `randinit_smaller_aug<k>_<d>s` folders become
//! copies `k + 1`, for training images only. Converted INRs have no fitting PSNR (NaN).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use nfn_datasets::convert::{ConversionPlan, ConvertEvent, ConvertOptions, DEFAULT_SHARD_SIZE};
use nfn_weightspace::Shard;

use crate::data::Dataset;

/// Options of `convert-inrs`.
#[derive(clap::Args)]
pub struct Args {
    /// The reference folder (e.g. `data/siren/siren_mnist_wts`).
    #[arg(long)]
    pub from: PathBuf,
    /// Output folder (default: `data/inrs/<dataset>-reference`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Which image set the SIRENs encode: sets the SIREN spec, image shape and splits.
    #[arg(long, value_enum)]
    pub dataset: Dataset,
    /// Augmented copies to convert (`randinit_smaller_aug0 .. aug{K-1}`), training images only.
    #[arg(long, default_value_t = 0)]
    pub copies: u32,
    /// INRs per shard.
    #[arg(long, default_value_t = DEFAULT_SHARD_SIZE)]
    pub shard_size: i64,
    /// Write only shards `k` with `k % n == i` (`i/n`), for N processes or machines sharing the
    /// output folder; `nfn merge-set <out>` checks the set once all are done.
    #[arg(long, value_parser = crate::driver::parse_shard)]
    pub shard: Option<Shard>,
}

/// Convert the folder, resuming a conversion that was stopped.
pub fn run(args: &Args) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("data/inrs").join(format!("{}-reference", args.dataset.name()))
    });
    let options = ConvertOptions {
        copies: args.copies,
        shard_size: args.shard_size,
        ..ConvertOptions::reference(args.dataset.name())?
    };
    let plan = ConversionPlan::reference(&args.from, &options)
        .with_context(|| format!("listing the reference SIRENs in {}", args.from.display()))?;
    let part = args.shard.unwrap_or_default();
    let total = plan.total();
    let mine: i64 = plan
        .manifest
        .shards
        .iter()
        .enumerate()
        .filter(|(k, _)| part.takes(*k))
        .map(|(_, s)| s.len)
        .sum();
    eprintln!(
        "converting {mine} INRs{} ({}, {} extra copies) from {} into {}",
        if part.is_all() { String::new() } else { format!(" of {total} (shard {part})") },
        args.dataset.name(),
        args.copies,
        args.from.display(),
        out.display()
    );

    let bar = ProgressBar::new(mine as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} INRs [{elapsed_precise} eta {eta}]")
            .expect("a valid progress template"),
    );
    let start = Instant::now();
    let (mut written, mut skipped) = (0usize, 0usize);
    plan.write_reference(&out, part, &mut |event| match event {
        ConvertEvent::Skipped { shard } => {
            skipped += 1;
            bar.inc(shard.len as u64);
        }
        ConvertEvent::Written { shard, .. } => {
            written += 1;
            bar.inc(shard.len as u64);
        }
    })
    .with_context(|| format!("writing the INR set to {}", out.display()))?;
    bar.finish_and_clear();

    let m = &plan.manifest;
    let copies: i64 = m.shards.iter().filter(|s| s.copy > 0).map(|s| s.len).sum();
    let dropped = m.source.as_ref().map_or(0, |s| s.dropped_copies);
    eprintln!(
        "{} holds {total} INRs: train {} ({copies} of them extra copies), val {}, test {}; \
         {} shards ({written} written, {skipped} already there) in {:.1} s; \
         {dropped} extra-copy INRs of non-training images left out",
        out.display(),
        m.counts[0],
        m.counts[1],
        m.counts[2],
        m.shards.len(),
        start.elapsed().as_secs_f64()
    );
    if !part.is_all() {
        crate::commands::merge_set::report_part(&out, part, &plan.manifest);
    }
    Ok(())
}
