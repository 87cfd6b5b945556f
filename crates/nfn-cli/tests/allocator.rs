//! The `nfn` binary moves onto the tuned allocator by re-executing itself
//! (`nfn_weightspace::runtime`), and `NFN_MALLOC=system` keeps the C library's.

use std::process::Command;

fn info(system: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfn"));
    cmd.arg("info")
        .env_remove("NFN_MALLOC_APPLIED")
        .env_remove("LD_PRELOAD")
        .env_remove("MALLOC_CONF")
        .env_remove("GLIBC_TUNABLES");
    if system {
        cmd.env("NFN_MALLOC", "system");
    } else {
        cmd.env_remove("NFN_MALLOC");
    }
    let out = cmd.output().expect("nfn runs");
    assert!(out.status.success(), "nfn info failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn allocator_line(out: &str) -> &str {
    out.lines().find_map(|l| l.strip_prefix("allocator: ")).expect("an allocator line")
}

#[test]
fn nfn_runs_under_the_tuned_allocator_unless_told_not_to() {
    let tuned = info(false);
    let expected = if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        "system"
    } else if nfn_weightspace::runtime::jemalloc_path().is_some() {
        "jemalloc"
    } else {
        "glibc-tunables"
    };
    assert_eq!(allocator_line(&tuned), expected, "{tuned}");
    assert_eq!(allocator_line(&info(true)), "system");
}
