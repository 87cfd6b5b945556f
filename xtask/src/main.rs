//! `cargo xtask`: the project driver. It links no LibTorch, because it is what installs it.
//!
//! `setup` installs PyTorch 2.11.0 (LibTorch for tch 0.24.0) into `.venv/` and FashionMNIST;
//! `test` runs fmt, clippy, the test suite and the docs; `demo` runs the main job through `nfn`;
//! `reproduce` takes one experiment config from nothing to its evaluated result.
//! Where there is an NVIDIA GPU, `nfn` and the bench binaries are built with `--features cuda`
//! ([`gpu`]); `gpu-check` is the prepared check for such a machine.

mod commands;
mod gpu;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line of `cargo xtask`.
#[derive(Parser)]
#[command(name = "cargo xtask", about = "nfn-rs project tasks")]
struct Cli {
    /// The task to run.
    #[command(subcommand)]
    command: Command,
}

/// The tasks, one file each in `src/commands/`.
#[derive(Subcommand)]
enum Command {
    /// Install LibTorch (PyTorch 2.11.0 in .venv/) and FashionMNIST; idempotent.
    Setup(commands::setup::Args),
    /// The whole suite: setup, fmt --check, clippy -D warnings, tests, the Python package's
    /// pytest suite, docs.
    Test(commands::test::Args),
    /// Build the `nfn_rs` Python package with maturin and install it into .venv (`--test`: then
    /// run its pytest suite).
    Python(commands::python::Args),
    /// The main job on a built-in default, through the `nfn` binary (release build).
    Demo(commands::demo::Args),
    /// Train one experiment config through `nfn train` (resumable).
    Train(commands::train::Args),
    /// Evaluate a run's best checkpoint on its test split.
    Eval(commands::eval::Args),
    /// Fit SIREN INRs to an image set through `nfn fit-inrs` (resumable).
    FitInrs(commands::fit_inrs::Args),
    /// Convert a reference SIREN folder into an INR set through `nfn convert-inrs` (resumable).
    ConvertInrs(commands::convert_inrs::Args),
    /// Rebuild docs/results/*.md from the runs on disk.
    Tables(commands::tables::Args),
    /// PNG of Inr2Array reconstructions of a pretraining run (through `nfn show`).
    Show(commands::show::Args),
    /// Side-by-side benchmarks against the PyTorch reference (`layers`, `inr2array`, `edit`, `fit`,
    /// `zoo`, `learn`, `step`).
    Bench(Box<commands::bench::Args>),
    /// Copy trained runs into the pretrained models shipped with nfn (`crates/nfn-cli/pretrained/`),
    /// with their model card.
    ShipPretrained(commands::ship_pretrained::Args),
    /// Download a data set into data/ (resumable, verified): mnist, fashion-mnist, cifar10, siren-*,
    /// cnn-zoo-*.
    Download(commands::download::Args),
    /// The prepared check for a machine with an NVIDIA GPU: CUDA build, tests on the GPU, the
    /// layers/inr2array/fit benches on the GPU and a step-budget demo training, each timed and with a
    /// timeout; writes one report (default docs/bench/gpu.md). `--dry-run` checks it without a GPU.
    GpuCheck(commands::gpu_check::Args),
    /// Fuzz a reader (or `all`) with cargo-fuzz from its saved corpus, record executions, coverage
    /// and findings in fuzz/results/ and docs/bench/fuzz.md; installs cargo-fuzz if missing.
    Fuzz(commands::fuzz::Args),
    /// Take an experiment config from nothing to its evaluated result: download, fit or convert,
    /// train (its encoder run first), eval; resumable. `--dry-run` prints the numbered steps.
    Reproduce(commands::reproduce::Args),
}

/// Run one command.
fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Setup(args) => commands::setup::run(&args),
        Command::Test(args) => commands::test::run(&args),
        Command::Python(args) => commands::python::run(&args),
        Command::Demo(args) => commands::demo::run(&args),
        Command::Train(args) => commands::train::run(&args),
        Command::Eval(args) => commands::eval::run(&args),
        Command::FitInrs(args) => commands::fit_inrs::run(&args),
        Command::ConvertInrs(args) => commands::convert_inrs::run(&args),
        Command::Tables(args) => commands::tables::run(&args),
        Command::Show(args) => commands::show::run(&args),
        Command::Bench(args) => commands::bench::run(&args),
        Command::Download(args) => commands::download::run(&args),
        Command::ShipPretrained(args) => commands::ship_pretrained::run(&args),
        Command::GpuCheck(args) => commands::gpu_check::run(&args),
        Command::Reproduce(args) => commands::reproduce::run(&args),
        Command::Fuzz(args) => commands::fuzz::run(&args),
    }
}

/// Run the task; errors print as one line (the cause chain, no backtrace) and exit with 2.
fn main() -> ExitCode {
    match dispatch(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<util::Reported>().is_none() {
                eprintln!("xtask: error: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}
