//! `cargo xtask bench learn`: does our training learn as fast per step as the reference's? The
//! reference's NFN-HNP INR classifier (`xtask/bench/learn_ref.py`: the package's layers in
//! classify_siren's loop) and ours (`nfn train` on a generated config of the same model) train on
//! the same INRs, the same split and the same batches in the same order (`nfn export-inrs` writes
//! our training order for the PyTorch side), for the same number of steps, with several seeds
//! each. Both validate every `--learn-eval-every` steps and test the best checkpoint. Written to
//! `docs/bench/learn.md` (`--learn-model nft`: `learn_nft.md`) with the validation curves and the
//! training loss as PNGs beside it (`nfn curves`). Resumable: finished runs of either side are kept in `data/learn/<tag>/` and not
//! run again.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::bench::{cpu_name, measure, tuned_malloc_env, Args};
use super::nfn::Nfn;
use crate::util::root;

/// One side's outcome for one seed.
#[derive(Debug, Clone)]
struct Outcome {
    best_val: f64,
    best_step: u64,
    test: f64,
    final_val: f64,
    final_val_loss: f64,
    seconds: f64,
    /// `(step, val accuracy)`.
    curve: Vec<(u64, f64)>,
}

/// The `(step, accuracy, loss)` of the val records of a metrics file (the last record of a step).
fn val_records(path: &Path) -> Result<Vec<(u64, f64, f64)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    let mut out: Vec<(u64, f64, f64)> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let r: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{path:?}: {line}"))?;
        if r["split"] != "val" {
            continue;
        }
        let (Some(step), Some(acc), Some(loss)) =
            (r["step"].as_u64(), r["accuracy"].as_f64(), r["loss"].as_f64())
        else {
            bail!("{path:?}: a val record without step, accuracy or loss: {line}");
        };
        out.retain(|p| p.0 != step);
        out.push((step, acc, loss));
    }
    out.sort_by_key(|p| p.0);
    Ok(out)
}

fn outcome(
    metrics: &Path,
    best_val: f64,
    best_step: u64,
    test: f64,
    seconds: f64,
) -> Result<Outcome> {
    let val = val_records(metrics)?;
    let Some(&(_, final_val, final_val_loss)) = val.last() else {
        bail!("{metrics:?} holds no validation record");
    };
    let curve = val.iter().map(|&(s, a, _)| (s, a)).collect();
    Ok(Outcome { best_val, best_step, test, final_val, final_val_loss, seconds, curve })
}

#[derive(Deserialize)]
struct RunSummary {
    params: i64,
    test: Vec<MetricValue>,
    selection: Selection,
    budget: Budget,
}
#[derive(Deserialize)]
struct MetricValue {
    metric: String,
    value: f64,
}
#[derive(Deserialize)]
struct Selection {
    value: f64,
    step: u64,
}
#[derive(Deserialize)]
struct Budget {
    train_seconds: f64,
}

#[derive(Deserialize)]
struct RefSummary {
    best_step: u64,
    best_val_accuracy: f64,
    test_accuracy: f64,
    train_seconds: f64,
    params: i64,
}

/// The model of `--learn-model` and its width.
pub(super) fn model(args: &Args) -> (&str, i64) {
    let nft = args.learn_model == "nft";
    let width = args.learn_width.unwrap_or(if nft { 64 } else { 128 });
    (if nft { "nft" } else { "hnp" }, width)
}

/// The head initialisation of each side for `--learn-head-init`: ours (`MlpHeadConfig::init`,
/// `kaiming` being our default) and the reference's (`learn_ref.py --head-init`: `tch` draws as
/// LibTorch does), and the suffix of the bench's folder.
fn head_inits(args: &Args) -> (&'static str, &'static str, &'static str) {
    match args.learn_head_init.as_str() {
        "kaiming" => ("kaiming", "tch", "_kaiming-head"),
        "torch" => ("torch", "torch", "_torch-head"),
        _ => ("kaiming", "torch", ""),
    }
}

/// The `[model]` section of our side: the shape `learn_ref.py` builds.
fn model_section(args: &Args) -> String {
    // our default is not written, so that configs of runs made before the option stay the same
    let init = match head_inits(args).0 {
        "kaiming" => String::new(),
        other => format!(", init = \"{other}\""),
    };
    match model(args) {
        ("nft", w) => format!(
            "kind = \"nft\"\ninput = {{ fourier = {{ scale = 3.0 }} }}\nchannels = {w}\nnum_blocks = 2\n\
             num_heads = 4\nff_factor = 2\ndropout = 0.1\n\
             readout = {{ cross_attention = {{ num_latents = 4, latent_dim = {w} }} }}\n\
             head = {{ hidden = [256], dropout = 0.1{init} }}\n"
        ),
        (_, w) => format!(
            "kind = \"nfn\"\nlayer = \"hnp\"\nhidden = [{w}, {w}, {w}]\n\
             fourier = {{ in_channels = 1, mapping_size = 128, scale = 3.0 }}\nfeature_dropout = 0.1\n\
             pool = \"hnp\"\nhead = {{ hidden = [1000, 1000], dropout = 0.1{init} }}\n"
        ),
    }
}

/// The head initialisation in words, for the page.
fn head_words(args: &Args) -> &'static str {
    match args.learn_head_init.as_str() {
        "kaiming" => {
            "The MLP head's weights are drawn as LibTorch's `nn::linear` does on both sides \
             (Kaiming uniform, bound sqrt(6 / fan_in); the PyTorch side re-draws them with \
             `--head-init tch`)."
        }
        "torch" => {
            "The MLP head's weights are drawn as PyTorch's `nn.Linear` does on both sides \
             (bound 1 / sqrt(fan_in); ours with `head.init = \"torch\"`)."
        }
        _ => {
            "Each side draws the MLP head's weights as its library does by default: ours as \
             LibTorch's `nn::linear` (Kaiming uniform, bound sqrt(6 / fan_in)), the PyTorch side \
             as `nn.Linear` (bound 1 / sqrt(fan_in), sqrt(6) times smaller); every other \
             parameter is drawn from the same distribution on both sides."
        }
    }
}

/// The model in words, for the page.
pub(super) fn model_words(args: &Args) -> String {
    match model(args) {
        ("nft", w) => format!(
            "our NFT INR classifier (Gaussian Fourier {} at scale 3, learned positional embedding, 2 \
             pre-LN NFT blocks of {w} channels with 4 heads, feed-forward x2 and dropout 0.1, the \
             Perceiver read-out to 4 latents of width {w}, their mean, MLP 256-10 with dropout 0.1); \
             the reference releases no NFT model, so its side is this shape rebuilt from the \
             package's layers (`NPAttention`, `SimpleLayerNorm`, `Pointwise`, \
             `LearnedPosEmbedding`) in `xtask/bench/learn_ref.py`",
            w / 2
        ),
        (_, w) => format!(
            "the reference's NFN-HNP INR classifier (Gaussian Fourier 128 at scale 3, 3 x HNP {w} \
             channels with ReLU and channel dropout 0.1, HNP pool, MLP 1000-1000-10 with dropout \
             0.1), composed from the `nfn==0.1.2` package's layers in `xtask/bench/learn_ref.py`"
        ),
    }
}

/// The training loop of a generated classification config.
pub(super) struct LoopSettings {
    /// Training batch size.
    pub batch: i64,
    /// Optimizer steps.
    pub steps: u64,
    /// Validate every this many steps.
    pub eval_every: u64,
    /// Training-loss records every this many steps.
    pub log_every: u64,
    /// The run's seed (initial weights, dropout, batch order).
    pub seed: u64,
}

/// The config of our side: the model of [`model_section`] and classify_siren's loop with this
/// bench's budget.
fn config(args: &Args, name: &str, seed: u64) -> String {
    let settings = LoopSettings {
        batch: 32,
        steps: args.learn_steps,
        eval_every: args.learn_eval_every,
        log_every: log_every(args),
        seed,
    };
    classifier_config(args, name, &settings)
}

/// A classification config of the model of [`model_section`] (`--learn-model`, `--learn-width`,
/// `--learn-head-init`) on `--learn-inrs`, trained in classify_siren's loop (Adam at `--learn-lr`
/// after `--learn-warmup` linear warm-up steps, then constant; no weight decay, no clipping).
pub(super) fn classifier_config(args: &Args, name: &str, l: &LoopSettings) -> String {
    format!(
        "# Written by `cargo xtask bench {what}`: the model learn_ref.py builds, classify_siren's loop.\n\
         name = \"{name}\"\n\n[data]\ninrs = \"{inrs}\"\nbatch_size = {batch}\neval_batch_size = 256\n\n\
         [model]\n{model}\n\
         [trainer]\nsteps = {steps}\neval_every = {every}\nlog_every = {log}\nseed = {seed}\n\
         objective = \"cross_entropy\"\n\
         optim = {{ lr = {lr:e}, weight_decay = 0.0, warmup_steps = {warmup}, schedule = \"constant\" }}\n",
        what = args.what,
        inrs = args.learn_inrs.display(),
        batch = l.batch,
        model = model_section(args),
        steps = l.steps,
        every = l.eval_every,
        log = l.log_every,
        seed = l.seed,
        lr = args.learn_lr,
        warmup = args.learn_warmup,
    )
}

/// Training-loss records every this many steps, on both sides.
fn log_every(args: &Args) -> u64 {
    args.learn_eval_every.min(50)
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn range(xs: &[f64]) -> (f64, f64) {
    xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)))
}

/// Run the comparison and write the page and the plots.
pub fn run(args: &Args) -> Result<()> {
    super::setup::run(&super::setup::Args { reference: true })?;
    let set = root().join(&args.learn_inrs);
    if !set.join("manifest.json").exists() {
        bail!(
            "no INR set at {} (make one with `cargo xtask fit-inrs`, or pass --learn-inrs)",
            set.display()
        );
    }
    let set_name = args.learn_inrs.file_name().map_or("inrs".into(), |n| n.to_string_lossy());
    let (kind, width) = model(args);
    // the folder of this comparison: the same name for every head initialisation but its suffix
    let base = format!("{set_name}_{kind}{width}_{}steps", args.learn_steps);
    let tag = format!("{base}{}", head_inits(args).2);
    let dir = root().join("data/learn").join(&tag);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir:?}"))?;
    let seeds = &args.learn_seeds;
    let nfn = Nfn::prepare()?;
    let name = |seed: u64| format!("learn_{tag}_s{seed}");
    for &seed in seeds {
        std::fs::write(dir.join(format!("ours_s{seed}.toml")), config(args, &name(seed), seed))?;
    }
    let export = dir.join("export");
    let seed_list = seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let orders_ok = seeds.iter().all(|s| export.join(format!("train_order_s{s}.npy")).exists());
    if !orders_ok {
        eprintln!("xtask: exporting the INRs and the training orders for the PyTorch side");
        nfn.run(&[
            "export-inrs".into(),
            "--config".into(),
            dir.join(format!("ours_s{}.toml", seeds[0])).display().to_string(),
            "--out".into(),
            export.display().to_string(),
            "--order-steps".into(),
            args.learn_steps.to_string(),
            "--order-seeds".into(),
            seed_list,
        ])?;
    }
    let runs = dir.join("runs");
    for (i, &seed) in seeds.iter().enumerate() {
        eprintln!(
            "xtask: seed {seed} ({} of {}): ours, {} steps",
            i + 1,
            seeds.len(),
            args.learn_steps
        );
        nfn.run(&[
            "train".into(),
            dir.join(format!("ours_s{seed}.toml")).display().to_string(),
            "--runs".into(),
            runs.display().to_string(),
        ])?;
        let ref_summary = dir.join(format!("ref_s{seed}.json"));
        if !ref_summary.exists() {
            eprintln!("xtask: seed {seed}: the reference, {} steps", args.learn_steps);
            let (_, env) = tuned_malloc_env();
            let mut cmd = Command::new(crate::util::python());
            cmd.arg("xtask/bench/learn_ref.py")
                .arg(&export)
                .args([
                    seed.to_string(),
                    args.learn_steps.to_string(),
                    args.learn_eval_every.to_string(),
                ])
                .arg(dir.join(format!("ref_s{seed}.jsonl")))
                .args(["--model", kind, "--width", &width.to_string()])
                .args(["--head-init", head_inits(args).1])
                .args(["--log-every", &log_every(args).to_string()])
                .args([
                    "--lr",
                    &args.learn_lr.to_string(),
                    "--warmup",
                    &args.learn_warmup.to_string(),
                ])
                .envs(env);
            write_via_tmp(&ref_summary, &measure::<serde_json::Value>(&mut cmd)?.to_string())?;
        }
    }
    let Some((ours, reference, params)) = finished_outcomes(&dir, &tag, seeds)? else {
        bail!("{dir:?}: a run is missing after training every seed");
    };
    // the same comparison under the other head initialisations, where a bench folder holds it
    let mut others = Vec::new();
    for mode in ["native", "kaiming", "torch"].into_iter().filter(|m| *m != args.learn_head_init) {
        let other = Args { learn_head_init: mode.into(), ..args.clone() };
        let other_tag = format!("{base}{}", head_inits(&other).2);
        let other_dir = root().join("data/learn").join(&other_tag);
        if let Some((o, r, _)) = finished_outcomes(&other_dir, &other_tag, seeds)? {
            others.push((mode, o, r));
        }
    }

    let default_page =
        if kind == "nft" { "docs/bench/learn_nft.md" } else { "docs/bench/learn.md" };
    let page_path = root().join(args.out.as_deref().unwrap_or(Path::new(default_page)));
    let stem = page_path.file_stem().map_or("learn".into(), |s| s.to_string_lossy().into_owned());
    let out_dir = page_path.parent().map_or_else(|| root().join("docs/bench"), Path::to_path_buf);
    let series = |metric: &str| -> Vec<String> {
        let mut v = Vec::new();
        for &seed in seeds {
            v.push("--series".into());
            v.push(format!("ours={}", runs.join(name(seed)).display()));
        }
        for &seed in seeds {
            v.push("--series".into());
            v.push(format!("reference={}", dir.join(format!("ref_s{seed}.jsonl")).display()));
        }
        v.extend(["--metric".into(), metric.into()]);
        v
    };
    let pngs = [
        ("val:accuracy", "1", "validation accuracy (%), every seed", "val_accuracy"),
        ("train:loss", "4", "training loss (mean of 4 records), every seed", "train_loss"),
    ];
    for (metric, smooth, title, what) in pngs {
        let file = format!("{stem}_{what}.png");
        let mut a: Vec<String> = vec!["curves".into()];
        a.extend(series(metric));
        a.extend(["--smooth".into(), smooth.into(), "--title".into(), title.into()]);
        a.extend(["--out".into(), out_dir.join(&file).display().to_string()]);
        nfn.run(&a)?;
    }
    let md = page(args, &set_name, &stem, params, &ours, &reference, &others);
    print!("{md}");
    std::fs::write(&page_path, md).with_context(|| format!("writing {page_path:?}"))?;
    eprintln!("xtask: wrote {}", page_path.display());
    Ok(())
}

/// Our outcomes, the reference's (one per seed) and the model's parameter count.
type Sides = (Vec<Outcome>, Vec<Outcome>, i64);

/// Both sides' outcomes for every seed of the bench folder `dir` (named `tag`) and the model's
/// parameter count, or `None` if a run of either side is not finished.
///
/// # Errors
/// An unreadable summary or metrics file, or sides that built models of different sizes.
fn finished_outcomes(dir: &Path, tag: &str, seeds: &[u64]) -> Result<Option<Sides>> {
    let (mut ours, mut reference, mut params) = (Vec::new(), Vec::new(), 0);
    for &seed in seeds {
        let run_dir = dir.join("runs").join(format!("learn_{tag}_s{seed}"));
        let (ref_summary, ref_metrics) =
            (dir.join(format!("ref_s{seed}.json")), dir.join(format!("ref_s{seed}.jsonl")));
        if !run_dir.join("summary.json").exists() || !ref_summary.exists() {
            return Ok(None);
        }
        let summary: RunSummary = serde_json::from_str(
            &std::fs::read_to_string(run_dir.join("summary.json"))
                .with_context(|| format!("reading {run_dir:?}/summary.json"))?,
        )?;
        let test =
            summary.test.iter().find(|m| m.metric == "accuracy").map_or(f64::NAN, |m| m.value);
        ours.push(outcome(
            &run_dir.join("metrics.jsonl"),
            summary.selection.value,
            summary.selection.step,
            test,
            summary.budget.train_seconds,
        )?);
        let r: RefSummary = serde_json::from_str(&std::fs::read_to_string(&ref_summary)?)
            .with_context(|| format!("parsing {ref_summary:?}"))?;
        if r.params != summary.params {
            bail!(
                "{dir:?}: the two sides built different models: ours has {} parameters, the \
                 reference's {}",
                summary.params,
                r.params
            );
        }
        params = summary.params;
        reference.push(outcome(
            &ref_metrics,
            r.best_val_accuracy,
            r.best_step,
            r.test_accuracy,
            r.train_seconds,
        )?);
    }
    Ok(Some((ours, reference, params)))
}

/// Write `text` to `path` through a temporary file (a killed bench leaves no half summary).
fn write_via_tmp(path: &Path, text: &str) -> Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {tmp:?}"))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {tmp:?}"))
}

fn page(
    args: &Args,
    set: &str,
    stem: &str,
    params: i64,
    ours: &[Outcome],
    reference: &[Outcome],
    others: &[(&str, Vec<Outcome>, Vec<Outcome>)],
) -> String {
    let seeds = &args.learn_seeds;
    let mut md = format!(
        "# Learning per step: our training loop against the reference's\n\n\
         Generated by `cargo xtask bench learn`; do not edit by hand. Machine: {cpu}, 2 threads on \
         both sides. The model: {words} ({params} parameters on both sides, checked). {head} The PyTorch \
         side trains it in classify_siren's loop, ours with `nfn train` (our layers, trainer and \
         data loader), on \
         the INR set `{set}`: the same train / val / test INRs, **the same batches in the same \
         order** (our trainer's order, exported by `nfn export-inrs`), batch 32, Adam lr \
         {lr:e} with {warmup} linear warm-up steps then constant (classify_siren's schedule \
         shape; its 1e-4 and 10k warm-up do not move in a CPU budget), no weight decay, no \
         clipping, {steps} steps, validation every {every} steps, test accuracy of the best \
         validation checkpoint. Seeds {seed_list} on each side: a seed draws the initial weights \
         and the dropout masks (different generators on the two sides) and the batch order \
         (shared). Curves: `{stem}_val_accuracy.png`, `{stem}_train_loss.png`. Seconds are wall \
         time of the training loop (validations included, the final test not), each side under \
         the tuned allocator.\n\n\
         | side | seed | best val acc % (step) | test acc % of best | final val acc % | final val loss | s / step |\n\
         |---|---|---|---|---|---|---|\n",
        cpu = cpu_name(),
        words = model_words(args),
        head = head_words(args),
        params = params,
        lr = args.learn_lr,
        warmup = args.learn_warmup,
        steps = args.learn_steps,
        every = args.learn_eval_every,
        seed_list = seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
    );
    for (side, outs) in [("ours", ours), ("reference", reference)] {
        for (seed, o) in seeds.iter().zip(outs) {
            let _ = writeln!(
                md,
                "| {side} | {seed} | {:.2} ({}) | {:.2} | {:.2} | {:.4} | {:.3} |",
                o.best_val,
                o.best_step,
                o.test,
                o.final_val,
                o.final_val_loss,
                o.seconds / args.learn_steps as f64
            );
        }
    }
    let col = |outs: &[Outcome], f: fn(&Outcome) -> f64| outs.iter().map(f).collect::<Vec<_>>();
    let _ = writeln!(
        md,
        "\n| side | test acc % mean ± sd | range | best val acc % mean ± sd | final val loss mean ± sd | s / step mean |\n|---|---|---|---|---|---|"
    );
    for (side, outs) in [("ours", ours), ("reference", reference)] {
        let (t, ts) = mean_sd(&col(outs, |o| o.test));
        let (lo, hi) = range(&col(outs, |o| o.test));
        let (v, vs) = mean_sd(&col(outs, |o| o.best_val));
        let (l, ls) = mean_sd(&col(outs, |o| o.final_val_loss));
        let (s, _) = mean_sd(&col(outs, |o| o.seconds));
        let _ = writeln!(
            md,
            "| {side} | {t:.2} ± {ts:.2} | {lo:.2}–{hi:.2} | {v:.2} ± {vs:.2} | {l:.4} ± {ls:.4} | {:.3} |",
            s / args.learn_steps as f64
        );
    }
    // the curves in numbers: mean and range over seeds at every validation step
    let _ = writeln!(
        md,
        "\n| step | ours val acc % mean (range) | reference val acc % mean (range) | our mean vs the reference's range |\n|---|---|---|---|"
    );
    let steps: Vec<u64> =
        ours.first().map(|o| o.curve.iter().map(|p| p.0).collect()).unwrap_or_default();
    let (mut inside, mut above, mut below) = (0, 0, 0);
    for step in steps {
        let at = |outs: &[Outcome]| -> Vec<f64> {
            outs.iter().filter_map(|o| o.curve.iter().find(|p| p.0 == step).map(|p| p.1)).collect()
        };
        let (a, b) = (at(ours), at(reference));
        if a.len() != ours.len() || b.len() != reference.len() {
            continue;
        }
        let (am, (alo, ahi)) = (mean_sd(&a).0, range(&a));
        let (bm, (blo, bhi)) = (mean_sd(&b).0, range(&b));
        let place = if am < blo {
            below += 1;
            "below"
        } else if am > bhi {
            above += 1;
            "above"
        } else {
            inside += 1;
            "within"
        };
        let _ = writeln!(
            md,
            "| {step} | {am:.2} ({alo:.2}–{ahi:.2}) | {bm:.2} ({blo:.2}–{bhi:.2}) | {place} |"
        );
    }
    let (ot, _) = mean_sd(&col(ours, |o| o.test));
    let (rlo, rhi) = range(&col(reference, |o| o.test));
    let _ = writeln!(
        md,
        "\nAt the {total} validation steps our mean validation accuracy lies within the range of the \
         reference's seeds at {inside}, above it at {above} and below it at {below}; our mean test \
         accuracy ({ot:.2}%) is {place} the reference seeds' range ({rlo:.2}–{rhi:.2}%).",
        total = inside + above + below,
        place = if ot < rlo {
            "below"
        } else if ot > rhi {
            "above"
        } else {
            "within"
        }
    );
    if !others.is_empty() {
        let _ = writeln!(
            md,
            "\nThe same comparison under the other head initialisations (`--learn-head-init`, same \
             seeds, batches and budget):\n\n\
             | head init | ours: test acc % mean ± sd | reference: test acc % mean ± sd | ours: final val loss | reference: final val loss |\n|---|---|---|---|---|"
        );
        let mut rows: Vec<(&str, &[Outcome], &[Outcome])> =
            vec![(args.learn_head_init.as_str(), ours, reference)];
        rows.extend(others.iter().map(|(m, o, r)| (*m, o.as_slice(), r.as_slice())));
        for (mode, o, r) in rows {
            let (ot, os) = mean_sd(&col(o, |x| x.test));
            let (rt, rs) = mean_sd(&col(r, |x| x.test));
            let (ol, _) = mean_sd(&col(o, |x| x.final_val_loss));
            let (rl, _) = mean_sd(&col(r, |x| x.final_val_loss));
            let mode = match mode {
                "native" => "native (ours LibTorch's, the reference PyTorch's)",
                "kaiming" => "kaiming (LibTorch's on both)",
                _ => "torch (PyTorch's on both)",
            };
            let _ = writeln!(
                md,
                "| {mode} | {ot:.2} ± {os:.2} | {rt:.2} ± {rs:.2} | {ol:.4} | {rl:.4} |"
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::bench::parse_args;

    fn args(extra: &[&str]) -> Args {
        parse_args(&[&["learn"], extra].concat()).unwrap()
    }

    #[test]
    fn our_config_is_the_model_the_reference_side_builds() {
        let cfg: toml::Table = config(&args(&[]), "n", 3).parse().unwrap();
        let (model, trainer) = (&cfg["model"], &cfg["trainer"]);
        assert_eq!(model["kind"].as_str(), Some("nfn"));
        assert_eq!(model["hidden"].as_array().unwrap().len(), 3);
        assert_eq!(model["hidden"][0].as_integer(), Some(128));
        assert_eq!(model["head"]["hidden"][1].as_integer(), Some(1000));
        assert_eq!(model["fourier"]["mapping_size"].as_integer(), Some(128));
        assert_eq!(trainer["seed"].as_integer(), Some(3));
        assert_eq!(trainer["optim"]["lr"].as_float(), Some(1e-3));
        assert_eq!(trainer["optim"]["weight_decay"].as_float(), Some(0.0));
        assert!(trainer["optim"].get("grad_clip").is_none(), "the reference does not clip");

        let cfg: toml::Table =
            config(&args(&["--learn-model", "nft", "--learn-steps", "7"]), "n", 0).parse().unwrap();
        let model = &cfg["model"];
        assert_eq!(model["kind"].as_str(), Some("nft"));
        assert_eq!(model["channels"].as_integer(), Some(64));
        assert_eq!(model["readout"]["cross_attention"]["latent_dim"].as_integer(), Some(64));
        assert_eq!(cfg["trainer"]["steps"].as_integer(), Some(7));
        assert!(parse_args(&["learn", "--learn-model", "np"]).is_err());

        // head initialisation: ours written only where it is not our default
        assert!(model["head"].get("init").is_none());
        let torch = args(&["--learn-model", "nft", "--learn-head-init", "torch"]);
        let cfg: toml::Table = config(&torch, "n", 0).parse().unwrap();
        assert_eq!(cfg["model"]["head"]["init"].as_str(), Some("torch"));
        assert_eq!(head_inits(&torch), ("torch", "torch", "_torch-head"));
        let kaiming = args(&["--learn-head-init", "kaiming"]);
        assert!(config(&kaiming, "n", 0).parse::<toml::Table>().unwrap()["model"]["head"]
            .get("init")
            .is_none());
        assert_eq!(head_inits(&kaiming).1, "tch", "the PyTorch side re-draws its head");
        assert_eq!(head_inits(&args(&[])), ("kaiming", "torch", ""));
        assert!(parse_args(&["learn", "--learn-head-init", "xavier"]).is_err());
    }

    fn outcome(test: f64, curve: &[f64]) -> Outcome {
        Outcome {
            best_val: test,
            best_step: 100,
            test,
            final_val: test,
            final_val_loss: 2.0,
            seconds: 10.0,
            curve: curve.iter().enumerate().map(|(i, &a)| (100 * (i as u64 + 1), a)).collect(),
        }
    }

    #[test]
    fn the_page_places_our_mean_against_the_reference_seeds_range() {
        let a = args(&["--learn-seeds", "0,1"]);
        let reference = [outcome(19.0, &[10.0, 18.0]), outcome(21.0, &[12.0, 20.0])];
        let ours = [outcome(20.0, &[13.0, 19.0]), outcome(20.5, &[14.0, 19.5])];
        let md = page(&a, "set", "learn", 5, &ours, &reference, &[]);
        assert!(
            md.contains("at the 2 validation steps") || md.contains("At the 2 validation steps"),
            "{md}"
        );
        assert!(md.contains("seeds at 1, above it at 1 and below it at 0"), "{md}");
        assert!(md.contains("mean test accuracy (20.25%) is within"), "{md}");
        assert!(md.contains("| 100 | 13.50 (13.00–14.00) | 11.00 (10.00–12.00) | above |"), "{md}");
        let better = [outcome(25.0, &[11.0, 19.0]), outcome(26.0, &[11.0, 19.0])];
        let md = page(&a, "set", "learn", 5, &better, &reference, &[]);
        assert!(md.contains("seeds at 2, above it at 0") && md.contains("is above"), "{md}");
        assert!(!md.contains("other head initialisations"), "{md}");
        // another head initialisation's finished bench gets a row of its own
        let others = [("torch", reference.to_vec(), reference.to_vec())];
        let md = page(&a, "set", "learn", 5, &better, &reference, &others);
        assert!(md.contains("| native (ours LibTorch's, the reference PyTorch's) | 25.50 ± 0.71 | 20.00 ± 1.41 |"), "{md}");
        assert!(md.contains("| torch (PyTorch's on both) | 20.00 ± 1.41 | 20.00 ± 1.41 |"), "{md}");
    }
}
