//! Tensors between PyTorch and LibTorch without copies, through DLPack.
//!
//! Both sides run the same LibTorch (the `torch` wheel's, loaded once per process), so a tensor
//! only needs its memory handed over, never its values:
//!
//! - **In** ([`Borrowed`]): a `torch.Tensor` is imported with `__dlpack__` (dlpark's consumer) and
//!   wrapped by `Tensor::from_blob` over the same memory. The import keeps the PyTorch tensor alive
//!   until the [`Borrowed`] is dropped, at the end of the call; nothing here keeps a borrowed tensor
//!   past that (every output is a tensor LibTorch allocated).
//! - **Out** ([`export`]): a LibTorch tensor is boxed into a DLPack managed tensor (dlpark's
//!   producer) whose deleter drops the box, and the capsule goes to `torch.from_dlpack` on the
//!   Python side: the `torch.Tensor` owns the LibTorch tensor from then on.
#![allow(unsafe_code)]

use dlpark::ffi::{DLDataType, DLDataTypeCode, DLDevice, DLDeviceType, DLManagedTensor};
use dlpark::metadata::Dynamic;
use dlpark::python::ImportedDlpack;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use tch::{Device, Kind, Tensor};

/// A PyTorch tensor seen as a LibTorch tensor over the same memory, valid while this lives.
pub struct Borrowed {
    /// The LibTorch view (no autograd history; the PyTorch side's is not carried over).
    pub tensor: Tensor,
    // Dropped after `tensor` (fields drop in order): releases the PyTorch tensor.
    _owner: ImportedDlpack,
}

fn kind_of(dtype: DLDataType, what: &str) -> PyResult<Kind> {
    let kind = match (dtype.code, dtype.bits, dtype.lanes) {
        (DLDataTypeCode::FLOAT, 32, 1) => Kind::Float,
        (DLDataTypeCode::FLOAT, 64, 1) => Kind::Double,
        (DLDataTypeCode::FLOAT, 16, 1) => Kind::Half,
        (DLDataTypeCode::BFLOAT, 16, 1) => Kind::BFloat16,
        (DLDataTypeCode::INT, 64, 1) => Kind::Int64,
        (DLDataTypeCode::INT, 32, 1) => Kind::Int,
        (DLDataTypeCode::UINT, 8, 1) => Kind::Uint8,
        (DLDataTypeCode::BOOL, 8, 1) => Kind::Bool,
        _ => {
            return Err(PyTypeError::new_err(format!(
                "{what}: unsupported dtype (DLPack code {}, {} bits, {} lanes)",
                dtype.code.0, dtype.bits, dtype.lanes
            )))
        }
    };
    Ok(kind)
}

fn dtype_of(kind: Kind) -> PyResult<DLDataType> {
    Ok(match kind {
        Kind::Float => DLDataType::F32,
        Kind::Double => DLDataType::F64,
        Kind::Half => DLDataType::F16,
        Kind::BFloat16 => DLDataType::BF16,
        Kind::Int64 => DLDataType::I64,
        Kind::Int => DLDataType::I32,
        Kind::Uint8 => DLDataType::U8,
        Kind::Bool => DLDataType::BOOL,
        other => {
            return Err(PyTypeError::new_err(format!("cannot hand a {other:?} tensor to PyTorch")))
        }
    })
}

/// Borrow the `torch.Tensor` `obj` (any object with `__dlpack__`) as a LibTorch tensor; `what`
/// names it in errors.
///
/// # Errors
/// `TypeError` for an object that is not a tensor or has an unsupported dtype; `ValueError` for a
/// device LibTorch here cannot address.
pub fn borrow(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Borrowed> {
    if !obj.hasattr("__dlpack__")? {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a torch.Tensor, got {}",
            obj.get_type().name()?
        )));
    }
    let owner = dlpark::python::from_dlpack(obj.as_borrowed(), None, None)?;
    let tensor = {
        let view = owner.validate().map_err(|e| PyValueError::new_err(format!("{what}: {e}")))?;
        let kind = kind_of(view.dtype(), what)?;
        let device = match view.device() {
            DLDevice { device_type: DLDeviceType::CPU, .. } => Device::Cpu,
            DLDevice { device_type: DLDeviceType::CUDA, device_id } => {
                Device::Cuda(device_id as usize)
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "{what}: tensors on DLPack device type {} are not supported",
                    other.device_type.0
                )))
            }
        };
        let shape = view.shape().to_vec();
        let strides = view
            .strides_or_compact()
            .map_err(|e| PyValueError::new_err(format!("{what}: {e}")))?
            .to_vec();
        // SAFETY: `owner` keeps the memory alive and unmoved while `Borrowed` lives, and the
        // pointer, byte offset, shape, strides and dtype come from its validated descriptor.
        unsafe {
            let data = view
                .offset_bytes_ptr()
                .map_err(|e| PyValueError::new_err(format!("{what}: {e}")))?;
            Tensor::f_from_blob(data, &shape, &strides, kind, device)
                .map_err(|e| PyValueError::new_err(format!("{what}: {e}")))?
        }
    };
    Ok(Borrowed { tensor, _owner: owner })
}

/// A DLPack capsule owning `t` (detached from any autograd graph), for `torch.from_dlpack`.
///
/// # Errors
/// A dtype or device PyTorch cannot receive through DLPack.
pub fn export(py: Python<'_>, t: Tensor) -> PyResult<Bound<'_, PyAny>> {
    let t = if t.requires_grad() { t.detach() } else { t };
    let dims = t.size();
    let strides = t.stride();
    let dtype = dtype_of(t.kind())?;
    let device = match t.device() {
        Device::Cpu => DLDevice::CPU,
        Device::Cuda(i) => DLDevice::cuda(i as i32),
        other => {
            return Err(PyValueError::new_err(format!(
                "cannot hand a tensor on {other:?} to PyTorch"
            )))
        }
    };
    let data = t.data_ptr();
    let prepared = Dynamic::new(dims, strides)
        .prepare_as::<DLManagedTensor>()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    // The box is the managed tensor's context: DLPack's deleter drops it, and with it `t`.
    let mut initialized = prepared.initialize(Box::new(t));
    initialized.set_data(data).set_dtype(dtype).set_device(device);
    // SAFETY: the data pointer, shape, strides, dtype and device all describe the boxed tensor,
    // which owns its memory (a LibTorch allocation) until the deleter runs.
    let managed = unsafe { initialized.finish() };
    managed.into_pyobject(py)
}
