//! The `nfn` command line: fit or convert INR data sets, train and evaluate weight-space models.
//!
//! `cargo xtask` builds and drives this binary; it can also be run directly
//! (`cargo run --release -p nfn-cli --bin nfn -- --help`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nfn_cli::{commands, driver, one_line};

#[derive(Parser)]
#[command(
    name = "nfn",
    version,
    about = "Weight-space learning with Neural Functional Transformers"
)]
struct Cli {
    /// LibTorch intra-op threads (default: LibTorch's choice, one per core). On a busy machine one
    /// thread per process is often faster than oversubscribed threads.
    #[arg(long, global = true)]
    threads: Option<i32>,
    /// Device to compute on: cpu, cuda (the first GPU) or cuda:N. Default: the `NFN_DEVICE`
    /// environment variable, else the first GPU LibTorch sees, else the CPU.
    #[arg(long, global = true)]
    device: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the LibTorch build, device and thread count.
    Info,
    /// Train an experiment config of any kind (resumes its run folder).
    Train(commands::train::Args),
    /// Evaluate a run's best checkpoint on its test split, whatever its kind.
    Eval(commands::eval::Args),
    /// Parse and validate experiment configs.
    CheckConfig(commands::check_config::Args),
    /// Fit SIREN INRs to an image data set and write a sharded INR data set.
    FitInrs(commands::fit_inrs::Args),
    /// Convert a reference SIREN folder (`.pth` state dicts) into a sharded INR data set.
    ConvertInrs(commands::convert_inrs::Args),
    /// Draw a run's work into a PNG: Inr2Array reconstructions, edits, or predicted against true
    /// CNN accuracy.
    Show(commands::show::Args),
    /// Apply a trained editor to INRs (an INR set or a .npz) and write the edited INRs.
    Edit(commands::edit::Args),
    /// Apply a trained model to networks you bring, as CSV: class probabilities of INRs (an INR
    /// set, a reference .pth folder or a .npz) from an INR classification run, or the test
    /// accuracy of CNNs (a zoo folder or a .npy) from a CNN generalisation run.
    Predict(commands::predict::Args),
    /// Inr2Array latent arrays of INRs (an INR set, a reference .pth folder or a .npz) from a
    /// pretraining run's encoder, as .npy.
    Embed(commands::embed::Args),
    /// Per-layer weight statistics of INRs (the range `predict` checks INRs against).
    InrStats(commands::inr_stats::Args),
    /// Train a zoo of small CNNs (the Small CNN Zoo's architecture and hyperparameter
    /// distributions) and write it in the Small CNN Zoo format (resumable, shardable).
    MakeZoo(commands::make_zoo::Args),
    /// Extract the Inr2Array latents of an `inr2array_classify` config into its encoder run's
    /// cache (shardable).
    Latents(commands::latents::Args),
    /// Check that a set written in parts (`--shard i/n`) is complete: an INR set, a latent cache,
    /// or a zoo (whose parts it merges).
    MergeSet(commands::merge_set::Args),
    /// Rebuild the results pages (one per kind of task) from the runs' summaries.
    Tables(commands::tables::Args),
    /// Learning curves of runs (or of other programs' metrics in the runs' format) in one PNG.
    Curves(commands::curves::Args),
    /// The train/val/test INRs of a classification config as NumPy files (and its training
    /// order), for other programs.
    ExportInrs(commands::export_inrs::Args),
}

/// Run the command; errors print as one line (the cause chain, no backtrace) and exit with 2.
fn main() -> ExitCode {
    nfn_weightspace::runtime::reexec_with_tuned_malloc();
    let cli = Cli::parse();
    if let Some(t) = cli.threads {
        tch::set_num_threads(t);
    }
    if let Err(e) = driver::choose_device(cli.device.as_deref()) {
        eprintln!("nfn: error: {}", one_line(&e));
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Info => commands::info::run(),
        Command::Train(args) => commands::train::run(&args),
        Command::Eval(args) => commands::eval::run(&args),
        Command::CheckConfig(args) => commands::check_config::run(&args),
        Command::FitInrs(args) => commands::fit_inrs::run(&args),
        Command::ConvertInrs(args) => commands::convert_inrs::run(&args),
        Command::Show(args) => commands::show::run(&args),
        Command::Tables(args) => commands::tables::run(&args),
        Command::Edit(args) => commands::edit::run(&args),
        Command::Predict(args) => commands::predict::run(&args),
        Command::Embed(args) => commands::embed::run(&args),
        Command::InrStats(args) => commands::inr_stats::run(&args),
        Command::MakeZoo(args) => commands::make_zoo::run(&args),
        Command::Latents(args) => commands::latents::run(&args),
        Command::MergeSet(args) => commands::merge_set::run(&args),
        Command::Curves(args) => commands::curves::run(&args),
        Command::ExportInrs(args) => commands::export_inrs::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nfn: error: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}
