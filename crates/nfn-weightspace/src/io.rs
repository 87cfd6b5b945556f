//! ndarray conversion and `.npy` / `.npz` files for tensors and weight-space features.
//!
//! An `.npz` of weight-space features holds `W0 .. W{L-1}` and `b0 .. b{L-1}`, each with a leading
//! batch axis. Arrays without a channel axis (`W` rank 3 or 5, `b` rank 2, as converted reference data
//! sets store them) get a singleton channel axis on reading. `f32` and `f64` are accepted.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use ndarray_npy::{NpzReader, NpzWriter, ReadNpyError, ReadNpyExt, ReadNpzError, WriteNpyExt};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::features::WeightSpaceFeatures;

/// Per-layer `(weights, biases)` as ndarrays.
pub type NdarrayParts<T> = (Vec<ArrayD<T>>, Vec<ArrayD<T>>);

/// A tensor from an `f32` or `f64` ndarray (the one ndarray-to-tensor conversion of this crate).
///
/// # Errors
/// [`Error::Tch`] if LibTorch rejects the data.
pub fn tensor_from_array<T: tch::kind::Element + Copy>(array: &ArrayD<T>) -> Result<Tensor> {
    let shape: Vec<i64> = array.shape().iter().map(|&d| d as i64).collect();
    let data: Vec<T> = array.iter().copied().collect();
    Ok(Tensor::f_from_slice(&data)?.f_reshape(shape)?)
}

/// An ndarray from a tensor of element type `T` (converted from the tensor's dtype).
///
/// # Errors
/// [`Error::Tch`] if the conversion fails.
pub fn array_from_tensor<T: tch::kind::Element + Copy>(xs: &Tensor) -> Result<ArrayD<T>> {
    let xs = xs.f_to_kind(T::KIND)?.f_contiguous()?.f_to_device(tch::Device::Cpu)?;
    let array: ArrayD<T> = (&xs).try_into()?;
    Ok(array)
}

/// Either float width a file may hold.
enum FloatArray {
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
}

impl FloatArray {
    fn to_tensor(&self) -> Result<Tensor> {
        match self {
            FloatArray::F32(a) => tensor_from_array(a),
            FloatArray::F64(a) => tensor_from_array(a),
        }
    }
}

fn npy_error(path: &Path, entry: Option<&str>, e: ReadNpyError) -> Error {
    let what = entry.map_or_else(String::new, |n| format!("array {n:?}: "));
    let message = match e {
        ReadNpyError::WrongDescriptor(d) => {
            format!("{what}unsupported dtype {d}, expected float32 or float64")
        }
        ReadNpyError::MissingData => {
            format!("{what}truncated: the data is shorter than the header says")
        }
        ReadNpyError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("{what}truncated: unexpected end of file")
        }
        other => format!("{what}not a valid .npy array: {other}"),
    };
    Error::file(path, message)
}

fn read_float<R: std::io::Read>(
    path: &Path,
    entry: Option<&str>,
    mut open: impl FnMut() -> Result<R>,
) -> Result<FloatArray> {
    match ArrayD::<f32>::read_npy(open()?) {
        Ok(a) => Ok(FloatArray::F32(a)),
        Err(ReadNpyError::WrongDescriptor(_)) => ArrayD::<f64>::read_npy(open()?)
            .map(FloatArray::F64)
            .map_err(|e| npy_error(path, entry, e)),
        Err(e) => Err(npy_error(path, entry, e)),
    }
}

fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path).map(BufReader::new).map_err(|e| Error::file(path, format!("cannot open: {e}")))
}

/// Read a float32/float64 `.npy` file as a tensor of the same dtype.
///
/// # Errors
/// [`Error::File`] naming the file and the problem: missing, truncated, not `.npy`, wrong dtype.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    read_float(path, None, || open(path))?.to_tensor()
}

/// A temporary name beside `path` for writing it atomically: `.tmp-<host>-<pid>-<n>-<name>`, which
/// keeps the extension (safetensors writers want it) and is unique across the processes of one
/// machine and across machines (or Kubernetes pods, which often all run as pid 1) writing parts of
/// one job into a shared folder.
pub fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let host = HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect())
            .unwrap_or_default()
    });
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".tmp-{host}-{}-{n}-{name}", std::process::id()))
}

/// Write `path` atomically: `f` writes a temporary file in the same folder ([`temp_path`]), which
/// is then renamed.
///
/// # Errors
/// [`Error::File`] naming `path` if writing or renaming fails.
pub fn write_atomically(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<File>) -> std::result::Result<(), String>,
) -> Result<()> {
    if path.file_name().is_none() {
        return Err(Error::file(path, "not a file path"));
    }
    replace_atomically(path, |tmp| {
        let mut out = BufWriter::new(File::create(tmp).map_err(|e| e.to_string())?);
        f(&mut out)?;
        out.flush().map_err(|e| e.to_string())
    })
    .map_err(|message| Error::file(path, message))
}

/// Replace `path` atomically through a writer that takes a path (LibTorch's safetensors writer,
/// say): `write` fills a temporary file beside `path` ([`temp_path`]), which is synced to disk and
/// renamed over `path`. If anything fails (a full disk, a kill) `path` keeps its previous content
/// and the temporary file is removed.
///
/// # Errors
/// The message of the failing step, for the caller's typed error.
pub fn replace_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let tmp = temp_path(path);
    let result = write(&tmp)
        .and_then(|()| File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| e.to_string()))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_float<W: Write>(xs: &Tensor, out: W) -> std::result::Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    match xs.kind() {
        Kind::Double => array_from_tensor::<f64>(xs).map_err(|e| err(&e))?.write_npy(out),
        _ => array_from_tensor::<f32>(xs).map_err(|e| err(&e))?.write_npy(out),
    }
    .map_err(|e| err(&e))
}

/// Write a tensor to `.npy` (float64 stays float64, everything else is written as float32), atomically.
///
/// # Errors
/// [`Error::File`] naming the file if it cannot be written.
pub fn write_npy(path: impl AsRef<Path>, xs: &Tensor) -> Result<()> {
    write_atomically(path.as_ref(), |out| write_float(xs, out))
}

impl WeightSpaceFeatures {
    /// Convert to ndarrays of element type `T`: `(weights, biases)`, one array per layer.
    ///
    /// # Errors
    /// [`Error::Tch`] if a conversion fails.
    pub fn to_ndarray<T: tch::kind::Element + Copy>(&self) -> Result<NdarrayParts<T>> {
        let conv =
            |ts: &[Tensor]| ts.iter().map(array_from_tensor::<T>).collect::<Result<Vec<_>>>();
        Ok((conv(self.weights())?, conv(self.biases())?))
    }

    /// Features from ndarrays (checked like [`WeightSpaceFeatures::new`]).
    ///
    /// # Errors
    /// As [`WeightSpaceFeatures::new`].
    pub fn from_ndarray<T: tch::kind::Element + Copy>(
        weights: &[ArrayD<T>],
        biases: &[ArrayD<T>],
    ) -> Result<Self> {
        let conv =
            |arrs: &[ArrayD<T>]| arrs.iter().map(tensor_from_array).collect::<Result<Vec<_>>>();
        WeightSpaceFeatures::new(conv(weights)?, conv(biases)?)
    }

    /// Write to an `.npz` file with arrays `W{l}` and `b{l}`, atomically.
    ///
    /// # Errors
    /// [`Error::File`] naming the file if it cannot be written.
    pub fn write_npz(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomically(path.as_ref(), |out| {
            let mut npz = NpzWriter::new(out);
            for (prefix, ts) in [("W", self.weights()), ("b", self.biases())] {
                for (l, t) in ts.iter().enumerate() {
                    let name = format!("{prefix}{l}");
                    let res = match t.kind() {
                        Kind::Double => npz.add_array(
                            name,
                            &array_from_tensor::<f64>(t).map_err(|e| e.to_string())?,
                        ),
                        _ => npz.add_array(
                            name,
                            &array_from_tensor::<f32>(t).map_err(|e| e.to_string())?,
                        ),
                    };
                    res.map_err(|e| e.to_string())?;
                }
            }
            npz.finish().map(|_| ()).map_err(|e| e.to_string())
        })
    }

    /// Read features written by [`Self::write_npz`] (or converted reference data: see the module docs).
    ///
    /// # Errors
    /// [`Error::File`] naming the file and the problem (missing, not a zip, truncated, missing or
    /// extra arrays, wrong dtype, wrong shapes).
    pub fn read_npz(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bad = |m: String| Error::file(path, m);
        let zip_err = |e: ReadNpzError| match e {
            ReadNpzError::Npy(e) => npy_error(path, None, e),
            other => bad(format!("not a readable .npz archive: {other}")),
        };
        let mut npz = NpzReader::new(open(path)?).map_err(zip_err)?;
        let names = npz.names().map_err(zip_err)?;
        let n = (0..).take_while(|l| names.contains(&format!("W{l}"))).count();
        if n == 0 || names.len() != 2 * n || (0..n).any(|l| !names.contains(&format!("b{l}"))) {
            return Err(bad(format!(
                "expected arrays W0..W{{L-1}} and b0..b{{L-1}}, found {names:?}"
            )));
        }
        let mut read = |name: String, plain_rank: usize| -> Result<Tensor> {
            let t = match npz.by_name::<ndarray::OwnedRepr<f32>, ndarray::IxDyn>(&name) {
                Ok(a) => tensor_from_array(&a)?,
                Err(ReadNpzError::Npy(ReadNpyError::WrongDescriptor(_))) => {
                    let a = npz.by_name::<ndarray::OwnedRepr<f64>, ndarray::IxDyn>(&name);
                    let a = a.map_err(|e| match e {
                        ReadNpzError::Npy(e) => npy_error(path, Some(&name), e),
                        other => bad(format!("array {name:?}: {other}")),
                    })?;
                    tensor_from_array(&a)?
                }
                Err(ReadNpzError::Npy(e)) => return Err(npy_error(path, Some(&name), e)),
                Err(other) => return Err(bad(format!("array {name:?}: {other}"))),
            };
            Ok(if t.dim() == plain_rank { t.unsqueeze(1) } else { t })
        };
        let mut weights = Vec::with_capacity(n);
        let mut biases = Vec::with_capacity(n);
        for l in 0..n {
            let w = read(format!("W{l}"), 3)?;
            let w = if w.dim() == 5 { w.unsqueeze(1) } else { w };
            weights.push(w);
            biases.push(read(format!("b{l}"), 2)?);
        }
        WeightSpaceFeatures::new(weights, biases).map_err(|e| bad(e.to_string()))
    }
}
