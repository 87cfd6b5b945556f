//! Time batched SIREN fitting on FashionMNIST training images and report INRs/s and PSNR.
//!
//! `cargo run --release -p nfn-datasets --example fit_bench -- [n=256] [steps=1000] [lr=1e-3]
//!  [final=1.0] [target=40] [chunk=256] [threads=2]`
//! Needs FashionMNIST in /usr/share/datasets/fashion-mnist (`cargo xtask setup`).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use nfn_datasets::siren::{fit_sirens, SirenFitConfig};
use nfn_datasets::{ImageSet, DEFAULT_FASHION_MNIST_DIR};

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
    let start = Instant::now();
    for first in (0..n).step_by(cfg.chunk as usize) {
        let images = set.images.narrow(0, first, cfg.chunk.min(n - first));
        let fit = fit_sirens(&images, &SirenFitConfig { seed: first as u64, ..cfg.clone() }, None)?;
        psnr.extend(fit.psnr);
        steps.extend(fit.steps);
    }
    let secs = start.elapsed().as_secs_f64();
    let mean = psnr.iter().sum::<f64>() / psnr.len() as f64;
    let min = psnr.iter().copied().fold(f64::INFINITY, f64::min);
    let mean_steps = steps.iter().sum::<usize>() as f64 / steps.len() as f64;
    println!(
        "| {n} | {} | {} | {} | {} | {:?} | {:.2} | {mean:.2} | {min:.2} | {mean_steps:.0} | {secs:.1} |",
        cfg.chunk,
        cfg.steps,
        cfg.lr,
        cfg.lr_final_factor,
        cfg.target_psnr,
        n as f64 / secs
    );
    Ok(())
}
