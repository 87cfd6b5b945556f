//! `nfn demo`: the built-in default pipeline.

use anyhow::{bail, Result};

/// Options of `demo`.
#[derive(clap::Args)]
pub struct Args {}

/// Run the demo.
pub fn run(_args: &Args) -> Result<()> {
    bail!("the demo is not implemented yet")
}
