//! A disk that fills up, simulated with a file-size limit on the child process (`ulimit -f`, with
//! `SIGXFSZ` ignored, so that a write past the limit fails with `EFBIG` as a full disk fails with
//! `ENOSPC`): the job stops with one line naming the file it could not write and exit code 2,
//! the files it wrote before stay whole (the previous checkpoint, the finished shards), no partial
//! file is left under a final name, and a rerun with space again finishes the job.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{classify_config, fit_tiny_set, nfn, write_images};

/// Run `nfn args` with files limited to `max_kib` KiB: bash ignores `SIGXFSZ` (the ignored
/// disposition survives `exec`), sets `ulimit -f` (1024-byte blocks) and becomes `nfn`.
fn nfn_with_file_limit(args: &[&str], max_kib: u64) -> Output {
    let script = format!("trap '' XFSZ; ulimit -f {max_kib}; exec \"$0\" \"$@\"");
    Command::new("bash")
        .args(["-c", &script, env!("CARGO_BIN_EXE_nfn")])
        .args(args)
        .output()
        .unwrap()
}

/// The one error line must end the output, name `file` and say why; exit code 2.
fn assert_write_error(out: &Output, file: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("nfn: error: ") && last.contains(file), "{stderr}");
    assert!(last.contains("too large"), "the OS's reason is kept: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_full_disk_during_fitting_keeps_the_finished_shards_and_the_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_images(&images);
    let args = |out: &Path| {
        let mut args = support::fit_args(&images, out, 20);
        args.extend(["--chunk", "4", "--threads", "1"].map(String::from));
        args
    };
    let whole = dir.path().join("whole");
    nfn(&args(&whole).iter().map(String::as_str).collect::<Vec<_>>());

    // a shard of 4 INRs is about 20 kB, the manifest a few kB: room for the manifest only
    let out = dir.path().join("full");
    let full_args = args(&out);
    let result = nfn_with_file_limit(&full_args.iter().map(String::as_str).collect::<Vec<_>>(), 8);
    assert_write_error(&result, ".bin");
    let left = names(&out);
    assert!(left.iter().all(|n| !n.ends_with(".bin")), "no shard under a final name: {left:?}");
    assert!(left.iter().all(|n| !n.starts_with('.')), "no temporary file left: {left:?}");
    nfn(&full_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(names(&out), names(&whole));
    for name in names(&whole) {
        let same =
            std::fs::read(whole.join(&name)).unwrap() == std::fs::read(out.join(&name)).unwrap();
        assert!(same, "{name} differs after the disk-full stop");
    }
}

#[test]
fn a_full_disk_during_training_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let inrs = fit_tiny_set(dir.path());
    let config = dir.path().join("full.toml");
    std::fs::write(&config, classify_config("full", &inrs, 60, 20)).unwrap();
    let (config, runs) = (config.to_str().unwrap(), dir.path().join("runs"));
    let run = runs.join("full");
    let args = ["train", config, "--runs", runs.to_str().unwrap()];

    // stop the run once its step-20 checkpoint is on disk
    let mut child = Command::new(env!("CARGO_BIN_EXE_nfn"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let step = |run: &Path| -> Option<u64> {
        let text = std::fs::read_to_string(run.join("state.json")).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?["step"].as_u64()
    };
    let start = Instant::now();
    while step(&run).is_none() {
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint");
        assert!(child.try_wait().unwrap().is_none(), "finished before the stop");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let saved_step = step(&run).unwrap();
    let checkpoint = std::fs::read(run.join("last.safetensors")).unwrap();

    // resume with no room for a checkpoint (the metrics lines still fit): it trains up to the
    // next checkpoint, fails to write it, and says so
    let limit_kib = checkpoint.len() as u64 / 2048;
    assert!(
        limit_kib >= 8,
        "a checkpoint of {} bytes leaves no room for metrics",
        checkpoint.len()
    );
    let result = nfn_with_file_limit(&args, limit_kib);
    assert_write_error(&result, "last.safetensors");
    assert_eq!(std::fs::read(run.join("last.safetensors")).unwrap(), checkpoint, "kept whole");
    assert_eq!(step(&run), Some(saved_step), "the state still names the kept checkpoint");
    let left = names(&run);
    assert!(left.iter().all(|n| !n.starts_with('.')), "no temporary file left: {left:?}");
    assert!(!run.join("summary.json").exists());

    // with room again the run resumes from the kept checkpoint and finishes
    nfn(&args);
    assert!(run.join("summary.json").exists());
}
