//! `nfn export-inrs --config <classification config> --out <dir>`: the INRs a classification run
//! trains, validates and tests on, as NumPy files for other programs: `<split>.npz` (arrays `W<l>`
//! `[n, 1, out, in]` and `b<l>` `[n, 1, out]`, float32, the layout `nfn predict --inrs` reads) and
//! `<split>_labels.npy` (int64) for train, val and test, exactly as the config's data section
//! selects them (split protocol, augmentation copies, extra training sets; never standardised).
//! `--order-steps N` also writes `train_order_s<seed>.npy` (`[N, batch]` int64): the training rows
//! that `nfn train` draws at each of the first N steps with that seed, so a PyTorch loop can train
//! on the same batches in the same order (`cargo xtask bench learn` does).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nfn_datasets::{InrSplit, Split};
use nfn_weightspace::io::replace_atomically;
use tch::{Device, Kind, Tensor};

use crate::data::{load_splits, EpochBatches};
use crate::experiments::classify::ExperimentConfig;

/// Options of `export-inrs`.
#[derive(clap::Args)]
pub struct Args {
    /// An INR classification config (`task = "inr_classification"`): its `[data]` picks the INRs.
    #[arg(long)]
    pub config: PathBuf,
    /// The folder to write into (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the training order of this many steps (batch size of the config).
    #[arg(long)]
    pub order_steps: Option<u64>,
    /// The seeds of the training orders (default: the config's `trainer.seed`).
    #[arg(long, value_delimiter = ',')]
    pub order_seeds: Option<Vec<u64>>,
}

fn write_npy(t: &Tensor, path: &Path) -> Result<()> {
    replace_atomically(path, |tmp| t.write_npy(tmp).map_err(|e| e.to_string()))
        .map_err(|e| anyhow::anyhow!("writing {path:?}: {e}"))
}

fn export_split(split: &InrSplit, name: &str, out: &Path) -> Result<()> {
    let all = Tensor::arange(split.len(), (Kind::Int64, Device::Cpu));
    let features = split.features(&all)?.to_kind(Kind::Float)?;
    features.write_npz(out.join(format!("{name}.npz")))?;
    write_npy(&split.labels.to_kind(Kind::Int64), &out.join(format!("{name}_labels.npy")))?;
    eprintln!("nfn: {name}: {} INRs", split.len());
    Ok(())
}

/// Write the splits (and orders).
///
/// # Errors
/// A bad config, a missing INR set, an unwritable folder, each named.
pub fn run(args: &Args) -> Result<()> {
    let cfg = ExperimentConfig::read(&args.config)?;
    let splits = load_splits(&cfg.data)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {:?}", args.out))?;
    for (split, name) in [
        (&splits.train, Split::Train.name()),
        (&splits.val, Split::Val.name()),
        (&splits.test, Split::Test.name()),
    ] {
        export_split(split, name, &args.out)?;
    }
    if let Some(steps) = args.order_steps {
        let seeds = args.order_seeds.clone().unwrap_or_else(|| vec![cfg.trainer.seed]);
        for seed in seeds {
            let labels = &splits.train.labels;
            let mut batches = EpochBatches::new(
                &splits.train,
                labels,
                None,
                cfg.data.batch_size,
                seed,
                Device::Cpu,
            );
            let rows: Vec<i64> = (0..steps).flat_map(|s| batches.indices(s).to_vec()).collect();
            let order = Tensor::from_slice(&rows).view([steps as i64, -1]);
            let path = args.out.join(format!("train_order_s{seed}.npy"));
            write_npy(&order, &path)?;
            eprintln!("nfn: wrote {} ({steps} steps of seed {seed})", path.display());
        }
    }
    Ok(())
}
