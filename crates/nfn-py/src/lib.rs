//! `nfn_rs._native`: the extension module behind the `nfn_rs` Python package
//! (`python/nfn_rs/__init__.py` wraps it; `docs/python.md` is the user's guide).
//!
//! Every function runs the same library code as the `nfn` command it mirrors (`nfn-cli`'s library)
//! and fails with the same one-line message, raised as a Python exception. Tensors cross in both
//! directions without copies ([`bridge`]); long calls release the GIL.

pub mod bridge;
mod data;
mod models;

use std::path::Path;

use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use nfn_weightspace::WeightSpaceFeatures;

use crate::bridge::{borrow, export, Borrowed};

/// The Python exception for a library error: `FileNotFoundError` when a file or folder is missing,
/// `RuntimeError` when LibTorch itself failed, else `ValueError` (bad input: a truncated file,
/// wrong shapes, NaN weights, an unknown name); its message is the `nfn` command's one line.
pub(crate) fn to_py(e: anyhow::Error) -> PyErr {
    let message = nfn_cli::one_line(&e);
    let missing = e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    });
    if missing {
        PyFileNotFoundError::new_err(message)
    } else if e.chain().any(|cause| cause.downcast_ref::<tch::TchError>().is_some()) {
        PyRuntimeError::new_err(message)
    } else {
        PyValueError::new_err(message)
    }
}

/// `FileNotFoundError` naming `path` unless it exists.
pub(crate) fn must_exist(path: &Path) -> PyResult<()> {
    if path.exists() {
        Ok(())
    } else {
        Err(PyFileNotFoundError::new_err(format!("{}: no such file or folder", path.display())))
    }
}

/// Weight-space features from the Python side's `(weights, biases)` lists: `W_l [B, C, n_l,
/// n_{l-1}, ...]` and `b_l [B, C, n_l]`, borrowed (the returned [`Borrowed`] keep them alive).
pub(crate) fn borrow_ws(
    weights: &Bound<'_, PyList>,
    biases: &Bound<'_, PyList>,
) -> PyResult<(WeightSpaceFeatures, Vec<Borrowed>)> {
    if weights.len() != biases.len() || weights.is_empty() {
        return Err(PyValueError::new_err(format!(
            "expected one bias per weight (and at least one layer), got {} weights and {} biases",
            weights.len(),
            biases.len()
        )));
    }
    let mut held = Vec::new();
    let (mut ws, mut bs) = (Vec::new(), Vec::new());
    for (l, (w, b)) in weights.iter().zip(biases.iter()).enumerate() {
        let w = borrow(&w, &format!("weights[{l}]"))?;
        let b = borrow(&b, &format!("biases[{l}]"))?;
        for (t, name) in [(&w.tensor, "weights"), (&b.tensor, "biases")] {
            if !t.is_floating_point() {
                return Err(PyTypeError::new_err(format!(
                    "{name}[{l}]: expected a floating-point tensor, got {:?}",
                    t.kind()
                )));
            }
        }
        ws.push(w.tensor.shallow_clone());
        bs.push(b.tensor.shallow_clone());
        held.extend([w, b]);
    }
    let wsfeat = WeightSpaceFeatures::new(ws, bs)
        .map_err(|e| PyValueError::new_err(format!("not a weight space: {e}")))?;
    Ok((wsfeat, held))
}

/// DLPack capsules, one per tensor, for the Python side.
pub(crate) type Capsules<'py> = Vec<Bound<'py, PyAny>>;

/// `(weights, biases)` lists of DLPack capsules for the Python side.
pub(crate) fn export_ws<'py>(
    py: Python<'py>,
    wsfeat: WeightSpaceFeatures,
) -> PyResult<(Capsules<'py>, Capsules<'py>)> {
    let (ws, bs) = wsfeat.into_parts();
    let ws = ws.into_iter().map(|t| export(py, t)).collect::<PyResult<_>>()?;
    let bs = bs.into_iter().map(|t| export(py, t)).collect::<PyResult<_>>()?;
    Ok((ws, bs))
}

/// The data pointer LibTorch sees for a borrowed tensor (to check that nothing was copied).
#[pyfunction]
fn data_ptr(t: &Bound<'_, PyAny>) -> PyResult<usize> {
    Ok(borrow(t, "tensor")?.tensor.data_ptr() as usize)
}

/// A copy of `t` made by LibTorch here (to check the way out: its memory stays with PyTorch).
#[pyfunction]
fn copy<'py>(py: Python<'py>, t: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let b = borrow(t, "tensor")?;
    export(py, b.tensor.copy())
}

/// nfn-rs's version and what LibTorch sees, as `nfn info` prints them (the Python side adds
/// LibTorch's version: the process has one LibTorch, torch's).
#[pyfunction]
fn info() -> String {
    format!(
        "nfn-rs {}, {} intra-op threads, cuda available: {}",
        env!("CARGO_PKG_VERSION"),
        tch::get_num_threads(),
        tch::Cuda::is_available()
    )
}

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(info, m)?)?;
    m.add_function(wrap_pyfunction!(data_ptr, m)?)?;
    m.add_function(wrap_pyfunction!(copy, m)?)?;
    data::register(m)?;
    models::register(m)?;
    Ok(())
}
