//! The `nfn` command line.
fn main() {}
