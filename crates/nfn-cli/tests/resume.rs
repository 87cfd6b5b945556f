//! Kill -9 during `nfn train`, `nfn fit-inrs` or `nfn latents` and run it again: the job ends
//! exactly where an uninterrupted one ends (training: every step's metrics line once and the same
//! test metrics; fitting and latent extraction: the same files, byte for byte), and a partial INR
//! set is never taken for a whole one.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{classify_config, fit_tiny_set, latent_config, nfn, pretrain_config, write_images};

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
        let mut child = Command::new(env!("CARGO_BIN_EXE_nfn"))
            .args(["train", config.to_str().unwrap(), "--runs", runs.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while checkpoint_step(&run).is_none_or(|s| s < kill_after) {
            assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint at {kill_after}");
            assert!(child.try_wait().unwrap().is_none(), "finished before the kill");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
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

/// The files of an INR-set folder (temporary files, which start with a dot, left out), sorted.
fn set_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
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

#[test]
fn a_killed_fit_resumes_to_the_same_set() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_images(&images);
    // four images per shard, one thread: 18 shards, each a deterministic function of its seed
    let args = |out: &Path| {
        let mut args = support::fit_args(&images, out, 20);
        args.extend(["--chunk", "4", "--threads", "1"].map(String::from));
        args
    };
    let whole = dir.path().join("whole");
    nfn(&args(&whole).iter().map(String::as_str).collect::<Vec<_>>());
    let reference = set_files(&whole);
    assert!(reference.len() > 10, "{} files", reference.len());

    // Kill once 1, 5 and 12 shards are on disk: the kill lands anywhere in the next shard's fit or
    // in its write.
    for (i, after) in [1usize, 5, 12].into_iter().enumerate() {
        let out = dir.path().join(format!("killed{i}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_nfn"))
            .args(args(&out))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while shards_done(&out) < after {
            assert!(start.elapsed() < Duration::from_secs(300), "no {after} shards");
            assert!(child.try_wait().unwrap().is_none(), "finished before the kill at {after}");
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // the partial folder is refused as a set, in one line, with exit code 2
        let merge =
            Command::new(env!("CARGO_BIN_EXE_nfn")).arg("merge-set").arg(&out).output().unwrap();
        assert_eq!(merge.status.code(), Some(2), "merge-set accepted a partial set after {after}");
        let text = String::from_utf8_lossy(&merge.stderr);
        assert_eq!(text.trim().lines().count(), 1, "{text}");
        // every shard under its final name is whole: the rerun keeps it, and the set comes out
        // byte for byte as the uninterrupted one
        nfn(&args(&out).iter().map(String::as_str).collect::<Vec<_>>());
        let resumed = set_files(&out);
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&resumed), names(&reference), "after a kill at {after}");
        for ((name, a), (_, b)) in reference.iter().zip(&resumed) {
            assert!(a == b, "{name} differs after a kill at {after} shards");
        }
    }
}

/// Every file under `dir` (temporary files left out) with its path relative to `dir`, sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if !name.starts_with('.') {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
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
    let config = |run: &Path, name: &str| {
        let text = latent_config(name, run)
            .replace("chunk_size = 16", "chunk_size = 2")
            .replace("extract_batch_size = 8", "extract_batch_size = 2");
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let latents = |config: &str| -> Vec<String> {
        ["--threads", "1", "latents", config].map(String::from).to_vec()
    };
    let run_nfn = |args: Vec<String>| nfn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let whole_run = runs.join("ae");
    let killed_run = runs.join("ae-killed");
    copy_tree(&whole_run, &killed_run);
    let whole_config = config(&whole_run, "whole");
    run_nfn(latents(&whole_config));
    let reference = tree(&whole_run.join("latents"));
    assert!(reference.len() > 30, "{} files", reference.len());

    let killed_config = config(&killed_run, "killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nfn"))
        .args(latents(&killed_config))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cache = killed_run.join("latents");
    let start = Instant::now();
    while chunks_done(&cache) < 3 {
        assert!(start.elapsed() < Duration::from_secs(300), "no chunks");
        assert!(child.try_wait().unwrap().is_none(), "finished before the kill");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(chunks_done(&cache) < reference.len(), "the kill came after the end");
    run_nfn(latents(&killed_config));
    let resumed = tree(&cache);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&resumed), names(&reference));
    for ((name, a), (_, b)) in reference.iter().zip(&resumed) {
        assert!(a == b, "{name} differs after the kill");
    }
}
