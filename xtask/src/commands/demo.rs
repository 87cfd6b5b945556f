//! `cargo xtask demo`: the main job on a built-in default. It fits SIREN INRs to a FashionMNIST subset,
//! trains three classifiers of different kinds on them (CPU-sized configs `xtask/configs/demo_*.toml`:
//! ProbeGen, which probes each network's function; the NFT, which reads its weights with
//! permutation-equivariant attention; and the MLP on the flattened weights as the baseline), and
//! prints their test accuracies and training times with a line on what each model is, what the
//! shipped pretrained model gets on the same test INRs, and the elapsed time. Everything runs
//! through the release `nfn` binary (a CUDA build where there is a GPU; its first line says which
//! device); finished steps are reused when it is run again.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::util::root;

/// The demo's INR data set.
pub const DEMO_INRS: &str = "data/inrs/fashion-mnist-demo";
/// Training images the demo fits by default (validation and test get the same fraction of theirs).
pub const DEMO_LIMIT: i64 = 3000;
/// The demo's experiment configs, in the order they are trained, each with what its model is.
pub const DEMO_CONFIGS: [(&str, &str); 3] = [
    (
        "xtask/configs/demo_probegen.toml",
        "ProbeGen: runs each SIREN at 64 learned points and classifies its outputs (invariant by \
         construction; cheap steps)",
    ),
    (
        "xtask/configs/demo_nft.toml",
        "NFT: permutation-equivariant attention over the weights themselves, pooled to an \
         invariant read-out (trained for 5 minutes)",
    ),
    (
        "xtask/configs/demo_mlp.toml",
        "MLP on the flattened weights: the baseline that ignores the symmetry",
    ),
];

/// Options of `demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Training images to fit (validation and test get the same fraction of theirs).
    #[arg(long, default_value_t = DEMO_LIMIT)]
    pub limit: i64,
    /// Start over: delete the demo's INR set and runs first.
    #[arg(long)]
    pub fresh: bool,
}

/// The fields of a run's `summary.json` the demo prints (written by `nfn train`).
#[derive(Deserialize)]
struct Summary {
    experiment: String,
    model: String,
    test: Vec<MetricRecord>,
    data: DataRecord,
    budget: BudgetRecord,
}

#[derive(Deserialize)]
struct MetricRecord {
    metric: String,
    value: f64,
}

#[derive(Deserialize)]
struct DataRecord {
    train: i64,
    test: i64,
}

#[derive(Deserialize)]
struct BudgetRecord {
    steps: u64,
    train_seconds: f64,
}

fn run_name(config: &str) -> String {
    Path::new(config).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Run the demo.
pub fn run(args: &Args) -> Result<()> {
    let start = Instant::now();
    let nfn = super::nfn::Nfn::prepare()?;
    if args.fresh {
        for dir in std::iter::once(DEMO_INRS.to_string())
            .chain(DEMO_CONFIGS.iter().map(|(c, _)| format!("data/runs/{}", run_name(c))))
        {
            let _ = std::fs::remove_dir_all(root().join(dir));
        }
    }
    let limit = args.limit.to_string();
    nfn.run(&["fit-inrs", "--dataset", "fashion-mnist", "--limit", &limit, "--out", DEMO_INRS])?;
    for (config, _) in DEMO_CONFIGS {
        nfn.run(&["train", config, "--runs", "data/runs"])?;
    }
    println!(
        "\nnfn-rs demo: FashionMNIST INR classification (SIRENs fitted here, CPU-sized models)"
    );
    println!("| model | test accuracy | train / test INRs | steps | train time |");
    println!("|---|---|---|---|---|");
    for (config, _) in DEMO_CONFIGS {
        let path = root().join("data/runs").join(run_name(config)).join("summary.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path:?}"))?;
        let s: Summary =
            serde_json::from_str(&text).with_context(|| format!("parsing {path:?}"))?;
        let accuracy = s.test.iter().find(|m| m.metric == "accuracy").map_or(f64::NAN, |m| m.value);
        println!(
            "| {} ({}) | {:.1}% | {} / {} | {} | {:.1} min |",
            s.model,
            s.experiment,
            accuracy,
            s.data.train,
            s.data.test,
            s.budget.steps,
            s.budget.train_seconds / 60.0
        );
    }
    println!();
    for (config, what) in DEMO_CONFIGS {
        println!("- {}: {what}", run_name(config));
    }
    // The same test INRs through the pretrained model shipped with nfn (trained on more data).
    println!("\nthe shipped pretrained model (crates/nfn-cli/pretrained/fashion-mnist/MODEL.md) on the same test INRs:");
    nfn.run(&[
        "predict",
        "--pretrained",
        "fashion-mnist",
        "--inrs",
        DEMO_INRS,
        "--out",
        "data/runs/demo_pretrained_predictions.csv",
    ])?;
    println!("demo finished in {:.1} min", start.elapsed().as_secs_f64() / 60.0);
    Ok(())
}
