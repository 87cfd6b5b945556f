//! The library behind the `nfn` binary: the experiment kinds (train, eval, tables), the commands'
//! work, the INR inputs a user brings and the shipped pretrained models. `nfn` is a thin argument
//! layer over it, and the Python package (`crates/nfn-py`) calls the same functions, so both give
//! the same numbers and the same one-line errors.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod commands;
pub mod data;
pub mod driver;
pub mod experiments;
pub mod inrs_input;
pub mod plot;
pub mod pretrained;

/// The cause chain on one line (`outer: inner: ...`), as `nfn` prints its errors. A cause whose
/// text spans several lines (a TOML error quotes the offending line with a caret under it) keeps
/// its first and last lines: `TOML parse error at line 12, column 1: unknown field `stepz``.
pub fn one_line(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(|cause| {
            let text = cause.to_string();
            let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            match lines.as_slice() {
                [] => String::new(),
                [only] => only.to_string(),
                [first, .., last] => format!("{first}: {last}"),
            }
        })
        .collect();
    parts.join(": ")
}
