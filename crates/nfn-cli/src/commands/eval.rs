//! `nfn eval <run>`: evaluate a run's best checkpoint on its test split, whatever its kind.

use std::path::PathBuf;

use anyhow::Result;
use nft_model::Run;

/// Options of `eval`.
#[derive(clap::Args)]
pub struct Args {
    /// The run folder (holds config.toml and model.safetensors).
    pub run: PathBuf,
    /// Print the metrics as one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// Evaluate and print every test metric.
pub fn run(args: &Args) -> Result<()> {
    let eval = crate::experiments::eval(&args.run)?;
    if args.json {
        println!("{}", serde_json::to_string(&eval)?);
    } else {
        println!("{}", crate::driver::describe_eval(&Run::open(&args.run)?, &eval));
    }
    Ok(())
}
