//! Jobs split over processes (`--shard i/n`), as a Slurm job array or a Kubernetes indexed job runs
//! them: three `nfn fit-inrs` processes writing into one folder at the same time give, file for
//! file and byte for byte, the set one process writes; `nfn merge-set` refuses the folder (exit
//! code 2, naming what is missing) until every part is there; the same for `convert-inrs`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{names, nfn, tree_files, write_images};

/// The tiny set's fit with one thread per process (byte-identical parts need equal thread counts)
/// and shards of 8 INRs.
fn fit_args(images: &Path, out: &Path) -> Vec<String> {
    let mut args = support::fit_args(images, out, 20);
    args.extend(["--chunk", "8", "--threads", "1"].map(String::from));
    args
}

/// Start one process per part at once, wait for all, and check each succeeded.
fn run_parts(args: &[String], n: usize) {
    let children: Vec<_> = (0..n)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_nfn"))
                .args(args)
                .args(["--shard", &format!("{i}/{n}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn merge_set(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nfn")).arg("merge-set").arg(dir).output().unwrap()
}

fn assert_same_set(single: &Path, sharded: &Path) {
    let (a, b) = (tree_files(single), tree_files(sharded));
    assert_eq!(names(&a), names(&b));
    assert!(a.len() > 3, "{:?}", names(&a));
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs between the single-process and the sharded set");
    }
}

#[test]
fn three_concurrent_fit_shards_write_the_single_process_set() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_images(&images);
    let (single, sharded) = (dir.path().join("single"), dir.path().join("sharded"));
    let args: Vec<String> = fit_args(&images, &single);
    nfn(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // One part alone: the set is not complete, and merge-set says so in one line, exit code 2.
    let args = fit_args(&images, &sharded);
    let one: Vec<&str> = args.iter().map(String::as_str).chain(["--shard", "1/3"]).collect();
    let log = String::from_utf8_lossy(&nfn(&one).stderr).into_owned();
    assert!(log.contains("shard 1/3 done") && log.contains("still to come"), "{log}");
    let refused = merge_set(&sharded);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("shards missing") && err.trim().lines().count() == 1, "{err}");

    // All three at once (part 1 finds its shards done and skips them).
    run_parts(&args, 3);
    let merged = merge_set(&sharded);
    let out = String::from_utf8_lossy(&merged.stdout);
    assert!(merged.status.success() && out.contains("is complete: 70 INRs"), "{out}");
    assert_same_set(&single, &sharded);
}

#[test]
fn two_concurrent_convert_shards_write_the_single_process_set() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../nfn-datasets/tests/fixtures/pth/siren_mnist_wts");
    let dir = tempfile::tempdir().unwrap();
    let (single, sharded) = (dir.path().join("single"), dir.path().join("sharded"));
    let args = |out: &Path| -> Vec<String> {
        ["convert-inrs", "--dataset", "mnist", "--copies", "1", "--shard-size", "1", "--from"]
            .map(String::from)
            .into_iter()
            .chain([fixture.display().to_string(), "--out".into(), out.display().to_string()])
            .collect()
    };
    nfn(&args(&single).iter().map(String::as_str).collect::<Vec<_>>());
    run_parts(&args(&sharded), 2);
    assert!(merge_set(&sharded).status.success());
    assert_same_set(&single, &sharded);
}

#[test]
fn a_bad_shard_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["3/3", "1", "a/2"] {
        let out = Command::new(env!("CARGO_BIN_EXE_nfn"))
            .args(["fit-inrs", "--out"])
            .arg(dir.path())
            .args(["--shard", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("--shard") && err.contains("i/n"), "{bad}: {err}");
    }
}
