//! `cargo xtask fuzz <target|all> [--time S] [--runs N] [--cmin]`: run the cargo-fuzz targets of
//! `fuzz/` (one per reader, `crates/nfn-fuzz`), installing `cargo-fuzz` first if it is missing
//! (nightly must be installed). Each run reads `fuzz/seeds/<target>/` (written by our own writers),
//! `fuzz/regressions/<target>/` (every finding, kept for good) and `fuzz/corpus/<target>/`, and adds
//! what it finds to the corpus; `--cmin` then minimises the corpus (the committed corpora are
//! minimised; seeds and regressions are never touched). The figures of
//! every target's last run (executions, seconds, coverage, corpus size, findings) go to
//! `fuzz/results/<target>.json`, and `docs/bench/fuzz.md` is regenerated from all of them.
//!
//! A finding (a crash, a panic, a timeout or an out-of-memory) stops the run: libFuzzer writes the
//! input to `fuzz/artifacts/<target>/`, and the run is recorded with it. Fix it, copy the input to
//! `fuzz/regressions/<target>/<what>` so that the replay test keeps it, and rerun.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::util::{output, root, run as sh};

/// Targets, as in `crates/nfn-fuzz/src/lib.rs` (the replay test checks that each has a binary).
const TARGETS: [&str; 13] = [
    "pth",
    "idx",
    "cifar",
    "svhn_mat",
    "npy",
    "npz",
    "inr_shard",
    "inr_shard_payload",
    "inr_manifest",
    "zoo_layout",
    "zoo_metrics",
    "checkpoint",
    "config",
];

/// Options of `fuzz`.
#[derive(clap::Args)]
pub struct Args {
    /// A target (pth, idx, cifar, svhn_mat, npy, npz, inr_shard, inr_shard_payload, inr_manifest,
    /// zoo_layout, zoo_metrics, checkpoint, config) or `all`.
    pub target: String,
    /// Stop after this many seconds (per target).
    #[arg(long, default_value_t = 600)]
    pub time: u64,
    /// Stop after this many executions (per target), whichever comes first.
    #[arg(long, default_value_t = 1_000_000)]
    pub runs: u64,
    /// Minimise the corpus afterwards (`cargo fuzz cmin`).
    #[arg(long)]
    pub cmin: bool,
    /// Only rewrite docs/bench/fuzz.md from fuzz/results/.
    #[arg(long)]
    pub table_only: bool,
}

/// The figures of one target's run, as libFuzzer reports them.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    target: String,
    executions: u64,
    seconds: f64,
    exec_per_s: u64,
    /// Coverage counters hit (libFuzzer's `cov`) and features (`ft`).
    cov: u64,
    ft: u64,
    /// Inputs in the corpus after the run.
    corpus: u64,
    peak_rss_mb: u64,
    /// Inputs that crashed, panicked, timed out or ran out of memory (artifact paths).
    findings: Vec<String>,
    finished: String,
    machine: String,
}

/// Run the fuzzers and regenerate the table.
pub fn run(args: &Args) -> Result<()> {
    if !args.table_only {
        let targets: Vec<&str> = match args.target.as_str() {
            "all" => TARGETS.to_vec(),
            t if TARGETS.contains(&t) => vec![t],
            t => bail!("no fuzz target {t:?}; targets: {}, or all", TARGETS.join(", ")),
        };
        ensure_tools()?;
        for target in targets {
            fuzz_one(target, args)?;
        }
    }
    write_table()
}

/// nightly (needed by libFuzzer's instrumentation) and cargo-fuzz, installed if missing.
fn ensure_tools() -> Result<()> {
    if output(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])).is_none() {
        bail!("fuzzing needs the nightly toolchain: rustup toolchain install nightly");
    }
    if output(Command::new("cargo").args(["fuzz", "--version"])).is_none() {
        eprintln!("xtask: installing cargo-fuzz");
        sh(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// One target: build, run, record, and minimise if asked.
fn fuzz_one(target: &str, args: &Args) -> Result<()> {
    let fuzz = root().join("fuzz");
    let corpus = fuzz.join("corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    // the fuzz binaries get cargo-fuzz's RUSTFLAGS, not the project's rpath: LibTorch by path
    let lib = root().join(".libtorch/lib");
    let fuzz_cmd = |sub: &str| {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&fuzz)
            .args([
                "+nightly",
                "fuzz",
                sub,
                "--sanitizer",
                "none",
                "--release",
                "--debug-assertions",
            ])
            .arg(target)
            .env("LD_LIBRARY_PATH", &lib);
        cmd
    };
    eprintln!("xtask: fuzzing {target} for at most {} s or {} runs", args.time, args.runs);
    let start = Instant::now();
    // new inputs go to the corpus; the seeds and the regressions are read too, never rewritten
    let extra: Vec<PathBuf> = ["seeds", "regressions"]
        .iter()
        .map(|kind| fuzz.join(kind).join(target))
        .filter(|dir| dir.is_dir())
        .collect();
    let out = fuzz_cmd("run")
        .arg(&corpus)
        .args(&extra)
        .args([
            "--",
            &format!("-max_total_time={}", args.time),
            &format!("-runs={}", args.runs),
            "-print_final_stats=1",
            "-rss_limit_mb=4096",
            "-timeout=20",
        ])
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("starting cargo fuzz run {target}"))?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let log_path = root().join("fuzz/results").join(format!("{target}.log"));
    std::fs::create_dir_all(log_path.parent().expect("a parent"))?;
    std::fs::write(&log_path, &log)?;
    let findings: Vec<String> = log
        .lines()
        .filter_map(|l| l.split("Test unit written to ").nth(1))
        .map(|p| p.trim().to_string())
        .collect();
    if !out.status.success() && findings.is_empty() {
        bail!("cargo fuzz run {target} failed with {} (log {})", out.status, log_path.display());
    }
    let stat = |key: &str| -> u64 {
        log.lines()
            .rev()
            .filter_map(|l| l.strip_prefix(&format!("stat::{key}:")))
            .find_map(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    // the last status line: `#1000000 DONE cov: 1234 ft: 2345 corp: 67/8901b ...`
    let status = log.lines().rev().find(|l| l.starts_with('#') && l.contains("cov:")).unwrap_or("");
    let field = |key: &str| -> u64 {
        let words: Vec<&str> = status.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
            .and_then(|v| v.split('/').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let record = Record {
        target: target.to_string(),
        executions: stat("number_of_executed_units"),
        seconds: start.elapsed().as_secs_f64(),
        exec_per_s: stat("average_exec_per_sec"),
        cov: field("cov:"),
        ft: field("ft:"),
        corpus: std::fs::read_dir(&corpus)?.count() as u64,
        peak_rss_mb: stat("peak_rss_mb"),
        findings: findings.clone(),
        finished: output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
            .unwrap_or_default(),
        machine: format!(
            "{} ({} logical CPUs)",
            super::bench::cpu_name(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
    };
    let path = root().join("fuzz/results").join(format!("{target}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&record)? + "\n")?;
    eprintln!(
        "xtask: {target}: {} executions in {:.0} s, cov {}, corpus {}, {} finding(s)",
        record.executions,
        record.seconds,
        record.cov,
        record.corpus,
        findings.len()
    );
    if !findings.is_empty() {
        bail!("{target}: finding(s) {}; see {}", findings.join(", "), log_path.display());
    }
    if args.cmin {
        let status =
            fuzz_cmd("cmin").arg(&corpus).stdout(Stdio::null()).stderr(Stdio::null()).status()?;
        if !status.success() {
            bail!("cargo fuzz cmin {target} failed with {status}");
        }
        eprintln!(
            "xtask: {target}: corpus minimised to {} inputs",
            std::fs::read_dir(&corpus)?.count()
        );
    }
    Ok(())
}

/// `docs/bench/fuzz.md` from `fuzz/results/*.json`.
fn write_table() -> Result<()> {
    let mut md = String::from(
        "# Fuzzing the readers\n\nGenerated by `cargo xtask fuzz`; do not edit by hand. One row per \
         target of `crates/nfn-fuzz` (libFuzzer through cargo-fuzz, no sanitizer, release build with \
         debug assertions, so integer overflow panics count as findings), its last run. \
         `cov` = coverage counters reached, `corpus` = inputs the run kept (before `--cmin`; the committed corpus is \
         minimised with `--cmin`); CI replays every corpus input (`crates/nfn-fuzz/tests/corpora.rs`). \
         What the readers promise: [docs/reliability.md](../reliability.md).\n\n\
         | target | executions | seconds | exec/s | cov | ft | corpus | peak RSS MB | findings | finished | machine |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for target in TARGETS {
        let path: PathBuf = root().join("fuzz/results").join(format!("{target}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            let _ = writeln!(md, "| {target} | not run | | | | | | | | | |");
            continue;
        };
        let r: Record = serde_json::from_str(&text).with_context(|| format!("parsing {path:?}"))?;
        let findings =
            if r.findings.is_empty() { "none".to_string() } else { r.findings.join("<br>") };
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.target,
            r.executions,
            r.seconds,
            r.exec_per_s,
            r.cov,
            r.ft,
            r.corpus,
            r.peak_rss_mb,
            findings,
            r.finished,
            r.machine
        );
    }
    let out = root().join("docs/bench/fuzz.md");
    std::fs::write(&out, md).with_context(|| format!("writing {out:?}"))?;
    eprintln!("xtask: wrote {}", out.display());
    Ok(())
}
