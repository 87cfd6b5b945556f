//! `cargo xtask reproduce <config> [--dry-run]`: take an experiment config from nothing to its
//! evaluated result by chaining the other commands (download, fit or convert, train, eval), with
//! its encoder run first for an `inr2array_classify` config.
//!
//! Example: `cargo xtask reproduce inr2array_mnist_cls --dry-run` prints the numbered steps and
//! their command lines; without `--dry-run` they run in order. Every step is resumable, so after
//! a stop (a failed step, a manual download, Ctrl-C) the same command continues where it stopped.
//! The plan ([`plan()`]) reads configs only.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use clap::Parser;

use super::nfn::Nfn;

mod config;
mod data;
mod plan;
mod step;

pub use config::config_path;
pub use plan::{plan, PlanEnv};
pub use step::{Runner, Step};

/// Options of `reproduce`.
#[derive(clap::Args)]
pub struct Args {
    /// The experiment config: `xtask/configs/<name>.toml` (any path, from the workspace root) or
    /// just `<name>`.
    pub config: String,
    /// Print the numbered steps and their command lines; run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Plan, then print the plan (`--dry-run`) or run its steps in order, stopping at the first
/// failure with an error naming the step.
pub fn run(args: &Args) -> Result<()> {
    let config = config_path(&args.config);
    let steps = plan(&config, &PlanEnv::detect())?;
    if args.dry_run {
        print!("{}", format_plan(&config, &steps));
        return Ok(());
    }
    eprint!("{}", format_plan(&config, &steps));
    let n = steps.len();
    for (i, step) in steps.iter().enumerate() {
        let line = step.command_line();
        eprintln!("\nxtask: reproduce step {}/{n}: {}\nxtask:   {line}", i + 1, step.what);
        run_step(step).with_context(|| {
            format!(
                "reproduce step {}/{n} ({}) failed: `{line}`; rerun `cargo xtask reproduce {}` \
                 to continue from there",
                i + 1,
                step.what,
                args.config
            )
        })?;
    }
    eprintln!("\nxtask: reproduce {}: all {n} steps done", config.display());
    Ok(())
}

/// The numbered plan: each step's what, then its exact command line.
pub fn format_plan(config: &Path, steps: &[Step]) -> String {
    let mut out = format!(
        "reproduce {}: {} steps (each resumable: rerun to continue after a stop)\n",
        config.display(),
        steps.len()
    );
    for (i, step) in steps.iter().enumerate() {
        out += &format!("{:>3}. {}\n     {}\n", i + 1, step.what, step.command_line());
    }
    if steps.iter().any(|s| s.runner == Runner::Nfn) {
        out += "(`nfn` is the release binary: cargo run --release -p nfn-cli --bin nfn -- ...)\n";
    }
    out
}

/// Run one step: an xtask step through the same command functions as its command line (parsed
/// by xtask's own clap parser), an `nfn` step through [`Nfn`].
fn run_step(step: &Step) -> Result<()> {
    match step.runner {
        Runner::Xtask => {
            let words = std::iter::once("cargo xtask").chain(step.argv.iter().map(String::as_str));
            let cli = crate::Cli::try_parse_from(words)
                .map_err(|e| anyhow!("`{}` is not an xtask command: {e}", step.command_line()))?;
            crate::dispatch(cli.command)
        }
        Runner::Nfn => Nfn::prepare()?.run(&step.argv),
    }
}

#[cfg(test)]
mod tests;
