//! `cargo xtask gpu-check [--dry-run] [--out docs/bench/gpu.md]`: the prepared check for a machine
//! with an NVIDIA GPU, sized for about 8 minutes on one H200. It builds the CUDA binaries, runs the
//! test suite with tensors on the GPU, the `layers`, `inr2array` and `fit` benches with both sides
//! on the GPU, and trains the FashionMNIST demo's NFT for a fixed number of steps, each step as a
//! child process under its own timeout (its whole process group is killed when it runs over) and
//! inside a total budget. It prints where the time went and writes one markdown report with the
//! steps, the bench tables, the demo's result and `nvidia-smi`. Scratch output (logs, tables, the
//! INR set, the run) goes to `target/gpu-check/`, so `docs/bench/*.md` and `data/` stay as they are.
//!
//! `--dry-run` works without a GPU: it prints the steps with their exact commands, writes the
//! demo's step-budget config, `cargo check`s the CUDA build and byte-compiles the bench scripts.

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::gpu;
use crate::util::{cargo, root, run as sh};

/// Where logs, bench tables, the INR set and the demo run go.
const SCRATCH: &str = "target/gpu-check";
/// The demo's NFT config, trained here for `--train-steps` steps.
const DEMO_CONFIG: &str = "xtask/configs/demo_nft.toml";
/// The name of the step-budget run (its folder under `target/gpu-check/runs/`).
const RUN_NAME: &str = "gpu_check_nft";
/// Python scripts of the PyTorch reference side, byte-compiled by `--dry-run`.
const BENCH_SCRIPTS: [&str; 3] =
    ["xtask/bench/layers_ref.py", "xtask/bench/fit_ref.py", "xtask/bench/zoo_ref.py"];

/// Options of `gpu-check`.
#[derive(clap::Args)]
pub struct Args {
    /// Print the steps, check the CUDA build (`cargo check`) and the bench scripts; run nothing heavy.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the report goes.
    #[arg(long, default_value = "docs/bench/gpu.md")]
    pub out: PathBuf,
    /// Training steps of the demo's NFT.
    #[arg(long, default_value_t = 2000)]
    pub train_steps: u64,
    /// Total seconds for all steps; a step gets at most what is left, and steps past it are skipped.
    #[arg(long, default_value_t = 540)]
    pub budget_s: u64,
    /// Steps to leave out, by name (e.g. `test,bench-fit`).
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Build the bundle for a GPU machine without cargo or network into this folder (see
    /// `gpu_pack`), and run nothing else.
    #[arg(long, conflicts_with_all = ["prebuilt", "dry_run"])]
    pub pack: Option<PathBuf>,
    /// Run the check from a bundle made by `--pack`: its binaries, the machine's own PyTorch
    /// (`NFN_REFERENCE_PYTHON`, default `python3`) and the bundle's reference package; no set-up,
    /// no builds.
    #[arg(long)]
    pub prebuilt: Option<PathBuf>,
    /// With `--prebuilt`: run the steps on the CPU, to try a bundle before sending it.
    #[arg(long, requires = "prebuilt")]
    pub rehearse: bool,
}

/// One step: a child process with its environment and time limit.
struct Step {
    /// Short name, used for `--skip` and the log file.
    name: &'static str,
    /// Extra environment, shown in front of the command.
    env: Vec<(&'static str, String)>,
    /// Program and arguments; `cargo` runs the toolchain's cargo.
    argv: Vec<String>,
    /// Most seconds it may take.
    timeout_s: u64,
    /// Steps that must have passed for this one to run.
    needs: &'static [&'static str],
}

impl Step {
    /// A step running `argv` with at most `timeout_s` seconds.
    fn new(name: &'static str, timeout_s: u64, argv: &[&str]) -> Self {
        let argv = argv.iter().map(|s| s.to_string()).collect();
        Step { name, env: Vec::new(), argv, timeout_s, needs: &[] }
    }

    /// The step, run only when the steps `needs` have passed.
    fn needs(self, needs: &'static [&'static str]) -> Self {
        Step { needs, ..self }
    }

    /// The step with `key=value` added to its environment.
    fn env(mut self, key: &'static str, value: &str) -> Self {
        self.env.push((key, value.to_string()));
        self
    }

    /// The command as a shell line.
    fn shell(&self) -> String {
        let env = self.env.iter().map(|(k, v)| format!("{k}={v} "));
        env.chain(std::iter::once(self.argv.join(" "))).collect()
    }

    /// The command to spawn (not yet placed in the project root).
    fn command(&self) -> Command {
        let mut cmd = if self.argv[0] == "cargo" { cargo() } else { Command::new(&self.argv[0]) };
        cmd.args(&self.argv[1..]).envs(self.env.iter().map(|(k, v)| (*k, v)));
        cmd
    }
}

/// How a step ended.
enum Outcome {
    /// Exited with success.
    Passed,
    /// Exited with failure.
    Failed(ExitStatus),
    /// Could not be started (program missing), and why.
    CannotStart(String),
    /// Killed after this many seconds.
    TimedOut(u64),
    /// Not run, and why (`--skip`, a step it needs failed, the budget was spent).
    Skipped(String),
}

impl Outcome {
    /// Passed, or left out on purpose with `--skip`.
    fn ok(&self) -> bool {
        match self {
            Outcome::Passed => true,
            Outcome::Skipped(why) => why == "--skip",
            _ => false,
        }
    }

    /// The result column of the tables.
    fn text(&self) -> String {
        match self {
            Outcome::Passed => "pass".into(),
            Outcome::Failed(status) => format!("**FAIL** ({status})"),
            Outcome::CannotStart(why) => format!("**FAIL** (could not start: {why})"),
            Outcome::TimedOut(s) => format!("**TIMEOUT** (killed after {s} s)"),
            Outcome::Skipped(why) => format!("skipped ({why})"),
        }
    }
}

/// Link libtorch_cuda into every binary (rustc's `--as-needed` would drop it: nothing references
/// it by symbol, its static initialisers register the CUDA backend).
const CUDA_LINK_ARG: &str = "-C link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed";

/// The steps, in order, for `device` (`cuda` or `cuda:N`). The three builds are exactly those the
/// later steps would do (same packages and features, so the same feature resolution), which
/// leaves those steps nothing to compile.
fn steps(args: &Args, device: &str) -> Vec<Step> {
    if let Some(dir) = &args.prebuilt {
        return prebuilt_steps(args, device, &dir.to_string_lossy());
    }
    let s = |p: &str| format!("{SCRATCH}/{p}");
    let (layers, inr2array, fit) = (s("layers.md"), s("inr2array.md"), s("fit.md"));
    let (inrs, runs) = (s("inrs"), s("runs"));
    let config = s(&format!("{}.toml", run_name(None)));
    let config_bf16 = s(&format!("{}.toml", run_name(Some("bf16"))));
    let limit = super::demo::DEMO_LIMIT.to_string();
    let nfn = "target/release/nfn";
    let release = |rest: &[&'static str]| [&["cargo", "build", "--release", "-p"], rest].concat();
    let dev = gpu::DEVICE_ENV;
    vec![
        Step::new("nvidia-smi", 30, &["nvidia-smi"]),
        Step::new("setup", 120, &["cargo", "xtask", "setup", "--reference"]),
        Step::new("build-nfn", 420, &release(&["nfn-cli", "--features", "cuda", "--bin", "nfn"])),
        Step::new(
            "build-bench",
            240,
            &release(&["nfn-bench", "--features", "cuda", "--bin", "bench_layers"]),
        ),
        Step::new("build-fit-bench", 180, &release(&["nfn-datasets", "--example", "fit_bench"])),
        Step::new("info", 60, &[nfn, "--device", device, "info"]).needs(&["build-nfn"]),
        Step::new(
            "test",
            420,
            &["cargo", "test", "--workspace", "--features", "nfn-weightspace/testing,nfn-cli/cuda"],
        )
        .env("NFN_TEST_DEVICE", device)
        // The `cuda` feature links libtorch_cuda into nfn-cli's targets only; the library crates'
        // test binaries (where the symmetry suites live) need it too, or LibTorch sees no GPU.
        // Cargo joins this target-triple entry with the config's `cfg(target_os = "linux")`
        // rustflags (the rpath), checked with `cargo build -v`.
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS", CUDA_LINK_ARG),
        Step::new(
            "bench-layers",
            240,
            &["cargo", "xtask", "bench", "layers", "--batches", "128", "--out", &layers],
        )
        .env(dev, device)
        .needs(&["build-bench"]),
        Step::new(
            "bench-inr2array",
            120,
            &["cargo", "xtask", "bench", "inr2array", "--out", &inr2array],
        )
        .env(dev, device)
        .needs(&["build-bench"]),
        Step::new("bench-fit", 180, &["cargo", "xtask", "bench", "fit", "--out", &fit])
            .env(dev, device)
            .needs(&["build-fit-bench"]),
        Step::new(
            "demo-fit-inrs",
            180,
            &[
                nfn,
                "--device",
                device,
                "fit-inrs",
                "--dataset",
                "fashion-mnist",
                "--limit",
                &limit,
                "--out",
                &inrs,
            ],
        )
        .needs(&["build-nfn"]),
        Step::new("demo-train", 240, &[nfn, "--device", device, "train", &config, "--runs", &runs])
            .needs(&["build-nfn", "demo-fit-inrs"]),
        // The same training with bf16 activations: whether mixed precision pays on this GPU.
        Step::new(
            "demo-train-bf16",
            240,
            &[nfn, "--device", device, "train", &config_bf16, "--runs", &runs],
        )
        .needs(&["build-nfn", "demo-fit-inrs"]),
    ]
    .into_iter()
    .map(|step| Step { timeout_s: step.timeout_s.min(args.budget_s), ..step })
    .collect()
}

/// The steps for a `--pack` bundle in `dir`: no set-up and no builds; the test suites are the
/// bundle's test binaries, with libtorch_cuda preloaded (they were linked without it).
fn prebuilt_steps(args: &Args, device: &str, dir: &str) -> Vec<Step> {
    let s = |p: &str| format!("{SCRATCH}/{p}");
    let (layers, inr2array) = (s("layers.md"), s("inr2array.md"));
    let (inrs, runs) = (s("inrs"), s("runs"));
    let config = s(&format!("{}.toml", run_name(None)));
    let config_bf16 = s(&format!("{}.toml", run_name(Some("bf16"))));
    let limit = super::demo::DEMO_LIMIT.to_string();
    let (nfn, xtask) = (format!("{dir}/bin/nfn"), format!("{dir}/bin/xtask"));
    let data = format!("{dir}/fashion-mnist");
    let tests = format!(
        "rc=0; for t in {dir}/bin/tests/*; do echo \"== $t\"; \"$t\" || rc=1; done; exit $rc"
    );
    let check_python = "import torch, nfn; print('torch', torch.__version__, 'cuda', \
                        torch.cuda.is_available(), 'reference package', nfn.__file__)";
    let python = crate::util::python();
    vec![
        Step::new("nvidia-smi", 30, &["nvidia-smi"]),
        Step::new("python", 60, &[&python.to_string_lossy(), "-c", check_python]),
        Step::new("info", 60, &[&nfn, "--device", device, "info"]),
        Step::new(
            "demo-fit-inrs",
            150,
            &[
                &nfn,
                "--device",
                device,
                "fit-inrs",
                "--dataset",
                "fashion-mnist",
                "--data-dir",
                &data,
                "--limit",
                &limit,
                "--out",
                &inrs,
            ],
        ),
        Step::new(
            "demo-train",
            150,
            &[&nfn, "--device", device, "train", &config, "--runs", &runs],
        )
        .needs(&["demo-fit-inrs"]),
        Step::new(
            "demo-train-bf16",
            150,
            &[&nfn, "--device", device, "train", &config_bf16, "--runs", &runs],
        )
        .needs(&["demo-fit-inrs"]),
        Step::new("test", 180, &["bash", "-c", &tests])
            .env("NFN_TEST_DEVICE", device)
            .env("LD_PRELOAD", "libtorch_cuda.so"),
        Step::new(
            "bench-layers",
            240,
            &[&xtask, "bench", "layers", "--prebuilt", dir, "--batches", "128", "--out", &layers],
        ),
        Step::new(
            "bench-inr2array",
            120,
            &[&xtask, "bench", "inr2array", "--prebuilt", dir, "--out", &inr2array],
        ),
    ]
    .into_iter()
    .map(|step| Step { timeout_s: step.timeout_s.min(args.budget_s), ..step })
    .collect()
}

/// The environment every step of a `--prebuilt` run shares: the machine's `torch/lib` on
/// `LD_LIBRARY_PATH` (the bundle's binaries carry the build machine's path), the bundle's
/// reference package on `PYTHONPATH`, the Python and the project root for the xtask children.
fn prebuilt_env(dir: &Path) -> Result<Vec<(String, String)>> {
    let python = crate::util::python();
    let code = "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))";
    let Some(lib) = crate::util::output(Command::new(&python).args(["-c", code])) else {
        bail!(
            "{} cannot import torch: the GPU check needs this machine's PyTorch",
            python.display()
        );
    };
    let join = |var: &str, first: String| match std::env::var(var) {
        Ok(rest) if !rest.is_empty() => format!("{first}:{rest}"),
        _ => first,
    };
    Ok(vec![
        ("LD_LIBRARY_PATH".into(), join("LD_LIBRARY_PATH", lib)),
        (
            "PYTHONPATH".into(),
            join("PYTHONPATH", root().join(dir).join("py").display().to_string()),
        ),
        (crate::util::PYTHON_ENV.into(), python.display().to_string()),
        (crate::util::ROOT_ENV.into(), root().display().to_string()),
    ])
}

/// Write the demo's NFT config with a fixed step budget (and a time limit as a guard) to
/// `target/gpu-check/demo_nft.toml`, reading the INRs the check fits.
fn write_demo_config(steps: u64, precision: Option<&str>) -> Result<PathBuf> {
    let src = root().join(DEMO_CONFIG);
    let text = std::fs::read_to_string(&src).with_context(|| format!("reading {src:?}"))?;
    let mut cfg: toml::Table = text.parse().with_context(|| format!("parsing {src:?}"))?;
    cfg.insert("name".into(), run_name(precision).into());
    let table = |cfg: &mut toml::Table, key: &str| -> Result<toml::Table> {
        match cfg.remove(key) {
            Some(toml::Value::Table(t)) => Ok(t),
            _ => bail!("{src:?} has no [{key}] table"),
        }
    };
    let mut data = table(&mut cfg, "data")?;
    data.insert("inrs".into(), format!("{SCRATCH}/inrs").into());
    cfg.insert("data".into(), data.into());
    let mut trainer = table(&mut cfg, "trainer")?;
    trainer.insert("steps".into(), i64::try_from(steps)?.into());
    trainer.insert("time_limit_minutes".into(), 3.0.into());
    cfg.insert("trainer".into(), trainer.into());
    if let Some(p) = precision {
        let mut model = table(&mut cfg, "model")?;
        model.insert("precision".into(), p.into());
        cfg.insert("model".into(), model.into());
    }
    let path = root().join(SCRATCH).join(format!("{}.toml", run_name(precision)));
    std::fs::create_dir_all(root().join(SCRATCH))?;
    let header = format!(
        "# Written by `cargo xtask gpu-check` from {DEMO_CONFIG}: {steps} steps (3-minute guard), INRs \
         fitted by the check, precision {}.\n",
        precision.unwrap_or("fp32")
    );
    std::fs::write(&path, header + &toml::to_string(&cfg)?)
        .with_context(|| format!("writing {path:?}"))?;
    Ok(path)
}

/// Run one step with its output in `log`; kill its process group when it exceeds `timeout_s`.
fn run_step(step: &Step, env: &[(String, String)], log: &Path, timeout_s: u64) -> Result<Outcome> {
    let file = File::create(log).with_context(|| format!("creating {log:?}"))?;
    let mut cmd = step.command();
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.envs(step.env.iter().map(|(k, v)| (*k, v)));
    cmd.current_dir(root())
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return Ok(Outcome::CannotStart(e.to_string())),
    };
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(if status.success() { Outcome::Passed } else { Outcome::Failed(status) });
        }
        if start.elapsed() >= Duration::from_secs(timeout_s) {
            // the group holds what the step started (cargo's rustc, test binaries, python)
            let _ = Command::new("kill").args(["-KILL", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Outcome::TimedOut(timeout_s));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The last `n` lines of a log, each cut to 300 characters (LibTorch errors carry a whole C++
/// stack trace on one line).
fn tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let cut = |l: &&str| match l.char_indices().nth(300) {
        Some((i, _)) => format!("{} [...]", &l[..i]),
        None => l.to_string(),
    };
    lines[lines.len().saturating_sub(n)..].iter().map(cut).collect::<Vec<_>>().join("\n")
}

/// The demo run's name: the fp32 run, or the one with `precision`.
fn run_name(precision: Option<&str>) -> String {
    precision.map_or(RUN_NAME.to_string(), |p| format!("{RUN_NAME}_{p}"))
}

/// A demo run's test accuracy and steps from its `summary.json`, as one line.
fn demo_result(precision: Option<&str>) -> String {
    let path = root().join(SCRATCH).join("runs").join(run_name(precision)).join("summary.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return format!("no {} (the run did not finish)", path.display());
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return format!("{} is not JSON", path.display());
    };
    let accuracy = v["test"].as_array().and_then(|ms| {
        ms.iter().find(|m| m["metric"] == "accuracy").and_then(|m| m["value"].as_f64())
    });
    format!(
        "test accuracy {}, {} steps in {:.1} s of training, {} / {} train / test INRs",
        accuracy.map_or("?".into(), |a| format!("{a:.1}%")),
        v["budget"]["steps"],
        v["budget"]["train_seconds"].as_f64().unwrap_or(f64::NAN),
        v["data"]["train"],
        v["data"]["test"],
    )
}

/// The report: steps, nvidia-smi, `nfn info`, the bench tables, the demo's result and failures.
fn report(
    args: &Args,
    accel: &gpu::Accel,
    steps: &[Step],
    results: &[(Outcome, f64)],
    logs: &[PathBuf],
    total: f64,
) -> String {
    let mut md = format!(
        "# GPU check\n\nGenerated by `cargo xtask gpu-check`; do not edit by hand. Machine: {} ({} \
         logical CPUs), {}; device `{}`. Total {total:.0} s (budget {} s).\n\n\
         | # | step | command | wall s | timeout s | result |\n|---|---|---|---|---|---|\n",
        super::bench::cpu_name(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        accel.gpu_summary(),
        accel.device(),
        args.budget_s,
    );
    for (i, (step, (outcome, secs))) in steps.iter().zip(results).enumerate() {
        let _ = writeln!(
            md,
            "| {} | {} | `{}` | {secs:.1} | {} | {} |",
            i + 1,
            step.name,
            step.shell(),
            step.timeout_s,
            outcome.text()
        );
    }
    let log_of = |name: &str| {
        steps.iter().position(|s| s.name == name).map(|i| tail(&logs[i], 200)).unwrap_or_default()
    };
    let _ = write!(
        md,
        "\n## nvidia-smi\n\n```text\n{}\n```\n\n## nfn info\n\n```text\n{}\n```\n\n\
         ## Demo: NFT on FashionMNIST INRs ({} training images), {} steps\n\n\
         - fp32: {}\n- bf16 (`precision = \"bf16\"`, fp32 master weights): {}\n",
        log_of("nvidia-smi"),
        log_of("info"),
        super::demo::DEMO_LIMIT,
        args.train_steps,
        demo_result(None),
        demo_result(Some("bf16"))
    );
    for (title, file) in [("layers", "layers.md"), ("inr2array", "inr2array.md"), ("fit", "fit.md")]
    {
        let path = root().join(SCRATCH).join(file);
        let table = std::fs::read_to_string(&path).map_or_else(
            |_| "not written (see the step's result)".into(),
            |t| {
                // its headings one level below the report's sections
                let lines =
                    t.lines().map(|l| if l.starts_with('#') { format!("##{l}") } else { l.into() });
                lines.collect::<Vec<_>>().join("\n")
            },
        );
        let _ = write!(md, "\n## Bench {title}\n\n{table}\n");
    }
    for ((step, (outcome, _)), log) in steps.iter().zip(results).zip(logs) {
        if !outcome.ok() && !matches!(outcome, Outcome::Skipped(_)) {
            let _ = write!(
                md,
                "\n## {} failed: last lines of its log\n\n```text\n{}\n```\n",
                step.name,
                tail(log, 40)
            );
        }
    }
    md
}

/// `--dry-run`: the steps and their commands, then the cheap checks.
fn dry_run(args: &Args, steps: &[Step]) -> Result<()> {
    println!("gpu-check steps (total budget {} s):", args.budget_s);
    for (i, step) in steps.iter().enumerate() {
        let skip = if args.skip.iter().any(|s| s == step.name) { " [--skip]" } else { "" };
        println!("{:>2}. {:<16} {:>4} s  {}{skip}", i + 1, step.name, step.timeout_s, step.shell());
    }
    for precision in [None, Some("bf16")] {
        let config = write_demo_config(args.train_steps, precision)?;
        eprintln!("xtask: wrote {}", config.display());
    }
    sh(cargo().args([
        "check",
        "-p",
        "nfn-cli",
        "-p",
        "nfn-bench",
        "--features",
        "nfn-cli/cuda,nfn-bench/cuda",
    ]))?;
    sh(Command::new("python3").args(["-m", "py_compile"]).args(BENCH_SCRIPTS))?;
    eprintln!("xtask: dry run passed (nothing heavy was run)");
    Ok(())
}

/// Run the check, or with `--dry-run` only show and check it.
pub fn run(args: &Args) -> Result<()> {
    if let Some(dir) = &args.pack {
        return super::gpu_pack::pack(dir, super::demo::DEMO_LIMIT as usize);
    }
    let accel =
        if args.rehearse { gpu::Accel::Cpu { reason: "--rehearse".into() } } else { gpu::accel()? };
    eprintln!("xtask: {}", accel.line("nfn and the benches"));
    let names = steps(args, "cuda").iter().map(|s| s.name).collect::<Vec<_>>();
    if let Some(bad) = args.skip.iter().find(|s| !names.contains(&s.as_str())) {
        bail!("--skip {bad}: no such step; steps: {}", names.join(", "));
    }
    if args.dry_run {
        return dry_run(args, &steps(args, if accel.is_cuda() { accel.device() } else { "cuda" }));
    }
    if !accel.is_cuda() && !args.rehearse {
        bail!(
            "gpu-check needs an NVIDIA GPU: {}; `--dry-run` checks the build without one",
            accel.line("nfn")
        );
    }
    let steps = steps(args, accel.device());
    let env = match &args.prebuilt {
        Some(dir) => prebuilt_env(dir)?,
        None => Vec::new(),
    };
    for (k, v) in &env {
        eprintln!("xtask: every step runs with {k}={v}");
    }
    let scratch = root().join(SCRATCH);
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("logs"))?;
    write_demo_config(args.train_steps, None)?;
    write_demo_config(args.train_steps, Some("bf16"))?;
    let start = Instant::now();
    let (mut results, mut logs) = (Vec::new(), Vec::new());
    let mut passed: Vec<&str> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let log = scratch.join("logs").join(format!("{:02}-{}.log", i + 1, step.name));
        let left = args.budget_s.saturating_sub(start.elapsed().as_secs());
        let tag = format!("[{}/{}] {}", i + 1, steps.len(), step.name);
        let t = Instant::now();
        let outcome = if args.skip.iter().any(|s| s == step.name) {
            Outcome::Skipped("--skip".into())
        } else if let Some(need) = step.needs.iter().find(|n| !passed.contains(n)) {
            Outcome::Skipped(format!("needs {need}"))
        } else if left < 5 {
            Outcome::Skipped("budget spent".into())
        } else {
            let timeout = step.timeout_s.min(left);
            eprintln!("xtask: {tag}: {} (timeout {timeout} s)", step.shell());
            run_step(step, &env, &log, timeout)?
        };
        let secs = t.elapsed().as_secs_f64();
        eprintln!("xtask: {tag}: {} in {secs:.1} s (log {})", outcome.text(), log.display());
        if !outcome.ok() && !matches!(outcome, Outcome::Skipped(_)) {
            eprintln!("{}", tail(&log, 20));
        }
        if matches!(outcome, Outcome::Passed) {
            passed.push(step.name);
        }
        results.push((outcome, secs));
        logs.push(log);
    }
    let total = start.elapsed().as_secs_f64();
    println!("\nWhere the time went ({total:.0} s of a {} s budget):", args.budget_s);
    println!("| step | wall s | share | result |\n|---|---|---|---|");
    for (step, (outcome, secs)) in steps.iter().zip(&results) {
        let share = 100.0 * secs / total.max(1e-9);
        println!("| {} | {secs:.1} | {share:.0}% | {} |", step.name, outcome.text());
    }
    let out = root().join(&args.out);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {dir:?}"))?;
    }
    let mut md = report(args, &accel, &steps, &results, &logs, total);
    if let Some(dir) = &args.prebuilt {
        let pack = std::fs::read_to_string(root().join(dir).join("PACK.json")).unwrap_or_default();
        let shared = env.iter().map(|(k, v)| format!("- `{k}={v}`\n")).collect::<String>();
        let _ = write!(
            md,
            "\n## The bundle\n\nThe binaries were built elsewhere by `cargo xtask gpu-check --pack` \
             and run here against this machine's PyTorch; every step had\n\n{shared}\n\
             `PACK.json`:\n\n```json\n{pack}\n```\n"
        );
    }
    std::fs::write(&out, md).with_context(|| format!("writing {out:?}"))?;
    eprintln!("xtask: wrote {}", out.display());
    let failed: Vec<&str> =
        steps.iter().zip(&results).filter(|(_, (o, _))| !o.ok()).map(|(s, _)| s.name).collect();
    if !failed.is_empty() {
        bail!("gpu-check: {} failed or did not run: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}
