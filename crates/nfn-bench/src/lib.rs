//! Benchmarks for nfn-rs (criterion benches live in `benches/`); this library holds shared helpers.
//!
//! Sits on top of every library crate; nothing depends on it.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]
