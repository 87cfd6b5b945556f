//! `cargo xtask bench step`: what one whole training step costs, data loading included, for the NFT
//! INR classifier and the Inr2Array autoencoder: ours (`nfn train`) against the same model in a
//! PyTorch training loop (`xtask/bench/step_ref.py`), like for like, then rows of ours only at other
//! batch sizes, thread counts and allocators (what makes our CPU training efficient). Written to
//! `docs/bench/step.md`.
//!
//! Every row is one process that trains `--step-warmup` untimed steps and then `--step-steps`
//! timed ones on `--learn-inrs`; the row's time is the wall time of the timed steps. Ours: the
//! release `nfn` binary, run directly under the allocator of the row, trains a generated config
//! that validates only after its last step; the window comes from its `metrics.jsonl` training
//! records at the end of the warm-up and at the last step, whose `networks_per_second` is the
//! session's networks over its wall time so far (so the time at step `s` is `s x batch / rate`).
//! The reference: `step_ref.py` indexes the INRs `nfn export-inrs` wrote with our trainer's order
//! (the same batches in the same order) and times the same window itself. The PyTorch side runs
//! at the first batch and thread count only. CPU only: ours gets `--device cpu` on any machine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

use super::bench::{cpu_name, measure, set_allocator, write_table, Args, Side};
use super::bench_learn::{classifier_config, model_words, LoopSettings};
use super::nfn::Nfn;
use crate::util::{root, run as sh};

/// The models of this bench (`--configs`).
const MODELS: [&str; 2] = ["nft", "inr2array"];
/// Our Inr2Array pretraining config, whose model, data and optimizer settings the rows use.
const INR2ARRAY_CONFIG: &str = "xtask/configs/inr2array_fashion_12k.toml";
/// The seed of every run (initial weights, dropout, batch order).
const SEED: u64 = 0;

const REFERENCE: Side = Side::new("reference", true, false);
const REFERENCE_TUNED: Side = Side::new("reference, tuned allocator", true, true);
const OURS: Side = Side::new("ours", false, true);
const OURS_SYSTEM: Side = Side::new("ours, system allocator", false, false);

/// One row to run.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    model: String,
    batch: i64,
    threads: usize,
    side: Side,
}

/// The rows of `model`: at the first batch and thread count the reference under the system
/// allocator and the tuned one (unless `reference` is false), then ours under the tuned allocator
/// and the system one; then ours only, under both allocators, at each other batch (first thread
/// count) and at each other thread count (first batch).
fn plan(model: &str, batches: &[i64], threads: &[usize], reference: bool) -> Vec<Row> {
    let row = |batch: i64, threads: usize, side: Side| Row {
        model: model.to_string(),
        batch,
        threads,
        side,
    };
    let (Some(&b0), Some(&t0)) = (batches.first(), threads.first()) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    if reference {
        rows.extend([row(b0, t0, REFERENCE), row(b0, t0, REFERENCE_TUNED)]);
    }
    rows.extend([row(b0, t0, OURS), row(b0, t0, OURS_SYSTEM)]);
    for &b in batches.iter().skip(1).filter(|&&b| b != b0) {
        rows.extend([row(b, t0, OURS), row(b, t0, OURS_SYSTEM)]);
    }
    for &t in threads.iter().skip(1).filter(|&&t| t != t0) {
        rows.extend([row(b0, t, OURS), row(b0, t, OURS_SYSTEM)]);
    }
    rows
}

/// A row's outcome.
#[derive(Debug, Clone)]
struct Measured {
    row: Row,
    /// The allocator it ran under, as the table names it.
    allocator: String,
    /// Trainable parameters.
    params: i64,
    /// Wall time of the timed steps.
    seconds: f64,
    /// Timed steps.
    steps: u64,
}

impl Measured {
    fn s_per_step(&self) -> f64 {
        self.seconds / self.steps as f64
    }

    fn inrs_per_s(&self) -> f64 {
        self.row.batch as f64 * self.steps as f64 / self.seconds
    }
}

/// Greatest common divisor (`gcd(0, n) = n`).
fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Our runs' training-record interval: both the end of the warm-up and the last step get one.
fn log_every(warmup: u64, steps: u64) -> u64 {
    gcd(warmup, steps).max(1)
}

/// The wall time of steps `warmup + 1 ..= warmup + steps` of a run of batch `batch`, from the
/// training records of its `metrics.jsonl` text: the time at step `s` is `s x batch /
/// networks_per_second` (the session's networks over its wall time so far), 0 at step 0.
///
/// # Errors
/// A record missing at either end, an unparsable line, a rate that is not positive, or an empty
/// window.
fn window_seconds(metrics: &str, batch: i64, warmup: u64, steps: u64) -> Result<f64> {
    let elapsed_at = |step: u64| -> Result<f64> {
        if step == 0 {
            return Ok(0.0);
        }
        let mut found = None;
        for line in metrics.lines().filter(|l| !l.trim().is_empty()) {
            let r: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("a metrics record: {line}"))?;
            if r["split"] == "train" && r["step"].as_u64() == Some(step) {
                found = r["networks_per_second"].as_f64();
            }
        }
        let Some(rate) = found else {
            bail!("no training record with networks_per_second at step {step}");
        };
        ensure!(rate.is_finite() && rate > 0.0, "networks_per_second {rate} at step {step}");
        Ok(step as f64 * batch as f64 / rate)
    };
    let seconds = elapsed_at(warmup + steps)? - elapsed_at(warmup)?;
    ensure!(seconds > 0.0, "an empty timing window ({seconds} s)");
    Ok(seconds)
}

/// `args` with the NFT classifier as `--learn-model` (its width: `--learn-width`, default 64).
fn nft_args(args: &Args) -> Args {
    Args { learn_model: "nft".into(), ..args.clone() }
}

/// The budget of our runs at `batch`: warm-up plus timed steps, validation only after the last.
fn loop_settings(args: &Args, batch: i64) -> LoopSettings {
    let total = args.step_warmup + args.step_steps;
    LoopSettings {
        batch,
        steps: total,
        eval_every: total,
        log_every: log_every(args.step_warmup, args.step_steps),
        seed: SEED,
    }
}

/// Our Inr2Array config, [`INR2ARRAY_CONFIG`] with the INR set, batch and budget of this bench.
fn inr2array_config(args: &Args, name: &str, batch: i64) -> Result<String> {
    let path = root().join(INR2ARRAY_CONFIG);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path:?}"))?;
    let mut cfg: toml::Table = text.parse().with_context(|| format!("parsing {path:?}"))?;
    let l = loop_settings(args, batch);
    let int = |v: u64| toml::Value::Integer(v as i64);
    cfg.insert("name".into(), toml::Value::String(name.into()));
    let section = |cfg: &toml::Table, key: &str| -> Result<toml::Table> {
        cfg.get(key)
            .and_then(toml::Value::as_table)
            .cloned()
            .with_context(|| format!("{path:?} has no [{key}]"))
    };
    let mut data = section(&cfg, "data")?;
    data.insert("inrs".into(), toml::Value::String(args.learn_inrs.display().to_string()));
    data.insert("batch_size".into(), toml::Value::Integer(batch));
    cfg.insert("data".into(), toml::Value::Table(data));
    let mut trainer = section(&cfg, "trainer")?;
    for (key, value) in [
        ("steps", l.steps),
        ("eval_every", l.eval_every),
        ("log_every", l.log_every),
        ("seed", l.seed),
    ] {
        trainer.insert(key.into(), int(value));
    }
    cfg.insert("trainer".into(), toml::Value::Table(trainer));
    Ok(format!(
        "# Written by `cargo xtask bench step` from {INR2ARRAY_CONFIG}.\n{}",
        toml::to_string(&cfg)?
    ))
}

/// The optimizer settings of [`INR2ARRAY_CONFIG`]: learning rate, warm-up steps, weight decay.
fn inr2array_optim() -> Result<(f64, u64, f64)> {
    let path = root().join(INR2ARRAY_CONFIG);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path:?}"))?;
    let cfg: toml::Table = text.parse().with_context(|| format!("parsing {path:?}"))?;
    let optim = cfg
        .get("trainer")
        .and_then(|t| t.get("optim"))
        .with_context(|| format!("{path:?} has no trainer.optim"))?;
    let float =
        |key: &str| optim.get(key).and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)));
    let (Some(lr), Some(warmup), Some(decay)) = (
        float("lr"),
        optim.get("warmup_steps").and_then(toml::Value::as_integer),
        float("weight_decay"),
    ) else {
        bail!("{path:?}: trainer.optim lacks lr, warmup_steps or weight_decay");
    };
    Ok((lr, warmup.max(0) as u64, decay))
}

/// Our config of `model` at `batch`, named `name`.
fn our_config(args: &Args, model: &str, name: &str, batch: i64) -> Result<String> {
    match model {
        "nft" => Ok(classifier_config(&nft_args(args), name, &loop_settings(args, batch))),
        _ => inr2array_config(args, name, batch),
    }
}

/// The options of `step_ref.py` that give `model` our config's optimizer and width.
fn reference_options(args: &Args, model: &str) -> Result<Vec<String>> {
    Ok(match model {
        "nft" => {
            let (_, width) = super::bench_learn::model(&nft_args(args));
            vec![
                "--width".into(),
                width.to_string(),
                "--lr".into(),
                args.learn_lr.to_string(),
                "--lr-warmup".into(),
                args.learn_warmup.to_string(),
            ]
        }
        _ => {
            let (lr, warmup, decay) = inr2array_optim()?;
            vec![
                "--lr".into(),
                lr.to_string(),
                "--lr-warmup".into(),
                warmup.to_string(),
                "--weight-decay".into(),
                decay.to_string(),
            ]
        }
    })
}

/// Export the training INRs and our training order at `batch` for the PyTorch side (kept in `dir`
/// and reused); returns the export folder.
fn export(nfn: &Path, args: &Args, dir: &Path, batch: i64) -> Result<PathBuf> {
    let steps = args.step_warmup + args.step_steps;
    let out = dir.join(format!("export_b{batch}_{steps}steps"));
    // the order is written last: with it the export is complete
    if out.join("train.npz").exists() && out.join(format!("train_order_s{SEED}.npy")).exists() {
        return Ok(out);
    }
    let configs = dir.join("configs");
    std::fs::create_dir_all(&configs).with_context(|| format!("creating {configs:?}"))?;
    let cfg = configs.join("export.toml");
    let text = classifier_config(&nft_args(args), "step_export", &loop_settings(args, batch));
    std::fs::write(&cfg, text).with_context(|| format!("writing {cfg:?}"))?;
    eprintln!("xtask: exporting the INRs and our training order for the PyTorch side");
    sh(Command::new(nfn)
        .arg("export-inrs")
        .arg("--config")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .args(["--order-steps", &steps.to_string(), "--order-seeds", &SEED.to_string()]))?;
    Ok(out)
}

#[derive(Deserialize)]
struct RunParams {
    params: i64,
}

/// Run a row of ours: `nfn train` on a generated config in a fresh run folder under `dir`.
fn run_ours(nfn: &Path, args: &Args, row: &Row, dir: &Path) -> Result<Measured> {
    let alloc = if row.side.tuned { "tuned" } else { "system" };
    let name = format!("step_{}_b{}_t{}_{alloc}", row.model, row.batch, row.threads);
    let (configs, runs) = (dir.join("configs"), dir.join("runs"));
    std::fs::create_dir_all(&configs).with_context(|| format!("creating {configs:?}"))?;
    let cfg = configs.join(format!("{name}.toml"));
    std::fs::write(&cfg, our_config(args, &row.model, &name, row.batch)?)
        .with_context(|| format!("writing {cfg:?}"))?;
    let run_dir = runs.join(&name);
    if run_dir.exists() {
        // a run folder resumes: every row starts from step 0
        std::fs::remove_dir_all(&run_dir).with_context(|| format!("removing {run_dir:?}"))?;
    }
    let mut cmd = Command::new(nfn);
    cmd.args(["--threads", &row.threads.to_string(), "--device", "cpu", "train"])
        .arg(&cfg)
        .arg("--runs")
        .arg(&runs);
    let allocator = set_allocator(&mut cmd, row.side.tuned);
    let line = format!("{cmd:?}");
    let out = cmd.current_dir(root()).output().with_context(|| format!("starting {line}"))?;
    if !out.status.success() {
        bail!("{line} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let metrics_path = run_dir.join("metrics.jsonl");
    let metrics = std::fs::read_to_string(&metrics_path)
        .with_context(|| format!("reading {metrics_path:?}"))?;
    let seconds = window_seconds(&metrics, row.batch, args.step_warmup, args.step_steps)
        .with_context(|| format!("timing {metrics_path:?}"))?;
    let summary_path = run_dir.join("summary.json");
    let summary: RunParams = serde_json::from_str(
        &std::fs::read_to_string(&summary_path)
            .with_context(|| format!("reading {summary_path:?}"))?,
    )
    .with_context(|| format!("parsing {summary_path:?}"))?;
    // the checkpoints are of no further use
    let _ = std::fs::remove_dir_all(&run_dir);
    Ok(Measured {
        row: row.clone(),
        allocator: allocator.into(),
        params: summary.params,
        seconds,
        steps: args.step_steps,
    })
}

#[derive(Deserialize)]
struct RefRecord {
    seconds: f64,
    params: i64,
}

/// Run a row of the reference: `step_ref.py` on the exported INRs.
fn run_reference(args: &Args, row: &Row, export: &Path) -> Result<Measured> {
    let mut cmd = Command::new(crate::util::python());
    cmd.arg("xtask/bench/step_ref.py")
        .arg(export)
        .arg(&row.model)
        .args([row.batch.to_string(), args.step_warmup.to_string(), args.step_steps.to_string()])
        .args(["--threads", &row.threads.to_string(), "--seed", &SEED.to_string()])
        .args(reference_options(args, &row.model)?);
    let allocator = set_allocator(&mut cmd, row.side.tuned);
    let r: RefRecord = measure(&mut cmd)?;
    Ok(Measured {
        row: row.clone(),
        allocator: allocator.into(),
        params: r.params,
        seconds: r.seconds,
        steps: args.step_steps,
    })
}

/// The table's rows, in the order measured: each row's ratios to the reference under the system
/// allocator (`ratio`), to the reference under the same allocator at the same batch and thread
/// count (`like for like`, ours only), and to the first row of ours under the tuned allocator
/// (`vs ours`), all of the same model; `–` where there is none.
fn table_rows(measured: &[Measured]) -> String {
    let mut md = String::new();
    for m in measured {
        let r = &m.row;
        let same_model = |x: &&Measured| x.row.model == r.model;
        let base = measured.iter().filter(same_model).find(|x| x.row.side == REFERENCE);
        let same_alloc = measured.iter().filter(same_model).find(|x| {
            x.row.side.reference
                && x.row.side.tuned == r.side.tuned
                && x.row.batch == r.batch
                && x.row.threads == r.threads
        });
        let ours = measured.iter().filter(same_model).find(|x| x.row.side == OURS);
        let ratio = |other: Option<&Measured>, bold: bool| match other {
            Some(o) => {
                let x = format!("{:.2}x", m.inrs_per_s() / o.inrs_per_s());
                if bold {
                    format!("**{x}**")
                } else {
                    x
                }
            }
            None => "–".into(),
        };
        let like = if r.side.reference { "–".into() } else { ratio(same_alloc, true) };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {:.4} | {:.1} | {} | {like} | {} |",
            r.model,
            r.batch,
            r.threads,
            r.side.name,
            m.allocator,
            m.params,
            m.s_per_step(),
            m.inrs_per_s(),
            ratio(base, false),
            ratio(ours, false),
        );
    }
    md
}

/// The page.
fn page(
    args: &Args,
    set: &str,
    models: &[String],
    (b0, t0): (i64, usize),
    measured: &[Measured],
) -> Result<String> {
    let mut md = format!(
        "# Training-step benchmark: nfn-rs vs the PyTorch reference\n\n\
         Generated by `cargo xtask bench step`; do not edit by hand. Machine: {cpu} ({cpus} logical \
         CPUs), on the CPU. One whole optimizer step, data loading included: the batch taken from \
         the training split in memory, the forward, the loss, the backward, the optimizer's step \
         and the learning-rate schedule. One process per row trains {w} untimed warm-up steps, then \
         {n} timed steps; **s / step** = the wall time of the timed steps over {n} (no validation \
         or checkpoint inside it; ours writes a training record every {log} steps) and **INR/s** = batch x {n} over that time. Both sides train on \
         the INR set `{set}` (seed {SEED}); at batch {b0} in **the same batches in the same order** \
         (our trainer's, exported by `nfn export-inrs`; the PyTorch loop indexes the exported \
         arrays as `learn_ref.py` does). Ours: `nfn train` (our trainer, data loader and AdamW, \
         which also computes the gradient norm it logs) on a generated config, timed from its \
         `metrics.jsonl`; the reference: `xtask/bench/step_ref.py`, PyTorch's `torch.optim` \
         (its default CPU implementation) with `LambdaLR`.\n\n",
        cpu = cpu_name(),
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
        w = args.step_warmup,
        n = args.step_steps,
        log = log_every(args.step_warmup, args.step_steps),
    );
    if models.iter().any(|m| m == "nft") {
        let _ = writeln!(
            md,
            "- **nft**: {} (width {}); cross-entropy, Adam lr {:e} after {} linear warm-up steps, \
             then constant.",
            model_words(&nft_args(args)),
            super::bench_learn::model(&nft_args(args)).1,
            args.learn_lr,
            args.learn_warmup,
        );
    }
    if models.iter().any(|m| m == "inr2array") {
        let (lr, warmup, decay) = inr2array_optim()?;
        let _ = writeln!(
            md,
            "- **inr2array**: the Inr2Array autoencoder of `{INR2ARRAY_CONFIG}` (encoder: Gaussian \
             Fourier 32 at scale 3, learned positional embedding, 2 pre-LN NFT blocks of 64 \
             channels with 4 heads and feed-forward x4, the Perceiver read-out to 16 latents of \
             width 64; the `sitzmann` decoder, one MLP 64-64-64 per SIREN tensor; each latent's \
             SIREN drawn on its own cell of the 4 x 4 grid over the 28 x 28 image; the MSE against \
             the input SIRENs' renderings, rendered every step); AdamW lr {lr:e} with weight decay \
             {decay} after {warmup} linear warm-up steps, then constant. The reference releases no \
             model of this size, so its side is this shape rebuilt in PyTorch: the encoder from the \
             package's layers (`layers_ref.Encoder`), our decoder, rendering and loss written from \
             our Rust code (`xtask/bench/step_ref.py`)."
        );
    }
    let _ = writeln!(
        md,
        "\nThe parameter counts of the two sides are checked equal. **ratio** = this row's INR/s \
         over the reference's under the system allocator (the reference as it ships; batch {b0}, \
         {t0} threads). **like for like** = this row's INR/s over the reference's under the same \
         allocator at the same batch and threads: the headline ratio. **vs ours** = this row's \
         INR/s over ours under the tuned allocator at batch {b0} and {t0} threads: what batch \
         size, threads and allocator do to our training. `ours` runs under the allocator the \
         nfn-rs binaries choose for themselves (`nfn_weightspace::runtime`: jemalloc with purging \
         off where installed, else glibc without mmap or trimming); `tuned allocator` puts the \
         reference under the same.\n\n\
         | model | batch | threads | side | allocator | params | s / step | INR/s | ratio | like for like | vs ours |\n\
         |---|---|---|---|---|---|---|---|---|---|---|"
    );
    md.push_str(&table_rows(measured));
    Ok(md)
}

/// Run the bench and write the page.
pub fn run(args: &Args) -> Result<()> {
    let models: Vec<String> =
        args.configs.clone().unwrap_or_else(|| MODELS.iter().map(|s| s.to_string()).collect());
    if let Some(m) = models.iter().find(|m| !MODELS.contains(&m.as_str())) {
        bail!("bench step: unknown model {m:?}; available: {}", MODELS.join(", "));
    }
    let batches = args.batches.clone().unwrap_or_else(|| vec![32, 16, 64, 128]);
    ensure!(
        !batches.is_empty() && batches.iter().all(|&b| b > 0),
        "bench step: --batches must be positive"
    );
    ensure!(
        !args.step_threads.is_empty() && args.step_threads.iter().all(|&t| t > 0),
        "bench step: --step-threads must be positive"
    );
    ensure!(args.step_steps > 0, "bench step: --step-steps must be positive");
    let reference = !args.no_reference;
    super::setup::run(&super::setup::Args { reference })?;
    let set = root().join(&args.learn_inrs);
    if !set.join("manifest.json").exists() {
        bail!(
            "no INR set at {} (make one with `cargo xtask fit-inrs`, or pass --learn-inrs)",
            set.display()
        );
    }
    let set_name = args.learn_inrs.file_name().map_or("inrs".into(), |n| n.to_string_lossy());
    let nfn = Nfn::prepare()?.build()?;
    let dir = root().join("data/bench_step").join(&*set_name);
    let exported = if reference { Some(export(&nfn, args, &dir, batches[0])?) } else { None };
    let mut measured: Vec<Measured> = Vec::new();
    for model in &models {
        for row in plan(model, &batches, &args.step_threads, reference) {
            let m = match &exported {
                Some(export) if row.side.reference => run_reference(args, &row, export)?,
                _ => run_ours(&nfn, args, &row, &dir)?,
            };
            eprintln!(
                "xtask: {model}, batch {}, {} threads, {} ({}): {:.4} s / step, {:.1} INR/s",
                row.batch,
                row.threads,
                row.side.name,
                m.allocator,
                m.s_per_step(),
                m.inrs_per_s()
            );
            measured.push(m);
        }
        let count = |reference: bool| {
            measured.iter().find(|m| m.row.model == *model && m.row.side.reference == reference)
        };
        if let (Some(ours), Some(theirs)) = (count(false), count(true)) {
            if ours.params != theirs.params {
                bail!(
                    "bench step: the two sides built different {model} models: ours has {} \
                     parameters, the reference's {}",
                    ours.params,
                    theirs.params
                );
            }
            eprintln!(
                "xtask: {model}: {} parameters on our side, {} on the reference's",
                ours.params, theirs.params
            );
        }
    }
    let md = page(args, &set_name, &models, (batches[0], args.step_threads[0]), &measured)?;
    print!("{md}");
    write_table(args, "step.md", &md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::bench::parse_args;

    fn args(extra: &[&str]) -> Args {
        parse_args(&[&["step"], extra].concat()).unwrap()
    }

    #[test]
    fn the_plan_runs_both_sides_first_then_our_sweep() {
        let rows = plan("nft", &[32, 16, 64], &[2, 1], true);
        let sides: Vec<_> = rows.iter().map(|r| (r.batch, r.threads, r.side.name)).collect();
        assert_eq!(
            sides,
            [
                (32, 2, "reference"),
                (32, 2, "reference, tuned allocator"),
                (32, 2, "ours"),
                (32, 2, "ours, system allocator"),
                (16, 2, "ours"),
                (16, 2, "ours, system allocator"),
                (64, 2, "ours"),
                (64, 2, "ours, system allocator"),
                (32, 1, "ours"),
                (32, 1, "ours, system allocator"),
            ]
        );
        assert!(rows.iter().all(|r| r.model == "nft"));
        // no reference: ours only; a repeated first batch or thread count adds nothing
        let rows = plan("inr2array", &[8, 8], &[2, 2], false);
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| !r.side.reference && r.batch == 8 && r.threads == 2));
        assert!(plan("nft", &[], &[2], true).is_empty());
    }

    fn train(step: u64, rate: f64) -> String {
        format!(
            r#"{{"step": {step}, "split": "train", "loss": 1.0, "lr": 0.001, "grad_norm": 1.0, "networks_per_second": {rate}}}"#
        )
    }

    #[test]
    fn the_window_excludes_the_warm_up_and_the_validation() {
        // batch 4: 10 s for the first 5 steps (2 INR/s), 30 s at step 15 (2 INR/s), a validation
        // record after the last step changes nothing
        let metrics = [
            train(5, 2.0),
            train(10, 40.0 / 20.0),
            train(15, 60.0 / 30.0),
            r#"{"step": 15, "split": "val", "count": 8, "loss": 0.5, "seconds": 99.0}"#.into(),
        ]
        .join("\n");
        let s = window_seconds(&metrics, 4, 5, 10).unwrap();
        assert!((s - 20.0).abs() < 1e-9, "{s}");
        // no warm-up: from the start of the session
        assert!((window_seconds(&metrics, 4, 0, 15).unwrap() - 30.0).abs() < 1e-9);
        // a faster tail: 10 s for 5 steps, then 10 more steps in 5 s
        let metrics = [train(5, 2.0), train(15, 60.0 / 15.0)].join("\n");
        assert!((window_seconds(&metrics, 4, 5, 10).unwrap() - 5.0).abs() < 1e-9);
        // a missing end, a bad rate
        assert!(window_seconds(&metrics, 4, 5, 20).is_err());
        assert!(window_seconds(&metrics, 4, 3, 12).is_err());
        assert!(window_seconds(&train(5, 0.0), 4, 0, 5).is_err());
        assert!(window_seconds("not json", 4, 0, 5).is_err());
    }

    #[test]
    fn log_records_fall_at_both_ends_of_the_window() {
        for (w, n) in [(10, 100), (0, 12), (3, 12), (7, 5), (2, 10)] {
            let every = log_every(w, n);
            assert_eq!(w % every, 0, "{w} {n}");
            assert_eq!((w + n) % every, 0, "{w} {n}");
        }
        assert_eq!(log_every(10, 100), 10);
        assert_eq!(log_every(0, 12), 12);
    }

    fn measured(model: &str, batch: i64, threads: usize, side: Side, seconds: f64) -> Measured {
        Measured {
            row: Row { model: model.into(), batch, threads, side },
            allocator: if side.tuned { "jemalloc" } else { "system" }.into(),
            params: 7,
            seconds,
            steps: 10,
        }
    }

    #[test]
    fn ratios_are_to_the_shipped_reference_the_same_allocator_and_our_first_row() {
        // batch 32, 10 steps: 320 INRs over the seconds
        let rows = [
            measured("nft", 32, 2, REFERENCE, 4.0),       // 80 INR/s
            measured("nft", 32, 2, REFERENCE_TUNED, 2.0), // 160
            measured("nft", 32, 2, OURS, 1.0),            // 320
            measured("nft", 32, 2, OURS_SYSTEM, 2.0),     // 160
            measured("nft", 64, 2, OURS, 1.0),            // 640
            measured("nft", 32, 1, OURS_SYSTEM, 5.0),     // 64
        ];
        let md = table_rows(&rows);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "| nft | 32 | 2 | reference | system | 7 | 0.4000 | 80.0 | 1.00x | – | 0.25x |"
        );
        assert_eq!(lines[1], "| nft | 32 | 2 | reference, tuned allocator | jemalloc | 7 | 0.2000 | 160.0 | 2.00x | – | 0.50x |");
        assert_eq!(
            lines[2],
            "| nft | 32 | 2 | ours | jemalloc | 7 | 0.1000 | 320.0 | 4.00x | **2.00x** | 1.00x |"
        );
        assert_eq!(lines[3], "| nft | 32 | 2 | ours, system allocator | system | 7 | 0.2000 | 160.0 | 2.00x | **2.00x** | 0.50x |");
        // the sweep: no like for like
        assert_eq!(
            lines[4],
            "| nft | 64 | 2 | ours | jemalloc | 7 | 0.1000 | 640.0 | 8.00x | – | 2.00x |"
        );
        assert_eq!(lines[5], "| nft | 32 | 1 | ours, system allocator | system | 7 | 0.5000 | 64.0 | 0.80x | – | 0.20x |");
        // no reference rows: dashes; another model's rows are not compared
        let md = table_rows(&[measured("inr2array", 16, 2, OURS, 2.0), rows[0].clone()]);
        assert!(
            md.starts_with(
                "| inr2array | 16 | 2 | ours | jemalloc | 7 | 0.2000 | 80.0 | – | – | 1.00x |"
            ),
            "{md}"
        );
    }

    #[test]
    fn our_configs_have_the_bench_budget() {
        let a = args(&["--step-steps", "12", "--step-warmup", "3", "--learn-inrs", "data/inrs/x"]);
        let cfg: toml::Table = our_config(&a, "nft", "n", 16).unwrap().parse().unwrap();
        assert_eq!(cfg["model"]["kind"].as_str(), Some("nft"));
        assert_eq!(cfg["model"]["channels"].as_integer(), Some(64));
        assert_eq!(cfg["data"]["batch_size"].as_integer(), Some(16));
        assert_eq!(cfg["data"]["inrs"].as_str(), Some("data/inrs/x"));
        let t = &cfg["trainer"];
        assert_eq!(
            [&t["steps"], &t["eval_every"], &t["log_every"]].map(|v| v.as_integer()),
            [Some(15), Some(15), Some(3)]
        );
        let cfg: toml::Table = our_config(&a, "inr2array", "m", 64).unwrap().parse().unwrap();
        assert_eq!(cfg["name"].as_str(), Some("m"));
        assert_eq!(cfg["task"].as_str(), Some("inr2array_pretrain"));
        assert_eq!(cfg["data"]["batch_size"].as_integer(), Some(64));
        assert_eq!(cfg["data"]["inrs"].as_str(), Some("data/inrs/x"));
        assert_eq!(cfg["model"]["encoder"]["channels"].as_integer(), Some(64));
        assert_eq!(cfg["model"]["decoder"]["dec_type"].as_str(), Some("sitzmann"));
        let t = &cfg["trainer"];
        assert_eq!(
            [&t["steps"], &t["eval_every"], &t["log_every"], &t["seed"]].map(|v| v.as_integer()),
            [Some(15), Some(15), Some(3), Some(0)]
        );
        assert_eq!(t["optim"]["weight_decay"].as_float(), Some(0.01));
        let (lr, warmup, decay) = inr2array_optim().unwrap();
        assert_eq!((lr, warmup, decay), (1e-3, 100, 0.01));
        let opts = reference_options(&a, "inr2array").unwrap();
        assert_eq!(opts, ["--lr", "0.001", "--lr-warmup", "100", "--weight-decay", "0.01"]);
        assert_eq!(reference_options(&a, "nft").unwrap()[..2], ["--width", "64"]);
    }
}
