//! `cargo xtask test`: the whole suite, as CI runs it (the Rust tests, then the Python package's
//! pytest suite). Besides the CPU build it proves the CUDA build
//! (`--features cuda` of `nfn-cli` and `nfn-bench`, which links `libtorch_cuda`): clippy on it, and
//! the CUDA `nfn` linked and started (`nfn info`), which works without a GPU (CUDA then reports
//! unavailable).

use std::process::Command;

use anyhow::Result;

use crate::util::{cargo, root, run as sh};

/// Options of `test`.
#[derive(clap::Args)]
pub struct Args {
    /// Skip fmt, clippy and docs; run only the tests (and the CUDA link check).
    #[arg(long)]
    pub quick: bool,
}

/// Features the suite needs: the property-test helpers of nfn-weightspace.
const FEATURES: &str = "nfn-weightspace/testing";
/// [`FEATURES`] plus the CUDA builds of the binaries' crates. Everything else is resolved exactly as
/// with [`FEATURES`] (same workspace, same targets), so only `nfn-cli` and `nfn-bench` recompile.
const CUDA_CLIPPY_FEATURES: &str = "nfn-weightspace/testing,nfn-cli/cuda,nfn-bench/cuda";
/// [`FEATURES`] plus the CUDA `nfn`, for the link check after the tests.
const CUDA_LINK_FEATURES: &str = "nfn-weightspace/testing,nfn-cli/cuda";

/// Disk the suite needs on a fresh clone, in GB: PyTorch with its CUDA libraries in `.venv` (about
/// 5 GB) and the debug build of every test binary, the CUDA link check and the docs (about 4 GB).
const NEEDED_GB: f64 = 10.0;

/// Run set-up, then fmt, clippy (CPU and CUDA builds), tests, the CUDA link check and docs.
pub fn run(args: &Args) -> Result<()> {
    warn_if_disk_short();
    super::setup::run(&super::setup::Args { reference: false })?;
    if !args.quick {
        sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
        sh(cargo()
            .args(["clippy", "--workspace", "--all-targets", "--features", FEATURES])
            .args(["--", "-D", "warnings"]))?;
        sh(cargo()
            .args(["clippy", "--workspace", "--all-targets", "--features", CUDA_CLIPPY_FEATURES])
            .args(["--", "-D", "warnings"]))?;
    }
    sh(cargo().args(["test", "--workspace", "--features", FEATURES]))?;
    // The Python package, built on the test build's artifacts, and its pytest suite (which runs
    // target/debug/nfn beside the module, so before the CUDA relink below).
    super::python::install()?;
    super::python::test(&[])?;
    // After the tests, which spawn target/debug/nfn: this replaces it with the CUDA build. Building
    // the test targets (`--no-run`) keeps feature resolution as in `cargo test`, so only nfn-cli
    // relinks (a plain `cargo build -p nfn-cli` resolves serde's features differently and would
    // rebuild most dependencies).
    sh(cargo().args(["test", "--workspace", "--no-run", "--features", CUDA_LINK_FEATURES]))?;
    sh(Command::new(root().join("target/debug/nfn")).arg("info").env_remove("NFN_DEVICE"))?;
    if !args.quick {
        sh(cargo().args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    }
    eprintln!("xtask: all checks passed");
    Ok(())
}

/// Say up front when the disk is short: out of space, the linker dies with a bus error deep in a
/// build log rather than naming the disk.
fn warn_if_disk_short() {
    let root = root();
    let Ok(free) = fs4::available_space(&root) else { return };
    let free_gb = free as f64 / 1e9;
    let installed = root.join(".venv").is_dir() && root.join("target/debug").is_dir();
    if free_gb < NEEDED_GB && !installed {
        eprintln!(
            "xtask: warning: {free_gb:.1} GB free on the disk of {}; set-up and the suite's build \
             need about {NEEDED_GB:.0} GB (a full disk shows up as a linker bus error)",
            root.display()
        );
    }
}
