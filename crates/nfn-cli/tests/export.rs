//! `nfn export-inrs` and `nfn curves` through the binary: the exported splits are the INRs a run of
//! the config trains, validates and tests on (counts, shapes, labels), the exported training order
//! is a per-epoch permutation drawn per seed, and the curves of two runs land in one PNG.

mod support;

use std::process::Command;

use nfn_weightspace::WeightSpaceFeatures;
use support::{classify_config, fit_tiny_set, nfn};
use tch::Tensor;

#[test]
fn exported_splits_and_order_are_what_training_uses_and_curves_plot_runs() {
    let dir = tempfile::tempdir().unwrap();
    let inrs = fit_tiny_set(dir.path());
    let cfg = dir.path().join("cls.toml");
    std::fs::write(&cfg, classify_config("cls", &inrs, 6, 3)).unwrap();
    let out = dir.path().join("export");
    let (cfg_s, out_s) = (cfg.display().to_string(), out.display().to_string());
    nfn(&["export-inrs", "--config", &cfg_s, "--out", &out_s, "--order-steps", "20"]);
    nfn(&[
        "export-inrs",
        "--config",
        &cfg_s,
        "--out",
        &out_s,
        "--order-steps",
        "20",
        "--order-seeds",
        "2",
    ]);

    let runs = dir.path().join("runs");
    nfn(&["train", &cfg_s, "--runs", &runs.display().to_string()]);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs.join("cls/summary.json")).unwrap()).unwrap();
    for split in ["train", "val", "test"] {
        let ws = WeightSpaceFeatures::read_npz(out.join(format!("{split}.npz"))).unwrap();
        let labels = Tensor::read_npy(out.join(format!("{split}_labels.npy"))).unwrap();
        let n = summary["data"][split].as_i64().unwrap();
        assert_eq!(ws.weights()[0].size(), [n, 1, 32, 2], "{split}");
        assert_eq!(ws.biases()[2].size(), [n, 1, 1], "{split}");
        assert_eq!(labels.size(), [n], "{split}");
        assert_eq!(labels.kind(), tch::Kind::Int64);
        // the tiny set's class of image i is i % 3, and every class occurs
        assert_eq!(labels.max().int64_value(&[]), 2, "{split}");
    }

    // seed 1 (the config's) and seed 2: [steps, batch] rows of the training split, a permutation
    // of its full batches per epoch
    let n_train = summary["data"]["train"].as_i64().unwrap();
    let per_epoch = n_train / 8;
    let order = |seed: u64| {
        let t = Tensor::read_npy(out.join(format!("train_order_s{seed}.npy"))).unwrap();
        assert_eq!(t.size(), [20, 8]);
        Vec::<i64>::try_from(t.flatten(0, -1)).unwrap()
    };
    let (a, b) = (order(1), order(2));
    assert_ne!(a, b, "two seeds drew the same order");
    let epoch: Vec<i64> = a[..(per_epoch * 8) as usize].to_vec();
    let mut sorted = epoch.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), epoch.len(), "a row twice in one epoch");
    assert!(sorted.iter().all(|&r| (0..n_train).contains(&r)));

    // curves: the run and a copy of its metrics under another label
    let copy = dir.path().join("other.jsonl");
    std::fs::copy(runs.join("cls/metrics.jsonl"), &copy).unwrap();
    let png = dir.path().join("plots/val.png");
    let (run_s, png_s) = (runs.join("cls").display().to_string(), png.display().to_string());
    nfn(&[
        "curves",
        "--series",
        &format!("ours={run_s}"),
        "--series",
        &format!("copy={}", copy.display()),
        "--out",
        &png_s,
    ]);
    let img = image::open(&png).unwrap();
    assert!(img.width() > 400 && img.height() > 400);
    nfn(&[
        "curves",
        "--series",
        &format!("ours={run_s}"),
        "--metric",
        "train:loss",
        "--smooth",
        "3",
        "--out",
        &png_s,
    ]);

    // a metric no record has, and a malformed --metric: one line, exit 2
    for metric in ["val:kendall_tau", "accuracy"] {
        let bad = Command::new(env!("CARGO_BIN_EXE_nfn"))
            .args([
                "curves",
                "--series",
                &format!("ours={run_s}"),
                "--metric",
                metric,
                "--out",
                &png_s,
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
