//! `nfn inr-stats --inrs <INR set | reference .pth folder | .npz>`: the per-layer weight statistics
//! of a set of INRs (each INR's mean |W_l|: 0.5% quantile, median, 99.5% quantile per layer), the
//! range `nfn predict` compares INRs with before trusting a model on them. `--json` prints it in the
//! form model cards record (`weight_range`).

use std::path::PathBuf;

use anyhow::Result;
use nfn_datasets::inr_set::MANIFEST_FILE;
use nfn_datasets::{InrSet, Split};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};

use crate::inrs_input::{read_inrs, StatRange};

/// Options of `inr-stats`.
#[derive(clap::Args)]
pub struct Args {
    /// An INR set folder, a reference SIREN folder or a `.npz`.
    #[arg(long)]
    pub inrs: PathBuf,
    /// The splits of an INR set to describe (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "train",
          value_parser = super::predict::parse_split)]
    pub splits: Vec<Split>,
    /// Print one JSON object (`lo`, `median`, `hi`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Describe the INRs.
///
/// # Errors
/// Unreadable INRs, named.
pub fn run(args: &Args) -> Result<()> {
    let spec = if args.inrs.join(MANIFEST_FILE).exists() {
        InrSet::open(&args.inrs)?.manifest.spec
    } else if args.inrs.extension().is_some_and(|e| e == "npz") {
        WeightSpaceFeatures::read_npz(&args.inrs)?.spec()?
    } else {
        NetworkSpec::siren(1)
    };
    let inputs = read_inrs(&args.inrs, &spec, &args.splits)?;
    let range = StatRange::of(&inputs.wsfeat);
    if args.json {
        println!("{}", serde_json::to_string(&range)?);
    } else {
        println!("{} INRs of {}", inputs.rows.len(), args.inrs.display());
        println!("| layer | mean abs weight: 0.5% | median | 99.5% |\n|---|---|---|---|");
        for l in 0..range.lo.len() {
            println!("| W{l} | {:.5} | {:.5} | {:.5} |", range.lo[l], range.median[l], range.hi[l]);
        }
    }
    Ok(())
}
