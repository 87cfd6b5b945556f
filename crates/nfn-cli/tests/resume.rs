//! Kill -9 during `nfn train` or `nfn fit-inrs` and run it again: the run ends exactly where an
//! uninterrupted run ends (training: every step's metrics line once and the same test metrics;
//! fitting: the same files, byte for byte), and a partial INR set is never taken for a whole one.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{classify_config, fit_tiny_set, nfn, write_images};

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
