//! `cargo xtask test`: the whole suite, as CI runs it.

use anyhow::Result;

use crate::util::{cargo, run as sh};

/// Options of `test`.
#[derive(clap::Args)]
pub struct Args {
    /// Skip fmt, clippy and docs; run only the tests.
    #[arg(long)]
    pub quick: bool,
}

/// Features the suite needs: the property-test helpers of nfn-weightspace.
const FEATURES: &str = "nfn-weightspace/testing";

/// Run set-up, then fmt, clippy, tests and docs.
pub fn run(args: &Args) -> Result<()> {
    super::setup::run(&super::setup::Args { reference: false })?;
    if !args.quick {
        sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
        sh(cargo()
            .args(["clippy", "--workspace", "--all-targets", "--features", FEATURES])
            .args(["--", "-D", "warnings"]))?;
    }
    sh(cargo().args(["test", "--workspace", "--features", FEATURES]))?;
    if !args.quick {
        sh(cargo().args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    }
    eprintln!("xtask: all checks passed");
    Ok(())
}
