//! `cargo xtask tables`: rebuild `docs/results/*.md` (one page per kind of task) from the runs on
//! disk, through `nfn tables`, which reads each run's `summary.json`, and the learning-curve PNGs
//! of [`CURVES`] through `nfn curves`. The pages and pictures are never edited by hand.

use std::path::PathBuf;

use anyhow::Result;

use crate::util::root;

/// Options of `tables`.
#[derive(clap::Args)]
pub struct Args {
    /// Where runs are.
    #[arg(long, default_value = "data/runs")]
    pub runs: PathBuf,
    /// Where the pages go.
    #[arg(long, default_value = "docs/results")]
    pub out: PathBuf,
}

/// A learning-curve PNG of the results pages: runs side by side, one metric against the step.
struct Curve {
    /// The PNG's file name in the pages' folder.
    file: &'static str,
    /// `split:name` of the records (`nfn curves --metric`).
    metric: &'static str,
    /// The plot's title.
    title: &'static str,
    /// `(label, run folder name)` of each series.
    series: &'static [(&'static str, &'static str)],
    /// Against the training minutes instead of the step (`nfn curves --x minutes`).
    minutes: bool,
}

/// The curves the README and the pages show: each full-data run beside the smaller runs of the
/// same model.
const CURVES: &[Curve] = &[
    Curve {
        file: "inr2array_fashion_full_val_mse.png",
        metric: "val:mse",
        title: "Inr2Array encoder, FashionMNIST: validation MSE (256 val INRs)",
        series: &[
            ("full set, 165k train INRs", "inr2array_fashion_full"),
            ("12k", "inr2array_fashion_12k"),
            ("12k + 3000 reference-recipe", "inr2array_fashion_12k_mixenc"),
        ],
        minutes: false,
    },
    Curve {
        file: "inr2array_fashion_cls_full_val_accuracy.png",
        metric: "val:accuracy",
        title: "Inr2Array latent classifier, FashionMNIST: validation accuracy (%)",
        series: &[
            ("full set, 165k train INRs", "inr2array_fashion_cls_full"),
            ("12k", "inr2array_fashion_cls_12k"),
            ("12k + 3000 reference-recipe", "inr2array_fashion_cls_12k_mixenc"),
        ],
        minutes: false,
    },
    Curve {
        file: "fmnist_direct_full_val_accuracy.png",
        metric: "val:accuracy",
        title: "Classifiers on the weights, FashionMNIST full set: validation accuracy (%)",
        series: &[
            ("NFN-HNP 128 x 3", "fmnist_nfn_hnp_full"),
            ("NFT 64 x 2", "fmnist_nft_full"),
            ("Inr2Array latent classifier", "inr2array_fashion_cls_full"),
        ],
        minutes: false,
    },
    Curve {
        file: "mnist_full_val_accuracy.png",
        metric: "val:accuracy",
        title: "MNIST full set (135k train INRs): val accuracy (%) per training minute",
        series: &[
            ("ProbeGen, 64 probes", "mnist_probegen_full"),
            (
                "Inr2Array classifier (its encoder's minutes not counted)",
                "inr2array_mnist_cls_full",
            ),
            ("NFN-HNP 128 x 3", "mnist_nfn_hnp_full"),
            ("NFT 64 x 2", "mnist_nft_full"),
            ("MLP on the weights", "mnist_mlp_full"),
        ],
        minutes: true,
    },
    Curve {
        file: "fmnist_budget_val_accuracy.png",
        metric: "val:accuracy",
        title: "FashionMNIST: val accuracy (%) per training minute",
        series: &[
            ("ProbeGen, full set (55k train INRs)", "fmnist_probegen_full"),
            ("ProbeGen, the demo's 3000 INRs", "demo_probegen"),
            ("NFT, the demo's 3000 INRs", "demo_nft"),
            ("MLP on the weights, the demo's 3000 INRs", "demo_mlp"),
        ],
        minutes: true,
    },
];

/// Rebuild the pages and the curves whose runs are all on disk (the others are named and left).
pub fn run(args: &Args) -> Result<()> {
    let (runs, out) = (root().join(&args.runs), root().join(&args.out));
    super::nfn::run_nfn(&[
        "tables".as_ref(),
        "--runs".as_ref(),
        runs.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])?;
    for curve in CURVES {
        let missing: Vec<&str> = curve
            .series
            .iter()
            .map(|(_, run)| *run)
            .filter(|run| !runs.join(run).join("summary.json").exists())
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "xtask: {} left as it is: no finished run {}",
                curve.file,
                missing.join(", ")
            );
            continue;
        }
        let mut a: Vec<String> = vec!["curves".into()];
        for (label, run) in curve.series {
            a.push("--series".into());
            a.push(format!("{label}={}", runs.join(run).display()));
        }
        a.extend(["--metric", curve.metric, "--title", curve.title].map(String::from));
        if curve.minutes {
            a.extend(["--x", "minutes"].map(String::from));
        }
        a.extend(["--out".into(), out.join(curve.file).display().to_string()]);
        super::nfn::run_nfn(&a)?;
    }
    Ok(())
}
