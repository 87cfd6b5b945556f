//! Every experiment config under `xtask/configs/` parses and validates, and a bad one is refused
//! with the file named.

use std::path::PathBuf;
use std::process::Command;

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../xtask/configs")
}

#[test]
fn shipped_configs_are_valid() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(configs_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "expected the shipped configs, found {files:?}");
    let out =
        Command::new(env!("CARGO_BIN_EXE_nfn")).arg("check-config").args(&files).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn unknown_fields_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let good = std::fs::read_to_string(configs_dir().join("fmnist_mlp.toml")).unwrap();
    std::fs::write(&path, good.replace("seed = 0", "seed = 0\nsede = 1")).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_nfn")).arg("check-config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("sede"), "{err}");
}
