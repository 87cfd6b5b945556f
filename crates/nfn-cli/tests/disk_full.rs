//! A disk that fills up, simulated with a file-size limit on the child process (`ulimit -f`, with
//! `SIGXFSZ` ignored, so that a write past the limit fails with `EFBIG` as a full disk fails with
//! `ENOSPC`): the job stops with one line naming the file it could not write and exit code 2,
//! the files it wrote before stay whole (the previous checkpoint, the finished shards), no partial
//! file is left under a final name, and a rerun with space again finishes the job.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{
    classify_config, fit_chunked_args, fit_tiny_set, images_in, kill_when, nfn, nfn_args,
    tree_files,
};

/// Run `nfn args` with files limited to `max_kib` KiB: bash ignores `SIGXFSZ` (the ignored
/// disposition survives `exec`), sets `ulimit -f` (1024-byte blocks) and becomes `nfn`.
fn nfn_with_file_limit(args: &[impl AsRef<std::ffi::OsStr>], max_kib: u64) -> Output {
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

/// The names of the files in `dir`, temporary ones included, sorted.
fn listing(dir: &Path) -> Vec<String> {
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
    let images = images_in(dir.path());
    let whole = dir.path().join("whole");
    nfn_args(&fit_chunked_args(&images, &whole));

    // a shard of 4 INRs is about 20 kB, the manifest a few kB: room for the manifest only
    let out = dir.path().join("full");
    let full_args = fit_chunked_args(&images, &out);
    let result = nfn_with_file_limit(&full_args, 8);
    assert_write_error(&result, ".bin");
    let left = listing(&out);
    assert!(left.iter().all(|n| !n.ends_with(".bin")), "no shard under a final name: {left:?}");
    assert!(left.iter().all(|n| !n.starts_with('.')), "no temporary file left: {left:?}");
    nfn_args(&full_args);
    assert!(tree_files(&out) == tree_files(&whole), "the rerun gives the uninterrupted set");
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
    let step = |run: &Path| -> Option<u64> {
        let text = std::fs::read_to_string(run.join("state.json")).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?["step"].as_u64()
    };
    kill_when(&args.map(String::from), || step(&run).is_some(), "a checkpoint");
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
    let left = listing(&run);
    assert!(left.iter().all(|n| !n.starts_with('.')), "no temporary file left: {left:?}");
    assert!(!run.join("summary.json").exists());

    // with room again the run resumes from the kept checkpoint and finishes
    nfn(&args);
    assert!(run.join("summary.json").exists());
}
