//! Time batched SIREN fitting on FashionMNIST training images and report INRs/s and PSNR.
//! Prints one markdown row: n, chunk, steps, lr, final factor, target, INRs/s (wall), mean and min
//! PSNR, mean steps, seconds, INRs per CPU-second, and the 1-minute load average at the end, then
//! the main figures as one JSON line.
//!
//! `cargo run --release -p nfn-datasets --example fit_bench -- [n=256] [steps=1000] [lr=1e-3]
//!  [final=1.0] [target=40] [chunk=256] [threads=2]`
//! Needs FashionMNIST in /usr/share/datasets/fashion-mnist (`cargo xtask setup`).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use nfn_datasets::siren_fit::{fit_sirens, SirenFitConfig};
use nfn_datasets::{ImageSet, DEFAULT_FASHION_MNIST_DIR};

/// CPU seconds (user + system) this process has used, from `/proc/self/stat` (Linux, 100 Hz ticks).
fn cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<&str> = stat.rsplit(')').next().context("stat")?.split_whitespace().collect();
    Ok((fields[11].parse::<f64>()? + fields[12].parse::<f64>()?) / 100.0)
}

fn main() -> Result<()> {
    let mut cfg = SirenFitConfig::default();
    let mut n = 256i64;
    for arg in std::env::args().skip(1) {
        let (key, value) = arg.split_once('=').with_context(|| format!("{arg}: want key=value"))?;
        match key {
            "n" => n = value.parse()?,
            "steps" => cfg.steps = value.parse()?,
            "lr" => cfg.lr = value.parse()?,
            "final" => cfg.lr_final_factor = value.parse()?,
            "target" => cfg.target_psnr = (value != "none").then(|| value.parse()).transpose()?,
            "chunk" => cfg.chunk = value.parse()?,
            "threads" => tch::set_num_threads(value.parse()?),
            _ => bail!("unknown option {key}"),
        }
    }
    cfg.validate()?;
    let set = ImageSet::fashion_mnist(DEFAULT_FASHION_MNIST_DIR)?;
    let (mut psnr, mut steps) = (Vec::new(), Vec::new());
    let (start, cpu_start) = (Instant::now(), cpu_seconds()?);
    for first in (0..n).step_by(cfg.chunk as usize) {
        let images = set.images.narrow(0, first, cfg.chunk.min(n - first));
        let fit = fit_sirens(&images, &SirenFitConfig { seed: first as u64, ..cfg.clone() }, None)?;
        psnr.extend(fit.psnr);
        steps.extend(fit.steps);
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_start;
    let mean = psnr.iter().sum::<f64>() / psnr.len() as f64;
    let min = psnr.iter().copied().fold(f64::INFINITY, f64::min);
    let mean_steps = steps.iter().sum::<usize>() as f64 / steps.len() as f64;
    println!(
        "| {n} | {} | {} | {} | {} | {:?} | {:.2} | {mean:.2} | {min:.2} | {mean_steps:.0} | {secs:.1} | {:.2} | {:.2} |",
        cfg.chunk,
        cfg.steps,
        cfg.lr,
        cfg.lr_final_factor,
        cfg.target_psnr,
        n as f64 / secs,
        n as f64 / cpu,
        std::fs::read_to_string("/proc/loadavg")?.split(' ').next().unwrap_or("?").parse::<f64>()?
    );
    // The same as one JSON line, for `cargo xtask bench fit`.
    println!(
        "{{\"mode\": \"ours\", \"n\": {n}, \"steps\": {mean_steps:.1}, \"seconds\": {secs}, \"inrs_per_s\": {}, \"mean_psnr\": {mean}, \"min_psnr\": {min}}}",
        n as f64 / secs
    );
    Ok(())
}
