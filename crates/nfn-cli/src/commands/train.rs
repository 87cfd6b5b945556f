//! `nfn train <config.toml>`: train one experiment, resuming its run folder if it holds a checkpoint,
//! and write `summary.json` for `cargo xtask tables`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use nft_model::{train, EvalSplits, RunDir, Supervised};
use tch::{nn::VarStore, Device};

use crate::experiment::{eval_batches, load_splits, EpochBatches, ExperimentConfig};

/// Options of `train`.
#[derive(clap::Args)]
pub struct Args {
    /// The experiment config.
    pub config: PathBuf,
    /// Where runs go (`<runs>/<name>/`).
    #[arg(long, default_value = "data/runs")]
    pub runs: PathBuf,
}

/// A one-line description of the compute used.
pub fn hardware() -> String {
    if tch::Cuda::is_available() {
        return format!("CUDA x{}", tch::Cuda::device_count());
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "CPU".into());
    format!("{cpu}, {} threads", tch::get_num_threads())
}

/// Write the resolved config into the run folder, refusing to mix two configs in one folder.
fn claim_run_folder(cfg: &ExperimentConfig, run: &RunDir) -> Result<()> {
    let path = run.path().join("config.toml");
    if path.exists() {
        let old = ExperimentConfig::read(&path)?;
        if &old != cfg {
            bail!(
                "{} holds a run of a different config; remove the folder or rename the experiment",
                run.path().display()
            );
        }
    }
    std::fs::write(&path, toml::to_string_pretty(cfg)?).with_context(|| format!("writing {path:?}"))
}

/// Train the experiment of `config`; returns the run folder.
pub fn train_experiment(config: &Path, runs: &Path) -> Result<PathBuf> {
    let cfg = ExperimentConfig::read(config)?;
    let run = RunDir::create(runs.join(&cfg.name))?;
    claim_run_folder(&cfg, &run)?;
    let device = Device::cuda_if_available();
    let splits = load_splits(&cfg.data)?;
    let spec = splits.train.spec.clone();
    let num_classes = splits.train.labels.max().int64_value(&[]) + 1;
    tch::manual_seed(cfg.trainer.seed as i64);
    let mut vs = VarStore::new(device);
    let model = cfg.model.build(&vs.root(), &spec, num_classes)?;
    let params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    let std = splits.standardization.as_ref();
    let val = eval_batches(&splits.val, cfg.data.eval_batch_size, std, device);
    let test = eval_batches(&splits.test, cfg.data.eval_batch_size, std, device);
    let mut data =
        EpochBatches::new(&splits.train, std, cfg.data.batch_size, cfg.trainer.seed, device);
    eprintln!(
        "nfn: training {} ({}, {:.2} M params) on {} / {} / {} INRs, {} steps x {}, {} steps per epoch, on {:?}",
        cfg.name,
        cfg.model.name(),
        params as f64 / 1e6,
        splits.train.len(),
        splits.val.len(),
        splits.test.len(),
        cfg.trainer.steps,
        cfg.data.batch_size,
        data.per_epoch(),
        device
    );
    let bar = ProgressBar::new(cfg.trainer.steps);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} < {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(cfg.name.clone());
    bar.enable_steady_tick(Duration::from_millis(500));
    let summary = train(
        &Supervised { model: model.as_ref(), objective: cfg.trainer.objective },
        &mut vs,
        &cfg.trainer,
        &run,
        &mut data,
        EvalSplits { val: &val, test: &test },
        &mut |p| {
            bar.set_position(p.step);
            let val = p
                .val
                .and_then(|v| v.accuracy)
                .map_or(String::new(), |a| format!(" val acc {:.1}%", 100.0 * a));
            bar.set_message(format!("loss {:.3}{val}, {:.0} INR/s", p.loss, p.networks_per_second));
        },
    )?;
    bar.finish();
    let metric = 100.0 * summary.test.accuracy.unwrap_or(f64::NAN);
    let record = serde_json::json!({
        "experiment": cfg.name, "task": cfg.task, "model": cfg.model.name(),
        "dataset": cfg.data.inrs.file_name().map(|n| n.to_string_lossy().into_owned()),
        "metric_name": "accuracy %", "test_metric": metric,
        "paper_metric": cfg.paper.as_ref().map(|p| p.metric),
        "paper_source": cfg.paper.as_ref().map(|p| p.source.clone()),
        "train_networks": splits.train.len(), "val_networks": splits.val.len(),
        "test_networks": splits.test.len(), "steps": summary.steps, "batch_size": cfg.data.batch_size,
        "params": params, "train_seconds": summary.train_seconds, "best": summary.best,
        "hardware": hardware(), "finished": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    let path = run.path().join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("writing {path:?}"))?;
    println!(
        "{}: test accuracy {metric:.2}% on {} INRs ({} steps, {:.1} min)",
        cfg.name,
        summary.test.count,
        summary.steps,
        summary.train_seconds / 60.0
    );
    Ok(run.path().to_path_buf())
}

/// The `task` field of a config file, if any.
pub fn task_of(config: &Path) -> Result<Option<String>> {
    let text = std::fs::read_to_string(config).with_context(|| format!("reading {config:?}"))?;
    let value: toml::Value =
        toml::from_str(&text).with_context(|| format!("parsing {config:?}"))?;
    Ok(value.get("task").and_then(toml::Value::as_str).map(str::to_string))
}

/// Train whatever the config describes; returns the run folder.
pub fn train_any(config: &Path, runs: &Path) -> Result<PathBuf> {
    match task_of(config)?.as_deref() {
        Some(inr2array::PRETRAIN_TASK) => super::inr2array::pretrain(config, runs),
        Some(inr2array::CLASSIFY_TASK) => super::inr2array::classify(config, runs),
        _ => train_experiment(config, runs),
    }
}

/// Train.
pub fn run(args: &Args) -> Result<()> {
    train_any(&args.config, &args.runs).map(|_| ())
}
