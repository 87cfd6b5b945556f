//! Running the release `nfn` binary (the heavy lifting lives there; xtask links no LibTorch), built
//! with `--features cuda` when the machine has an NVIDIA GPU (see [`crate::gpu`]).

use std::ffi::OsStr;

use anyhow::Result;

use crate::gpu;
use crate::util::{cargo, run as sh};

/// The release `nfn` binary for this machine's accelerator, set up and ready to run.
pub struct Nfn {
    /// `--features cuda` for a CUDA build, nothing for the CPU.
    features: Vec<&'static str>,
}

impl Nfn {
    /// Choose the accelerator and print it as the first line (`xtask: device cuda (...)`), then set up.
    /// `NFN_DEVICE` stays in the environment, so `nfn` reads it too.
    ///
    /// # Errors
    /// When `NFN_DEVICE` is invalid or asks for a GPU the machine lacks, or set-up fails.
    pub fn prepare() -> Result<Self> {
        let accel = gpu::accel()?;
        eprintln!("xtask: {}", accel.line("nfn"));
        super::setup::run(&super::setup::Args { reference: false })?;
        Ok(Nfn { features: gpu::cargo_features(&accel) })
    }

    /// `cargo run --release -p nfn-cli [--features cuda] --bin nfn -- <args>`.
    ///
    /// # Errors
    /// When the build fails or `nfn` exits with an error.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<()> {
        sh(cargo()
            .args(["run", "--release", "--quiet", "--package", "nfn-cli"])
            .args(&self.features)
            .args(["--bin", "nfn", "--"])
            .args(args))
    }
}

/// Choose the device, set up, then `cargo run --release -p nfn-cli [--features cuda] --bin nfn -- <args>`.
pub fn run_nfn<S: AsRef<OsStr>>(args: &[S]) -> Result<()> {
    Nfn::prepare()?.run(args)
}
