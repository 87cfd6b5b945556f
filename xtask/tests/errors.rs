//! xtask's own user errors, through the binary: one line naming the problem, exit code 2, no
//! backtrace. (Errors of the `nfn` commands it forwards to are `nfn`'s one line, and xtask adds
//! nothing: see `crates/nfn-cli/tests/errors.rs`.)

use std::process::Command;

#[test]
fn user_errors_are_one_line_and_exit_2() {
    let cases: [(&[&str], &str); 5] = [
        (&["fuzz", "nosuch"], "no fuzz target \"nosuch\""),
        (&["bench", "nosuch"], "unknown benchmark \"nosuch\""),
        (&["reproduce", "/nowhere/exp.toml", "--dry-run"], "/nowhere/exp.toml"),
        (&["download", "nosuch"], "nosuch"),
        (&["gpu-check", "--skip", "nosuch", "--dry-run"], "--skip nosuch"),
    ];
    let mut failures = Vec::new();
    for (args, says) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .env("RUST_BACKTRACE", "1")
            .env("NFN_DEVICE", "cpu")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        let ok = out.status.code() == Some(2)
            && errors.len() == 1
            && errors[0].contains(says)
            && !stderr.contains("panicked")
            && !stderr.contains("backtrace");
        if !ok {
            failures.push(format!("{args:?}: exit {:?}\n{stderr}", out.status.code()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

/// `download mnist --from <folder>` against the catalog's canonical checksums, through the binary:
/// a folder missing a file and one holding a file with other content are each refused with exit 2
/// in one line that names the file, and nothing lands in the data folder.
#[test]
fn download_from_a_bad_mirror_is_refused_in_one_line() {
    let mirror = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["download", "mnist", "--from"])
            .arg(mirror.path())
            .arg("--dir")
            .arg(data.path())
            .output()
            .unwrap()
    };
    let check = |out: std::process::Output, says: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(errors.len() == 1 && errors[0].contains(says), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    // Empty mirror: the first file is named as missing.
    check(run(), "train-images-idx3-ubyte");
    // A file of the right name with other bytes: named, with the catalog's MD5.
    let wrong = mirror.path().join("train-images-idx3-ubyte");
    std::fs::write(&wrong, b"not MNIST").unwrap();
    check(run(), &wrong.display().to_string());
    let landed = std::fs::read_dir(data.path().join("mnist")).map_or(0, |d| d.count());
    assert_eq!(landed, 0);
}
