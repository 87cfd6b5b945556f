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
