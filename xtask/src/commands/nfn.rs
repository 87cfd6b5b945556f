//! Running the release `nfn` binary (the heavy lifting lives there; xtask links no LibTorch).

use anyhow::Result;

use crate::util::{cargo, run as sh};

/// Set up, then `cargo run --release -p nfn-cli --bin nfn -- <args>`.
pub fn run_nfn<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<()> {
    super::setup::run(&super::setup::Args { reference: false })?;
    sh(cargo()
        .args(["run", "--release", "--quiet", "--package", "nfn-cli", "--bin", "nfn", "--"])
        .args(args))
}
