//! Running the release `nfn` binary (the heavy lifting lives there; xtask links no LibTorch), built
//! with `--features cuda` when the machine has an NVIDIA GPU (see [`crate::gpu`]).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::gpu;
use crate::util::cargo;

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

    /// Build the release `nfn` binary (`cargo build --release -p nfn-cli [--features cuda] --bin
    /// nfn`) and return its path, for a caller that runs it itself (under an allocator of its
    /// choosing, as `cargo xtask bench step` does, which `cargo run` would impose on cargo too).
    ///
    /// # Errors
    /// When the build fails.
    pub fn build(&self) -> Result<PathBuf> {
        announce_build();
        crate::util::run(
            cargo()
                .args(["build", "--release", "--package", "nfn-cli"])
                .args(&self.features)
                .args(["--bin", "nfn"]),
        )?;
        Ok(crate::util::root().join("target/release/nfn"))
    }

    /// Build the release `nfn` ([`Nfn::build`], cargo's progress shown) and run it with `args`.
    /// Not `cargo run`: that holds cargo's lock on `target/` for as long as `nfn` runs, so an
    /// hour-long fit or training would block every other cargo command (tests, a second xtask).
    ///
    /// # Errors
    /// When the build fails or `nfn` exits with an error.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<()> {
        let bin = self.build()?;
        let mut cmd = Command::new(&bin);
        cmd.args(args).current_dir(crate::util::root());
        eprintln!("xtask: {cmd:?}");
        let status = cmd.status().with_context(|| format!("starting {}", bin.display()))?;
        match status.code() {
            Some(0) => Ok(()),
            // a user error that `nfn` has already printed in one line: say nothing more
            Some(2) => Err(crate::util::Reported.into()),
            _ => bail!("nfn {} failed with {status}", describe(args)),
        }
    }
}

/// Say what is about to happen when the release `nfn` has not been built yet, so that a new
/// user knows what the next minutes are.
fn announce_build() {
    if !crate::util::root().join("target/release/nfn").exists() {
        eprintln!(
            "xtask: building nfn in release mode for the first time: about 4 minutes on 2 cores \
             (most of it LibTorch's C++ bindings, torch-sys); cargo's progress follows"
        );
    }
}

/// The arguments as one line, for messages.
fn describe<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
}

/// Choose the device, set up, build the release `nfn` and run it with `args`.
pub fn run_nfn<S: AsRef<OsStr>>(args: &[S]) -> Result<()> {
    Nfn::prepare()?.run(args)
}
