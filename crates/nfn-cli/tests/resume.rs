//! Kill -9 during `nfn train`, `nfn fit-inrs` or `nfn latents` and run it again: the job ends
//! exactly where an uninterrupted one ends (training: every step's metrics line once and the same
//! test metrics; fitting and latent extraction: the same files, byte for byte), and a partial INR
//! set is never taken for a whole one.

mod support;

use std::path::Path;
use std::process::Command;

use support::{
    classify_config, fit_chunked_args, fit_tiny_set, images_in, kill_when, latent_config, names,
    nfn, nfn_args, pretrain_config, tree_files,
};

const STEPS: u64 = 300;

fn records(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn split<'a>(records: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    records.iter().filter(|r| r["split"] == name).collect()
}

/// The step of the run's last checkpoint (`state.json`), if any.
fn checkpoint_step(run: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(run.join("state.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["step"].as_u64()
}

#[test]
fn a_killed_run_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let inrs = fit_tiny_set(dir.path());
    let config = dir.path().join("resume.toml");
    std::fs::write(&config, classify_config("resume", &inrs, STEPS, 20)).unwrap();
    let train = |runs: &Path| {
        nfn(&["train", config.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    };
    let whole = dir.path().join("whole");
    train(&whole);
    let reference = records(&whole.join("resume"));

    // Kill after the checkpoint at these steps has been written (the kill lands anywhere in the
    // steps after it, including inside the next checkpoint write).
    for (i, kill_after) in [20u64, 120, 240].into_iter().enumerate() {
        let runs = dir.path().join(format!("killed{i}"));
        let run = runs.join("resume");
        let args = ["train", config.to_str().unwrap(), "--runs", runs.to_str().unwrap()];
        let args = args.map(String::from);
        let ready = || checkpoint_step(&run).is_some_and(|s| s >= kill_after);
        kill_when(&args, ready, &format!("the checkpoint at {kill_after}"));
        assert!(!run.join("summary.json").exists(), "killed at {kill_after} after finishing");
        train(&runs);

        let resumed = records(&run);
        for name in ["train", "val", "test"] {
            let (a, b) = (split(&reference, name), split(&resumed, name));
            let steps = |rs: &[&serde_json::Value]| {
                rs.iter().map(|r| r["step"].as_u64()).collect::<Vec<_>>()
            };
            assert_eq!(steps(&a), steps(&b), "{name} records after a kill at {kill_after}");
            for (x, y) in a.iter().zip(&b) {
                for key in ["loss", "accuracy"] {
                    let (u, v) = (x[key].as_f64(), y[key].as_f64());
                    assert_eq!(u.is_some(), v.is_some(), "{name} {key} at step {}", x["step"]);
                    if let (Some(u), Some(v)) = (u, v) {
                        assert!(
                            (u - v).abs() <= 1e-6,
                            "{name} {key} at step {}: {u} vs {v}",
                            x["step"]
                        );
                    }
                }
            }
        }
        assert_eq!(
            split(&resumed, "test")[0]["resumed_from"].as_u64().map(|s| s >= kill_after),
            Some(true)
        );
    }
}

/// Shards written so far (final names only).
fn shards_done(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                !name.starts_with('.') && name.ends_with(".bin")
            })
            .count()
    })
}

/// Kill -9 `nfn fit-inrs` once 1, 5 and 12 of its 18 shards are on disk (the kill lands anywhere in
/// the next shard's fit or in its write), run it again: `merge-set` refuses the partial folder in
/// between, and the set comes out byte for byte as an uninterrupted run's.
#[test]
fn a_killed_fit_resumes_to_the_same_set() {
    let dir = tempfile::tempdir().unwrap();
    let images = images_in(dir.path());
    let whole = dir.path().join("whole");
    nfn_args(&fit_chunked_args(&images, &whole));
    let reference = tree_files(&whole);
    assert!(reference.len() > 10, "{} files", reference.len());
    for (i, after) in [1usize, 5, 12].into_iter().enumerate() {
        let out = dir.path().join(format!("killed{i}"));
        let args = fit_chunked_args(&images, &out);
        kill_when(&args, || shards_done(&out) >= after, &format!("{after} shards"));
        // the partial folder is refused as a set, in one line, with exit code 2
        let merge =
            Command::new(env!("CARGO_BIN_EXE_nfn")).arg("merge-set").arg(&out).output().unwrap();
        assert_eq!(merge.status.code(), Some(2), "merge-set accepted a partial set after {after}");
        let text = String::from_utf8_lossy(&merge.stderr);
        assert_eq!(text.trim().lines().count(), 1, "{text}");
        // every shard under its final name is whole: the rerun keeps it
        nfn_args(&args);
        let resumed = tree_files(&out);
        assert_eq!(names(&resumed), names(&reference), "after a kill at {after}");
        for ((name, a), (_, b)) in reference.iter().zip(&resumed) {
            assert!(a == b, "{name} differs after a kill at {after} shards");
        }
    }
}

/// Copy a folder tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Latent chunks written so far under `cache` (final names only).
fn chunks_done(cache: &Path) -> usize {
    let Ok(splits) = std::fs::read_dir(cache) else { return 0 };
    splits
        .filter_map(Result::ok)
        .filter_map(|split| std::fs::read_dir(split.path()).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("chunk_"))
        .count()
}

/// Kill -9 `nfn latents` once 3 of its 35 chunks are written, run it again: every chunk and the
/// metadata equal an uninterrupted extraction's, byte for byte.
#[test]
fn a_killed_latent_extraction_resumes_to_the_same_latents() {
    let dir = tempfile::tempdir().unwrap();
    let inrs = fit_tiny_set(dir.path());
    let runs = dir.path().join("runs");
    // an encoder wide enough that extracting 70 latents in chunks of 2 takes long enough to kill
    let pretrain = pretrain_config("ae", &inrs, 28, "sitzmann")
        .replace("channels = 8", "channels = 64")
        .replace("num_blocks = 1", "num_blocks = 2");
    let pretrain_path = dir.path().join("ae.toml");
    std::fs::write(&pretrain_path, pretrain).unwrap();
    nfn(&["train", pretrain_path.to_str().unwrap(), "--runs", runs.to_str().unwrap()]);
    let latents = |run: &Path, name: &str| -> Vec<String> {
        let text = latent_config(name, run)
            .replace("chunk_size = 16", "chunk_size = 2")
            .replace("extract_batch_size = 8", "extract_batch_size = 2");
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        ["--threads", "1", "latents", path.to_str().unwrap()].map(String::from).to_vec()
    };
    let (whole_run, killed_run) = (runs.join("ae"), runs.join("ae-killed"));
    copy_tree(&whole_run, &killed_run);
    nfn_args(&latents(&whole_run, "whole"));
    let reference = tree_files(&whole_run.join("latents"));
    assert!(reference.len() > 30, "{} files", reference.len());

    let args = latents(&killed_run, "killed");
    let cache = killed_run.join("latents");
    kill_when(&args, || chunks_done(&cache) >= 3, "3 chunks");
    assert!(chunks_done(&cache) < reference.len(), "the kill came after the end");
    nfn_args(&args);
    let resumed = tree_files(&cache);
    assert_eq!(names(&resumed), names(&reference));
    for ((name, a), (_, b)) in reference.iter().zip(&resumed) {
        assert!(a == b, "{name} differs after the kill");
    }
}
