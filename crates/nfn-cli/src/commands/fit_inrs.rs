//! `nfn fit-inrs`: fit SIRENs to an image set and write a sharded INR data set.

use anyhow::{bail, Result};

/// Options of `fit-inrs`.
#[derive(clap::Args)]
pub struct Args {}

/// Fit and write the data set.
pub fn run(_args: &Args) -> Result<()> {
    bail!("fit-inrs is not implemented yet")
}
