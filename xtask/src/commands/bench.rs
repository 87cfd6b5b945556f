//! `cargo xtask bench layers|inr2array|edit|fit|zoo|learn|step` (`learn`: see [`super::bench_learn`];
//! `step`: whole training steps, see [`super::bench_step`]). `layers`: our layers and the PyTorch reference
//! (`nfn==0.1.2`) on the same machine in the same run, one process per configuration (so peak
//! memory belongs to it), as a table with the ratios, printed and written to
//! `docs/bench/layers.md`. `inr2array`: the same for the paper's Inr2Array encoder, each side
//! under glibc's default malloc and under the tuned settings our binaries use, written to
//! `docs/bench/inr2array.md`. `edit`: one editing step (editor, render, MSE, backward) the same
//! way, written to `docs/bench/edit.md`. `zoo`: CNN zoo training, `make-zoo` vs PyTorch (one at a
//! time and `torch.func.vmap`), written to `docs/bench/zoo.md`. `fit`: SIREN fitting, ours vs PyTorch (one at a time and
//! `torch.func.vmap`), written to `docs/bench/fit.md`.
//!
//! On a machine with an NVIDIA GPU (or with `NFN_DEVICE=cuda`, see [`crate::gpu`]) `layers`,
//! `inr2array` and `edit` build `bench_layers` with `--features cuda` and run both sides on the GPU
//! (the reference scripts get `--device`); `fit` runs the PyTorch side there (ours, the
//! `fit_bench` example, stays on the CPU); `zoo` and `step` stay on the CPU. `--out` writes elsewhere than
//! `docs/bench/` (the GPU check does, to keep the CPU tables).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::gpu::{self, Accel};
use crate::util::{cargo, root, run as sh};

/// Options of `bench`.
#[derive(clap::Args, Clone)]
pub struct Args {
    /// What to benchmark: `layers`, `inr2array`, `edit`, `fit`, `zoo`, `learn` or `step`.
    pub what: String,
    /// Timed iterations per measurement (the median is reported; one warm-up run precedes them).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Configurations (default for `layers`: all layer rows of the reference bench; for
    /// `inr2array`: `inr2array_encoder`; for `step`, the models: `nft,inr2array`).
    #[arg(long, value_delimiter = ',')]
    pub configs: Option<Vec<String>>,
    /// Batch sizes (default: 32,128 for `layers`, 32 for `inr2array`; for `step` 32,16,64,128: the
    /// first for the rows of both sides, the others for rows of ours only).
    #[arg(long, value_delimiter = ',')]
    pub batches: Option<Vec<i64>>,
    /// `layers`, `inr2array`, `edit`, `fit`, `zoo`: rounds per row; each round runs every side once, in turn,
    /// and a side's times are the median over its rounds (the machine's drift over the minutes a
    /// row takes then reaches all sides alike).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Skip the PyTorch reference side.
    #[arg(long)]
    pub no_reference: bool,
    /// `fit`: SIRENs fitted by ours and by vmap (one at a time fits n/16).
    #[arg(long, default_value_t = 256)]
    pub fit_n: i64,
    /// `fit`: PyTorch's Adam steps (lr 1e-3).
    #[arg(long, default_value_t = 250)]
    pub fit_steps: i64,
    /// `zoo`: CNNs trained at once by ours and by vmap (one at a time trains n/32).
    #[arg(long, default_value_t = 256)]
    pub zoo_networks: usize,
    /// `zoo`: optimizer steps per CNN.
    #[arg(long, default_value_t = 50)]
    pub zoo_steps: usize,
    /// `learn`, `step`: the INR set both sides train on.
    #[arg(long, default_value = "data/inrs/fashion-mnist-12k")]
    pub learn_inrs: PathBuf,
    /// `learn`: optimizer steps per run.
    #[arg(long, default_value_t = 1000)]
    pub learn_steps: u64,
    /// `learn`: validate every this many steps.
    #[arg(long, default_value_t = 100)]
    pub learn_eval_every: u64,
    /// `learn`: seeds per side.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    pub learn_seeds: Vec<u64>,
    /// `learn`: the model, `hnp` (the reference's NFN-HNP classifier) or `nft` (our NFT
    /// classifier, rebuilt on the reference side from the package's layers).
    #[arg(long, default_value = "hnp", value_parser = ["hnp", "nft"])]
    pub learn_model: String,
    /// `learn`: channels (of the three HNP layers: default 128; of the NFT: default 64).
    #[arg(long)]
    pub learn_width: Option<i64>,
    /// `learn`: Adam's learning rate after the warm-up.
    #[arg(long, default_value_t = 1e-3)]
    pub learn_lr: f64,
    /// `learn`: linear warm-up steps.
    #[arg(long, default_value_t = 100)]
    pub learn_warmup: u64,
    /// `learn`: how the MLP head's weights are drawn: `native` (each side its library's default:
    /// LibTorch's Kaiming uniform on ours, PyTorch's `nn.Linear` on the reference's), `kaiming`
    /// (both sides LibTorch's) or `torch` (both PyTorch's).
    #[arg(long, default_value = "native", value_parser = ["native", "kaiming", "torch"])]
    pub learn_head_init: String,
    /// `step`: timed optimizer steps per row, after the `--step-warmup` untimed ones.
    #[arg(long, default_value_t = 100)]
    pub step_steps: u64,
    /// `step`: untimed warm-up steps before the timed ones, on both sides.
    #[arg(long, default_value_t = 10)]
    pub step_warmup: u64,
    /// `step`: LibTorch intra-op threads: the first for the rows of both sides, the others for
    /// rows of ours only (at the first batch).
    #[arg(long, value_delimiter = ',', default_value = "2,1")]
    pub step_threads: Vec<usize>,
    /// Where the markdown table goes (default: `docs/bench/<what>.md`; `learn` writes its PNGs
    /// beside it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// `layers`, `inr2array`, `edit`: run the `bench_layers` binary of a `gpu-check --pack` bundle
    /// in this folder, with no set-up and no build (for a machine without cargo).
    #[arg(long)]
    pub prebuilt: Option<PathBuf>,
}

/// Write the table `md` to `--out` or `docs/bench/<default>`.
pub(super) fn write_table(args: &Args, default: &str, md: &str) -> Result<()> {
    let path = root().join(args.out.as_deref().unwrap_or(&Path::new("docs/bench").join(default)));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {dir:?}"))?;
    }
    std::fs::write(&path, md).with_context(|| format!("writing {path:?}"))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

/// `--device <cpu|cuda|cuda:N>` for the reference scripts on a CUDA build, nothing on the CPU (their
/// default), so CPU command lines stay as they were.
fn reference_device_args(accel: &Accel) -> Vec<String> {
    if accel.is_cuda() {
        vec!["--device".into(), accel.device().into()]
    } else {
        Vec::new()
    }
}

/// One row's record from `bench_layers` or `layers_ref.py`. New fields are optional, so records
/// of older builds (a `--prebuilt` bundle) still parse.
#[derive(Debug, Deserialize)]
struct Record {
    fwd_ms: f64,
    fwdbwd_ms: f64,
    peak_mb: Option<f64>,
    params: i64,
    /// FLOPs of one forward+backward as PyTorch's `FlopCounterMode` counts them (the reference
    /// side only; it also reports `fwd_flop`, which the table does not use).
    #[serde(default)]
    fwdbwd_flop: Option<f64>,
}

impl Record {
    /// One record of a side's rounds: the median times, the largest peak memory.
    fn median_of(mut rounds: Vec<Record>) -> Option<Record> {
        let median = |rounds: &mut Vec<Record>, key: fn(&Record) -> f64| {
            rounds.sort_by(|a, b| key(a).total_cmp(&key(b)));
            key(&rounds[rounds.len() / 2])
        };
        if rounds.is_empty() {
            return None;
        }
        let fwd_ms = median(&mut rounds, |r| r.fwd_ms);
        let fwdbwd_ms = median(&mut rounds, |r| r.fwdbwd_ms);
        let peak_mb = rounds.iter().filter_map(|r| r.peak_mb).reduce(f64::max);
        let first = rounds.swap_remove(0);
        Some(Record { fwd_ms, fwdbwd_ms, peak_mb, ..first })
    }
}

/// The record of `bench_layers --sgemm-peak <n> <iters>`.
#[derive(Debug, Deserialize)]
struct SgemmRecord {
    /// The matmul's size (`n` x `n` by `n` x `n`).
    n: i64,
    /// GFLOP/s, `2 n³` over the median time.
    gflops: f64,
    /// LibTorch's intra-op threads.
    #[serde(default)]
    threads: Option<i64>,
}

/// The `fwd+bwd GFLOP/s` and `% of peak` cells of a row: `flop` FLOPs of one forward+backward
/// done in `ms` milliseconds, against the sgemm peak `peak_gflops`; `–` where either is unknown.
fn flop_cells(flop: Option<f64>, ms: f64, peak_gflops: Option<f64>) -> (String, String) {
    let known = |x: f64| x.is_finite() && x > 0.0;
    let Some(gflops) = flop.filter(|&f| known(f) && known(ms)).map(|f| f / (ms * 1e6)) else {
        return ("–".into(), "–".into());
    };
    let share = match peak_gflops.filter(|&p| known(p)) {
        Some(peak) => format!("{:.1}%", 100.0 * gflops / peak),
        None => "–".into(),
    };
    (format!("{gflops:.1}"), share)
}

/// Clear the allocator variables of `cmd` and put it under the tuned allocator (`tuned`) or the
/// C library's defaults, as the rows of a side run; returns the allocator's name for the table.
pub(super) fn set_allocator(cmd: &mut Command, tuned: bool) -> &'static str {
    cmd.env_remove("LD_PRELOAD")
        .env_remove("MALLOC_CONF")
        .env_remove("GLIBC_TUNABLES")
        .env_remove("NFN_MALLOC_APPLIED");
    if tuned {
        let (name, env) = tuned_malloc_env();
        cmd.envs(env).env("NFN_MALLOC_APPLIED", name);
        name
    } else {
        cmd.env("NFN_MALLOC", "system");
        "system"
    }
}

/// The machine's sgemm peak, measured by `bench_layers --sgemm-peak` under the allocator of the
/// `ours` rows: an f32 matmul of 2048 x 2048 on the CPU (about a quarter of a second per product
/// at 2 threads), 8192 x 8192 on a GPU. `None`, with a warning, where the binary cannot (a
/// `--prebuilt` bundle from before the option).
fn sgemm_peak(bin: &Path, accel: &Accel, iters: usize) -> Option<SgemmRecord> {
    let n = if accel.is_cuda() { 8192 } else { 2048 };
    let mut cmd = Command::new(bin);
    cmd.args(["--sgemm-peak", &n.to_string(), &iters.max(5).to_string()]);
    set_allocator(&mut cmd, true);
    match measure::<SgemmRecord>(&mut cmd) {
        Ok(r) => {
            eprintln!("xtask: sgemm peak {:.1} GFLOP/s (n = {})", r.gflops, r.n);
            Some(r)
        }
        Err(e) => {
            eprintln!("xtask: warning: no sgemm peak measured: {e:#}");
            None
        }
    }
}

/// The header's sentences on the sgemm peak and the FLOP columns.
fn flop_note(peak: Option<&SgemmRecord>, accel: &Accel, counted: bool) -> String {
    let peak = match peak {
        Some(r) => format!(
            "sgemm peak of this machine, measured in this run: {:.0} GFLOP/s (LibTorch f32 matmul \
             {n} x {n}, {})",
            r.gflops,
            if accel.is_cuda() {
                format!("on {}", accel.device())
            } else {
                format!("{} threads", r.threads.unwrap_or(2))
            },
            n = r.n,
        ),
        None => "sgemm peak of this machine: not measured in this run".into(),
    };
    format!(
        " {peak}. **fwd+bwd GFLOP/s** = the FLOPs of one forward+backward over its median time, \
         GFLOP counted by PyTorch's FlopCounterMode on the reference's computation (matmuls and \
         convolutions); both sides compute the same math, so every side's row of a config and \
         batch uses that count. `% of peak` = that rate over the sgemm peak.{}",
        if counted { "" } else { " No reference side in this run, so no FLOP count (–)." }
    )
}

/// Run `cmd` and parse the JSON record on the last line of its output.
pub fn measure<T: serde::de::DeserializeOwned>(cmd: &mut Command) -> Result<T> {
    let line = format!("{cmd:?}");
    let out = cmd.current_dir(root()).output().with_context(|| format!("starting {line}"))?;
    if !out.status.success() {
        bail!("{line} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("parsing the output of {line}: {stdout}"))
}

/// The CPU's model name from `/proc/cpuinfo`.
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

#[derive(Debug, Deserialize)]
struct FitRecord {
    inrs_per_s: f64,
    mean_psnr: f64,
    min_psnr: f64,
    steps: f64,
}

/// The element of `xs` at the median of `key` (the upper one of an even count).
fn median_by<T>(mut xs: Vec<T>, key: impl Fn(&T) -> f64) -> Option<T> {
    xs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let mid = xs.len() / 2;
    (!xs.is_empty()).then(|| xs.swap_remove(mid))
}

/// Run `rows` rows `rounds` times, each round every row once in turn, row `i` as `command(i)`
/// builds it (the command and whether it runs under the tuned allocator): per row, its records
/// over the rounds, and its allocator's name.
fn in_rounds<T: serde::de::DeserializeOwned>(
    what: &str,
    rounds: u32,
    rows: usize,
    mut command: impl FnMut(usize) -> (Command, bool),
) -> Result<(Vec<Vec<T>>, Vec<&'static str>)> {
    let mut runs: Vec<Vec<T>> = (0..rows).map(|_| Vec::new()).collect();
    let mut allocators = vec![""; rows];
    for round in 0..rounds {
        eprintln!("xtask: bench {what}, round {} of {rounds}", round + 1);
        for i in 0..rows {
            let (mut cmd, tuned) = command(i);
            allocators[i] = set_allocator(&mut cmd, tuned);
            runs[i].push(measure::<T>(&mut cmd)?);
        }
    }
    Ok((runs, allocators))
}

/// `bench fit`: the same FashionMNIST images fitted by ours and by PyTorch (`torch.func.vmap` with
/// the reference's recipe and with ours, and one at a time), each under the tuned and the system
/// allocator, written to `docs/bench/fit.md`. Every row runs `args.rounds` times, in turn with the
/// others; a row's figures are those of its median round by INRs/s.
fn run_fit(args: &Args) -> Result<()> {
    let accel = gpu::accel()?;
    if accel.is_cuda() {
        eprintln!(
            "xtask: device {} for the PyTorch side ({}); ours (fit_bench) runs on the CPU",
            accel.device(),
            accel.gpu_summary()
        );
    }
    super::setup::run(&super::setup::Args { reference: false })?;
    sh(cargo().args([
        "build",
        "--release",
        "--package",
        "nfn-datasets",
        "--example",
        "fit_bench",
    ]))?;
    let python = crate::util::python();
    let (n, steps) = (args.fit_n, args.fit_steps);
    let n_loop = (n / 16).max(2);
    // our recipe, as `SirenFitConfig::default()` sets it (`fit_bench`'s defaults)
    let (n_s, n_loop_s, steps_s) = (n.to_string(), n_loop.to_string(), steps.to_string());
    let ours_recipe: Vec<&str> =
        vec!["vmap-recipe", &n_s, "500", "5e-3", "--final", "0.1", "--target", "40"];
    let vmap: Vec<&str> = vec!["vmap", &n_s, &steps_s];
    // (method, SIRENs, PyTorch's arguments (None: ours), tuned allocator)
    let mut rows: Vec<(&str, i64, Option<&[&str]>, bool)> = Vec::new();
    for tuned in [true, false] {
        rows.push(("nfn-rs batched, our recipe", n, None, tuned));
        rows.push(("PyTorch torch.func.vmap, our recipe", n, Some(ours_recipe.as_slice()), tuned));
        rows.push(("PyTorch torch.func.vmap, reference recipe", n, Some(vmap.as_slice()), tuned));
    }
    let one_at_a_time: Vec<&str> = vec!["loop", &n_loop_s, &steps_s];
    rows.push((
        "PyTorch one at a time, reference recipe",
        n_loop,
        Some(one_at_a_time.as_slice()),
        false,
    ));
    let device = reference_device_args(&accel);
    let (runs, allocators) = in_rounds::<FitRecord>("fit", args.rounds, rows.len(), |i| {
        let (_, _, py_args, tuned) = rows[i];
        let cmd = match py_args {
            None => {
                let mut cmd = Command::new(root().join("target/release/examples/fit_bench"));
                cmd.arg(format!("n={n}"));
                cmd
            }
            Some(py_args) => {
                let mut cmd = Command::new(&python);
                cmd.arg("xtask/bench/fit_ref.py").args(py_args).args(&device);
                cmd
            }
        };
        (cmd, tuned)
    })?;
    let records: Vec<FitRecord> = runs
        .into_iter()
        .map(|r| median_by(r, |r| r.inrs_per_s).expect("at least one round"))
        .collect();
    // vmap with our recipe under the tuned [1] and the system [0] allocator; vmap as shipped
    let rate_of = |method: &str, tuned: bool| {
        rows.iter()
            .zip(&records)
            .find(|((name, _, _, t), _)| *name == method && *t == tuned)
            .map_or(f64::NAN, |(_, r)| r.inrs_per_s)
    };
    let same_recipe =
        [false, true].map(|tuned| rate_of("PyTorch torch.func.vmap, our recipe", tuned));
    let shipped = rate_of("PyTorch torch.func.vmap, reference recipe", false);
    let mut md = format!(
        "# SIREN fitting benchmark: nfn-rs vs PyTorch\n\n\
         Generated by `cargo xtask bench fit`; do not edit by hand. Machine: {} ({} logical CPUs), \
         2 threads on every side. FashionMNIST training images, SIREN 2-32-32-1, full batch over \
         28x28. **Our recipe**: the default `SirenFitConfig` (Adam 5e-3 with a cosine decay to \
         5e-4 over at most 500 steps, each SIREN stops once it reaches 40 dB and leaves the batch). \
         **Reference recipe**: Adam lr 1e-3 for {steps} steps (where the reference bench reaches \
         about 40 dB mean). `torch.func.vmap, our recipe` runs our recipe in PyTorch (the same \
         schedule and early stop, finished SIRENs dropped from the batch), so that row against \
         vmap with the reference recipe is the recipe's gain, and ours against it the \
         implementation's. Each row runs under the tuned allocator (`jemalloc` with purging off, \
         what the nfn-rs binaries choose for themselves) and under the system's (`system`){}. \
         **like for like** = this row's INRs/s over vmap with our recipe under the same \
         allocator: the headline; `vs vmap as shipped` compares with vmap, the reference recipe, \
         under the system allocator. PSNR on the [-1, 1] range; steps = mean steps per SIREN.{}\n\n\
         | method | allocator | INRs | steps (mean) | INRs/s | mean PSNR dB | worst PSNR dB | like for like | vs vmap as shipped |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        cpu_name(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if args.rounds > 1 {
            format!(
                "; {} rounds, each running every row once in turn, a row's figures those of its \
                 median round by INRs/s",
                args.rounds
            )
        } else {
            String::new()
        },
        if accel.is_cuda() {
            format!(
                " PyTorch runs on {} ({}); ours on the CPU (the `fit_bench` example has no device option).",
                accel.device(),
                accel.gpu_summary()
            )
        } else {
            String::new()
        },
    );
    for ((&(name, count, _, tuned), r), alloc) in rows.iter().zip(&records).zip(&allocators) {
        let _ = writeln!(
            md,
            "| {name} | {alloc} | {count} | {:.0} | {:.2} | {:.2} | {:.2} | **{:.2}x** | {:.2}x |",
            r.steps,
            r.inrs_per_s,
            r.mean_psnr,
            r.min_psnr,
            r.inrs_per_s / same_recipe[usize::from(tuned)],
            r.inrs_per_s / shipped
        );
    }
    print!("{md}");
    write_table(args, "fit.md", &md)
}

#[derive(Debug, Deserialize)]
struct ZooRecord {
    cnn_steps_per_s: f64,
}

/// `bench zoo`: CNNs of the Small CNN Zoo trained by `make-zoo`'s batched trainer and by PyTorch
/// (one at a time, and `torch.func.vmap`), each under the tuned and the system allocator, plus
/// LibTorch's grouped convolutions alone, written to `docs/bench/zoo.md`. Every row runs
/// `args.rounds` times, in turn with the others; a row's rate is the median over its rounds.
fn run_zoo(args: &Args) -> Result<()> {
    super::setup::run(&super::setup::Args { reference: false })?;
    sh(cargo().args([
        "build",
        "--release",
        "--package",
        "nfn-datasets",
        "--example",
        "zoo_gen_bench",
    ]))?;
    let python = crate::util::python();
    let (group, steps) = (args.zoo_networks, args.zoo_steps);
    let n_loop = (group / 32).max(2);
    // (method, networks, PyTorch's (mode) or ours (None), tuned allocator)
    let rows: Vec<(&str, usize, Option<&str>, bool)> = vec![
        ("nfn make-zoo (batched)", group, None, true),
        ("nfn make-zoo (batched)", group, None, false),
        ("PyTorch torch.func.vmap", group, Some("vmap"), true),
        ("PyTorch torch.func.vmap", group, Some("vmap"), false),
        ("PyTorch one at a time", n_loop, Some("loop"), true),
        ("PyTorch one at a time", n_loop, Some("loop"), false),
        ("LibTorch grouped convolutions alone", group, Some("conv"), true),
    ];
    let (runs, allocators) = in_rounds::<ZooRecord>("zoo", args.rounds, rows.len(), |i| {
        let (_, count, mode, tuned) = rows[i];
        let cmd = match mode {
            None => {
                let mut cmd = Command::new(root().join("target/release/examples/zoo_gen_bench"));
                cmd.args([format!("group={count}"), format!("steps={steps}")]);
                cmd
            }
            Some(mode) => {
                let mut cmd = Command::new(&python);
                cmd.args(["xtask/bench/zoo_ref.py", mode, &count.to_string()])
                    .arg(steps.to_string());
                cmd
            }
        };
        (cmd, tuned)
    })?;
    let rates: Vec<f64> = runs
        .into_iter()
        .map(|r| median_by(r, |r| r.cnn_steps_per_s).expect("at least one round").cnn_steps_per_s)
        .collect();
    // the faster PyTorch way under the tuned [1] and the system [0] allocator
    let mut best = [0f64; 2];
    for (&(_, _, mode, tuned), &rate) in rows.iter().zip(&rates) {
        if matches!(mode, Some("vmap" | "loop")) {
            best[usize::from(tuned)] = best[usize::from(tuned)].max(rate);
        }
    }
    let mut md = format!(
        "# CNN zoo training benchmark: `nfn make-zoo` vs PyTorch\n\n\
         Generated by `cargo xtask bench zoo`; do not edit by hand. Machine: {} ({} logical CPUs), \
         2 threads on every side. The Small CNN Zoo network (3 conv 3x3 stride 2 x 16, GAP, dense \
         10) on FashionMNIST 28 x 28, batch 32 per network, each network with its own drawn \
         activation, dropout, optimizer, learning rate and L2 (design.md §6.3); {steps} optimizer \
         steps, timed without data loading and checkpoints. CNNs/s = networks finishing {steps} \
         steps per second. Ours: one batched computation of {group} networks (grouped \
         convolutions per block of networks sharing an activation, dropout masks drawn in \
         parallel, vectorised optimizers). PyTorch: `torch.func.vmap` over the same {group} \
         networks, and one network at a time with `torch.optim` ({n_loop} networks). Each row runs \
         under the tuned allocator (`jemalloc` with purging off, what the nfn-rs binaries choose \
         for themselves) and under the system's (`system`){}. **like for like** = this row over \
         the faster PyTorch way under the same allocator: the headline; `vs PyTorch as shipped` \
         compares with the faster PyTorch way under the system allocator. The last row runs only \
         LibTorch's grouped convolutions of the same networks (forward, and backward to the \
         weights and hidden inputs): the time any implementation on LibTorch's convolutions \
         pays, so its rate bounds ours.\n\n\
         | method | allocator | networks | CNN-steps/s | CNNs/s ({steps} steps) | like for like | vs PyTorch as shipped |\n\
         |---|---|---|---|---|---|---|\n",
        cpu_name(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if args.rounds > 1 {
            format!(
                "; {} rounds, each running every row once in turn, a row's rate the median over \
                 its rounds",
                args.rounds
            )
        } else {
            String::new()
        },
    );
    for ((&(name, count, mode, tuned), &rate), alloc) in rows.iter().zip(&rates).zip(&allocators) {
        let like = if mode == Some("conv") {
            "–".to_string()
        } else {
            format!("**{:.2}x**", rate / best[usize::from(tuned)])
        };
        let _ = writeln!(
            md,
            "| {name} | {alloc} | {count} | {rate:.0} | {:.2} | {like} | {:.2}x |",
            rate / steps as f64,
            rate / best[0]
        );
    }
    print!("{md}");
    write_table(args, "zoo.md", &md)
}

/// The environment that puts a process under the tuned allocator, as
/// `nfn_weightspace::runtime::tuned_malloc_env` chooses it for our binaries (xtask links no
/// LibTorch, so it keeps this copy): jemalloc preloaded with purging off where Debian's
/// `libjemalloc2` is installed, glibc tunables (no mmap, no trim) otherwise. Returns the
/// allocator's name (what our binaries report) and the variables.
pub fn tuned_malloc_env() -> (&'static str, Vec<(&'static str, &'static str)>) {
    match super::setup::jemalloc_path() {
        Some(lib) => (
            "jemalloc",
            vec![("LD_PRELOAD", lib), ("MALLOC_CONF", "dirty_decay_ms:-1,muzzy_decay_ms:-1")],
        ),
        None => (
            "glibc-tunables",
            vec![(
                "GLIBC_TUNABLES",
                "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184",
            )],
        ),
    }
}

/// One side of a comparison: the reference or ours, under the tuned or the system allocator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Side {
    /// The side as the table names it.
    pub name: &'static str,
    /// The PyTorch reference (else ours).
    pub reference: bool,
    /// Under the tuned allocator (else the C library's defaults).
    pub tuned: bool,
}

impl Side {
    pub(super) const fn new(name: &'static str, reference: bool, tuned: bool) -> Self {
        Side { name, reference, tuned }
    }
}

/// Run the benchmark.
pub fn run(args: &Args) -> Result<()> {
    if args.prebuilt.is_some() && matches!(args.what.as_str(), "fit" | "zoo" | "learn" | "step") {
        bail!("bench {}: --prebuilt works for layers, inr2array and edit only", args.what);
    }
    let (default_configs, default_batches, sides, out_name): (&[&str], &[i64], Vec<Side>, _) =
        match args.what.as_str() {
            "fit" => return run_fit(args),
            "learn" => return super::bench_learn::run(args),
            "step" => return super::bench_step::run(args),
            "zoo" => return run_zoo(args),
            "layers" => (
                &["hnp128", "np128", "hnp512", "np512", "attention", "nft_block"],
                &[32, 128],
                vec![
                    Side::new("reference", true, false),
                    Side::new("reference, tuned allocator", true, true),
                    Side::new("ours", false, true),
                ],
                "layers.md",
            ),
            "inr2array" => (
                &["inr2array_encoder"],
                &[32],
                // the reference with default malloc first: the other rows' ratios are to it
                vec![
                    Side::new("reference", true, false),
                    Side::new("reference, tuned allocator", true, true),
                    Side::new("ours", false, true),
                    Side::new("ours, system allocator", false, false),
                ],
                "inr2array.md",
            ),
            "edit" => (
                &["edit_nfn_hnp", "edit_nft"],
                &[32],
                vec![
                    Side::new("reference", true, false),
                    Side::new("reference, tuned allocator", true, true),
                    Side::new("ours", false, true),
                    Side::new("ours, system allocator", false, false),
                ],
                "edit.md",
            ),
            other => {
                bail!(
                    "unknown benchmark {other:?}; available: layers, inr2array, edit, fit, zoo, \
                     learn, step"
                )
            }
        };
    let configs: Vec<String> = args
        .configs
        .clone()
        .unwrap_or_else(|| default_configs.iter().map(|s| s.to_string()).collect());
    let batches = args.batches.clone().unwrap_or_else(|| default_batches.to_vec());
    let sides: Vec<Side> =
        sides.into_iter().filter(|s| !(s.reference && args.no_reference)).collect();
    let accel = gpu::accel()?;
    eprintln!("xtask: {}", accel.line("bench_layers"));
    let ours_bin = match &args.prebuilt {
        Some(dir) => root().join(dir).join("bin/bench_layers"),
        None => {
            super::setup::run(&super::setup::Args { reference: !args.no_reference })?;
            sh(cargo()
                .args(["build", "--release", "--package", "nfn-bench"])
                .args(gpu::cargo_features(&accel))
                .args(["--bin", "bench_layers"]))?;
            root().join("target/release/bench_layers")
        }
    };
    let python = crate::util::python();
    let peak = sgemm_peak(&ours_bin, &accel, args.iters);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# {} benchmark: nfn-rs vs the PyTorch reference\n\n\
         Generated by `cargo xtask bench {}`; do not edit by hand. Machine: {} ({} logical CPUs), \
         2 threads on both sides, SIREN 2-32-32-1 weights, median of {} runs after a warm-up, one \
         process per row and round{} (peak MB is that process's maximum resident set). INR/s = networks per \
         second; ratio = this row / the reference under the system allocator (higher is better for \
         speed, lower for memory). `ours` runs under the allocator the nfn-rs binaries choose for \
         themselves (`nfn_weightspace::runtime`: jemalloc with purging off where installed, \
         else glibc without mmap or trimming); `tuned allocator` puts the reference under the same. \
         **like for like** = this row's fwd+bwd INR/s over the reference's under the same \
         allocator: the headline ratio; `ratio` compares with the reference as it ships.{}{}\n",
        match args.what.as_str() {
            "layers" => "Layer",
            "edit" => "Editing step",
            _ => "Inr2Array encoder",
        },
        args.what,
        cpu_name(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.iters,
        if args.rounds > 1 {
            format!(
                "; {} rounds, each running every side of a row once in turn, a side's times the \
                 median over its rounds",
                args.rounds
            )
        } else {
            String::new()
        },
        if accel.is_cuda() {
            format!(
                " Both sides run on {} ({}); peak MB is still host memory.",
                accel.device(),
                accel.gpu_summary()
            )
        } else {
            String::new()
        },
        flop_note(peak.as_ref(), &accel, sides.iter().any(|s| s.reference)),
    );
    if args.what == "edit" {
        let _ = writeln!(
            md,
            "One editing step (design.md §6.2): the editor's forward, the edited SIRENs `θ + Δθ` \
             rendered on the 28 x 28 grid, the MSE against a target image, and (fwd+bwd) the \
             backward pass. `edit_nfn_hnp` is the reference's released editor (TransferNet, HNP, \
             hidden 128, design.md §3.5); `edit_nft` is the CPU-sized NFT editor of our configs \
             (C 32, 1 block, 2 heads), composed on the reference side from the package's layers. \
             The reference renders as its editing loop does (`torch.func.vmap` over a functional \
             SIREN).\n"
        );
    }
    let _ = writeln!(
        md,
        "| config | batch | side | allocator | params | fwd INR/s | ratio | fwd+bwd INR/s | ratio | like for like | fwd+bwd GFLOP/s | % of peak | peak MB | ratio |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let peak_gflops = peak.as_ref().map(|r| r.gflops);
    print!("{md}");
    for config in &configs {
        for &b in &batches {
            let (iters, batch) = (args.iters.to_string(), b.to_string());
            let rate = |ms: f64| b as f64 * 1e3 / ms;
            let mut base: Option<[f64; 3]> = None;
            // the reference's fwd+bwd rate under the system [0] and the tuned [1] allocator
            let mut same_alloc: [Option<f64>; 2] = [None, None];
            // FLOPs of one forward+backward, counted on the reference side (which runs first)
            let mut fwdbwd_flop: Option<f64> = None;
            let mut rounds: Vec<Vec<Record>> = sides.iter().map(|_| Vec::new()).collect();
            let mut allocators = vec![""; sides.len()];
            for _ in 0..args.rounds {
                for (i, side) in sides.iter().enumerate() {
                    let mut cmd = if side.reference {
                        let mut c = Command::new(&python);
                        c.arg("xtask/bench/layers_ref.py").args(reference_device_args(&accel));
                        c
                    } else {
                        Command::new(&ours_bin)
                    };
                    cmd.args([config.as_str(), &batch, &iters]);
                    allocators[i] = set_allocator(&mut cmd, side.tuned);
                    rounds[i].push(measure(&mut cmd)?);
                }
            }
            for ((side, runs), allocator) in sides.iter().zip(rounds).zip(&allocators) {
                let r = Record::median_of(runs).expect("at least one round");
                if side.reference && fwdbwd_flop.is_none() {
                    fwdbwd_flop = r.fwdbwd_flop;
                }
                let (gflops, share) = flop_cells(fwdbwd_flop, r.fwdbwd_ms, peak_gflops);
                let values = [rate(r.fwd_ms), rate(r.fwdbwd_ms), r.peak_mb.unwrap_or(f64::NAN)];
                if side.reference && !side.tuned {
                    base = Some(values);
                }
                if side.reference {
                    same_alloc[usize::from(side.tuned)] = Some(values[1]);
                }
                let like = match same_alloc[usize::from(side.tuned)] {
                    Some(r) if !side.reference => format!("**{:.2}x**", values[1] / r),
                    _ => "–".into(),
                };
                let ratio =
                    |i: usize| base.map_or("–".into(), |b| format!("{:.2}x", values[i] / b[i]));
                let row = format!(
                    "| {config} | {b} | {} | {allocator} | {:.2} M | {:.2} | {} | {:.2} | {} | {like} | {gflops} | {share} | {:.0} | {} |\n",
                    side.name,
                    r.params as f64 / 1e6,
                    values[0],
                    ratio(0),
                    values[1],
                    ratio(1),
                    values[2],
                    ratio(2),
                );
                print!("{row}");
                md.push_str(&row);
            }
        }
    }
    write_table(args, out_name, &md)
}

/// `bench` options parsed from `words` (what follows `cargo xtask bench`), for the benches' tests.
#[cfg(test)]
pub(crate) fn parse_args(words: &[&str]) -> Result<Args, clap::Error> {
    use clap::{Args as _, FromArgMatches as _};
    let words = std::iter::once("bench").chain(words.iter().copied());
    Args::from_arg_matches(
        &Args::augment_args(clap::Command::new("bench")).try_get_matches_from(words)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flop_cells_rate_share_and_dashes() {
        // 2 GFLOP in 100 ms = 20 GFLOP/s, 20 / 80 = 25 %
        assert_eq!(flop_cells(Some(2e9), 100.0, Some(80.0)), ("20.0".into(), "25.0%".into()));
        // rounding to one decimal: 1 GFLOP in 30 ms = 33.33 GFLOP/s, of 70 = 47.62 %
        assert_eq!(flop_cells(Some(1e9), 30.0, Some(70.0)), ("33.3".into(), "47.6%".into()));
        assert_eq!(flop_cells(Some(1e6), 1000.0, Some(70.0)), ("0.0".into(), "0.0%".into()));
        // no count (no reference side, an older reference script): both cells a dash
        assert_eq!(flop_cells(None, 100.0, Some(80.0)), ("–".into(), "–".into()));
        assert_eq!(flop_cells(Some(0.0), 100.0, Some(80.0)), ("–".into(), "–".into()));
        assert_eq!(flop_cells(Some(2e9), f64::NAN, Some(80.0)), ("–".into(), "–".into()));
        // no peak (a bundle without --sgemm-peak): the rate, and a dash for the share
        assert_eq!(flop_cells(Some(2e9), 100.0, None), ("20.0".into(), "–".into()));
        assert_eq!(flop_cells(Some(2e9), 100.0, Some(0.0)), ("20.0".into(), "–".into()));
    }

    #[test]
    fn a_sides_rounds_give_the_median_times_and_the_largest_peak() {
        let record = |fwd_ms, fwdbwd_ms, peak_mb| Record {
            fwd_ms,
            fwdbwd_ms,
            peak_mb,
            params: 7,
            fwdbwd_flop: Some(1e9),
        };
        let r = Record::median_of(vec![
            record(3.0, 9.0, Some(100.0)),
            record(1.0, 30.0, None),
            record(2.0, 10.0, Some(120.0)),
        ])
        .unwrap();
        assert_eq!((r.fwd_ms, r.fwdbwd_ms, r.peak_mb), (2.0, 10.0, Some(120.0)));
        assert_eq!((r.params, r.fwdbwd_flop), (7, Some(1e9)));
        let one = Record::median_of(vec![record(4.0, 8.0, None)]).unwrap();
        assert_eq!((one.fwd_ms, one.fwdbwd_ms, one.peak_mb), (4.0, 8.0, None));
        assert!(Record::median_of(Vec::new()).is_none());
        assert_eq!(parse_args(&["layers"]).unwrap().rounds, 1);
        assert_eq!(parse_args(&["layers", "--rounds", "3"]).unwrap().rounds, 3);
        assert!(parse_args(&["layers", "--rounds", "0"]).is_err());
    }

    #[test]
    fn records_of_older_builds_still_parse() {
        let old: Record = serde_json::from_str(
            r#"{"fwd_ms": 2.0, "fwdbwd_ms": 5.0, "peak_mb": 10.0, "params": 3}"#,
        )
        .unwrap();
        assert_eq!(old.fwdbwd_flop, None);
        let new: Record = serde_json::from_str(
            r#"{"fwd_ms": 2.0, "fwdbwd_ms": 5.0, "peak_mb": null, "params": 3, "fwd_flop": 1e9, "fwdbwd_flop": 3e9}"#,
        )
        .unwrap();
        assert_eq!(new.fwdbwd_flop, Some(3e9));
        let peak: SgemmRecord =
            serde_json::from_str(r#"{"n": 2048, "ms": 250.0, "gflops": 68.7}"#).unwrap();
        assert_eq!((peak.n, peak.gflops, peak.threads), (2048, 68.7, None));
    }
}
