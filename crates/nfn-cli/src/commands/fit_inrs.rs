//! `nfn fit-inrs`: fit SIRENs to an image set and write a sharded INR data set (resumable).
//!
//! `--limit N` keeps the first `N` training images and the same fraction of the leading validation
//! and test images (`SplitRanges::limited`): `--limit 5500` on FashionMNIST gives 5500 / 500 / 1000.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use nfn_datasets::inr_set::{write_inr_set_part, InrSetOptions, WriteEvent};
use nfn_datasets::siren_fit::SirenFitConfig;
use nfn_weightspace::Shard;

use crate::data::Dataset;

/// A SIREN fitting recipe (`--recipe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Recipe {
    /// Our measured default (`SirenFitConfig::default`).
    Fast,
    /// The reference's reported recipe (`SirenFitConfig::reference`).
    Reference,
}

/// Options of `fit-inrs`.
#[derive(clap::Args)]
pub struct Args {
    /// Image set to fit.
    #[arg(long, value_enum, default_value = "fashion-mnist")]
    pub dataset: Dataset,
    /// Folder of the image files (default: the data set's usual place).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output folder (default: `data/inrs/<dataset>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep the first N training images and the same fraction of validation and test images.
    #[arg(long)]
    pub limit: Option<i64>,
    /// Extra fits of each training image from other random initialisations.
    #[arg(long, default_value_t = 0)]
    pub copies: u32,
    /// SIRENs fitted at once (= INRs per shard).
    #[arg(long)]
    pub chunk: Option<i64>,
    /// The fitting recipe the options below start from: `fast` (our measured default: lr 5e-3 with
    /// cosine decay, early stop at 40 dB, at most 500 steps) or `reference` (Adam 1e-3 constant,
    /// 250 steps, no early stop: how the reference's SIRENs are said to be fitted).
    #[arg(long, value_enum, default_value = "fast")]
    pub recipe: Recipe,
    /// Most Adam steps per SIREN.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Final learning rate as a fraction of the peak (cosine decay).
    #[arg(long)]
    pub lr_final_factor: Option<f64>,
    /// Per-INR early stopping target in dB; a negative value turns it off.
    #[arg(long)]
    pub target_psnr: Option<f64>,
    /// Base seed of the SIREN initialisations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fit only shards `k` with `k % n == i` (`i/n`), for N processes or machines sharing the
    /// output folder; `nfn merge-set <out>` checks the set once all are done.
    #[arg(long, value_parser = crate::driver::parse_shard)]
    pub shard: Option<Shard>,
}

impl Args {
    fn fit_config(&self) -> SirenFitConfig {
        let d = match self.recipe {
            Recipe::Fast => SirenFitConfig::default(),
            Recipe::Reference => SirenFitConfig::reference(),
        };
        SirenFitConfig {
            steps: self.steps.unwrap_or(d.steps),
            lr: self.lr.unwrap_or(d.lr),
            lr_final_factor: self.lr_final_factor.unwrap_or(d.lr_final_factor),
            target_psnr: match self.target_psnr {
                Some(t) if t < 0.0 => None,
                Some(t) => Some(t),
                None => d.target_psnr,
            },
            seed: self.seed,
            chunk: self.chunk.unwrap_or(d.chunk),
        }
    }
}

/// Fit and write the data set, resuming a run that was stopped.
pub fn run(args: &Args) -> Result<()> {
    let fit = args.fit_config();
    fit.validate()?;
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => args.dataset.default_dir()?,
    };
    let out =
        args.out.clone().unwrap_or_else(|| PathBuf::from("data/inrs").join(args.dataset.name()));
    let images = args.dataset.load(&data_dir)?;
    let splits = args.limit.map_or(args.dataset.splits(), |n| args.dataset.splits().limited(n));
    let options =
        InrSetOptions { dataset: args.dataset.name().into(), splits, copies: args.copies, fit };
    let plan = nfn_datasets::InrSetManifest::plan(&options, images.image_shape())?;
    let part = args.shard.unwrap_or_default();
    let total: i64 =
        plan.shards.iter().enumerate().filter(|(k, _)| part.takes(*k)).map(|(_, s)| s.len).sum();
    let device = crate::driver::device();
    eprintln!(
        "fitting {total} INRs{} (train {:?}, val {:?}, test {:?}, {} extra copies) on {} into {}",
        if part.is_all() {
            String::new()
        } else {
            format!(" of {} (shard {part})", plan.counts.iter().sum::<i64>())
        },
        splits.train,
        splits.val,
        splits.test,
        args.copies,
        crate::driver::device_name(device),
        out.display()
    );

    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} INRs [{elapsed_precise} eta {eta}] {msg}",
        )
        .expect("a valid progress template"),
    );
    let start = Instant::now();
    let (mut fitted, mut psnr_sum, mut min_psnr) = (0i64, 0.0f64, f64::INFINITY);
    let manifest = write_inr_set_part(&out, &images, &options, part, device, &mut |event| match event {
        WriteEvent::Skipped { shard } => bar.inc(shard.len as u64),
        WriteEvent::Step { progress, .. } => {
            if progress.step % 10 == 0 {
                bar.set_message(format!(
                    "shard: step {} active {}/{} mean {:.2} dB",
                    progress.step, progress.active, progress.total, progress.mean_psnr
                ));
            }
        }
        WriteEvent::Written { shard, mean_psnr, min_psnr: shard_min, .. } => {
            fitted += shard.len;
            psnr_sum += mean_psnr * shard.len as f64;
            min_psnr = min_psnr.min(*shard_min);
            bar.inc(shard.len as u64);
            bar.suspend(|| eprintln!(
                "{}: {} INRs, {:.2} INRs/s overall, mean PSNR {:.2} dB (this shard {mean_psnr:.2}, min {shard_min:.2})",
                shard.file,
                shard.len,
                fitted as f64 / start.elapsed().as_secs_f64(),
                psnr_sum / fitted as f64
            ));
        }
    })
    .with_context(|| format!("writing the INR set to {}", out.display()))?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    if fitted > 0 {
        eprintln!(
            "fitted {fitted} INRs in {secs:.0} s ({:.2} INRs/s), mean PSNR {:.2} dB, min {min_psnr:.2} dB",
            fitted as f64 / secs,
            psnr_sum / fitted as f64
        );
    }
    if part.is_all() {
        eprintln!("{} holds {} INRs in {} shards", out.display(), total, manifest.shards.len());
    } else {
        crate::commands::merge_set::report_part(&out, part, &manifest);
    }
    Ok(())
}
