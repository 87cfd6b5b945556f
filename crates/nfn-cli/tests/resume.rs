//! Kill -9 during `nfn train` and run it again: the run ends exactly where an uninterrupted run
//! ends, with every step's metrics line once and the same test metrics.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{classify_config, fit_tiny_set, nfn};

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
