//! Small helpers shared by the commands: the project root and running child processes.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The environment variable naming the project root for an xtask binary run outside the checkout
/// it was built in (a `gpu-check --pack` bundle on another machine).
pub const ROOT_ENV: &str = "XTASK_ROOT";

/// The environment variable naming the Python that runs the PyTorch reference scripts (default: the
/// project's `.venv`); a GPU machine's own PyTorch, for instance.
pub const PYTHON_ENV: &str = "NFN_REFERENCE_PYTHON";

/// The workspace root: `XTASK_ROOT` when set, else the parent of `xtask/` where it was built.
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os(ROOT_ENV) {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ has a parent").to_path_buf()
}

/// An error a child process has already reported in one line (`nfn` exits with 2 after printing
/// it): xtask exits with 2 without a line of its own.
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reported above")
    }
}

impl std::error::Error for Reported {}

/// The Python of the reference scripts: `NFN_REFERENCE_PYTHON`, else `.venv/bin/python`.
pub fn python() -> PathBuf {
    std::env::var_os(PYTHON_ENV).map_or_else(|| root().join(".venv/bin/python"), PathBuf::from)
}

/// Run `cmd` in the project root, streaming its output; fail with the command line on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    cmd.current_dir(root());
    let line = format!("{cmd:?}");
    eprintln!("xtask: {line}");
    let status = cmd.status().with_context(|| format!("starting {line}"))?;
    if !status.success() {
        bail!("{line} failed with {status}");
    }
    Ok(())
}

/// Run `cmd` and return its trimmed standard output, or `None` if it fails or cannot start.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.current_dir(root()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A `cargo` command using the same toolchain that runs xtask.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}
