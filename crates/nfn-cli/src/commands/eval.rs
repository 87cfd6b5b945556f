//! `nfn eval <run>`: evaluate a run's best checkpoint on its test split.

use std::path::PathBuf;

use anyhow::{Context, Result};
use nft_model::{evaluate, load_model, RunDir};
use tch::{nn::VarStore, Device};

use crate::experiment::{eval_batches, load_splits, ExperimentConfig};

/// Options of `eval`.
#[derive(clap::Args)]
pub struct Args {
    /// The run folder (holds config.toml and model.safetensors).
    pub run: PathBuf,
}

/// Evaluate and print.
pub fn run(args: &Args) -> Result<()> {
    let run = RunDir::create(&args.run)?;
    let cfg = ExperimentConfig::read(&run.path().join("config.toml"))?;
    let device = Device::cuda_if_available();
    let splits = load_splits(&cfg.data)?;
    let num_classes = splits.train.labels.max().int64_value(&[]) + 1;
    let mut vs = VarStore::new(device);
    let model = cfg.model.build(&vs.root(), &splits.train.spec, num_classes)?;
    load_model(&mut vs, &run.best()).with_context(|| format!("loading {:?}", run.best()))?;
    let test = eval_batches(
        &splits.test,
        cfg.data.eval_batch_size,
        splits.standardization.as_ref(),
        device,
    );
    let metrics = evaluate(model.as_ref(), &test, cfg.trainer.objective);
    println!(
        "{}: test accuracy {:.2}%, loss {:.4}, on {} INRs",
        cfg.name,
        100.0 * metrics.accuracy.unwrap_or(f64::NAN),
        metrics.loss,
        metrics.count
    );
    Ok(())
}
