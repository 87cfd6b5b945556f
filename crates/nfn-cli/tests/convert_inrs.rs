//! `nfn convert-inrs` on the committed reference-style fixture folder: the written set loads with
//! the INR-set loader, a re-run skips every shard, and an empty folder is refused clearly.

use std::path::PathBuf;
use std::process::Command;

use nfn_datasets::{InrSet, Split};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../nfn-datasets/tests/fixtures/pth/siren_mnist_wts")
}

fn convert(from: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nfn"))
        .arg("convert-inrs")
        .arg("--from")
        .arg(from)
        .arg("--out")
        .arg(out)
        .args(["--dataset", "mnist", "--copies", "1", "--shard-size", "1"])
        .output()
        .unwrap()
}

#[test]
fn converts_the_fixture_folder_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("set");
    let run = convert(&fixture(), &out);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert!(log.contains("3 INRs: train 3 (1 of them extra copies), val 0, test 0"), "{log}");
    assert!(log.contains("3 written, 0 already there"), "{log}");

    let set = InrSet::open(&out).unwrap();
    assert_eq!(set.manifest.dataset, "mnist");
    let train = set.load(Split::Train, true).unwrap();
    assert_eq!(Vec::<i64>::try_from(&train.image_index).unwrap(), [2, 5, 5]);
    assert_eq!(Vec::<i64>::try_from(&train.labels).unwrap(), [7, 3, 3]);
    assert_eq!(Vec::<i64>::try_from(&train.copy).unwrap(), [0, 0, 1]);

    let again = convert(&fixture(), &out);
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success() && log.contains("0 written, 3 already there"), "{log}");
}

#[test]
fn an_empty_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = convert(dir.path(), &dir.path().join("set"));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && err.contains("no reference SIRENs"), "{err}");
    assert!(!dir.path().join("set").exists());
}
