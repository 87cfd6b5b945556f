//! Reading rows of a 2-D little-endian float `.npy` file (the zoo's `weights.npy`) one at a time,
//! without loading or mapping the whole file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Float width of a `weights.npy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NpyFloat {
    /// `'<f4'`.
    F32,
    /// `'<f8'`, converted to f32 row by row.
    F64,
}

/// A C-order 2-D little-endian float `.npy` file, read one row at a time.
#[derive(Debug)]
pub(super) struct NpyRows {
    file: File,
    /// The file, for errors.
    pub(super) path: PathBuf,
    dtype: NpyFloat,
    /// `[rows, cols]`.
    pub(super) shape: [i64; 2],
    /// Byte offset of row 0.
    data_start: u64,
    bytes: Vec<u8>,
}

/// The value of `key` in a parsed `.npy` header dictionary.
fn header_value<'a>(
    dict: &'a [(py_literal::Value, py_literal::Value)],
    key: &str,
) -> Option<&'a py_literal::Value> {
    dict.iter().find(|(k, _)| matches!(k, py_literal::Value::String(s) if s == key)).map(|(_, v)| v)
}

impl NpyRows {
    /// Open `path` and check its header and its length against the header.
    pub(super) fn open(path: &Path) -> Result<Self> {
        use py_literal::Value;
        let bad = |message: String| Error::file(path, format!("not a .npy file: {message}"));
        let mut file =
            File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
        let mut magic = [0u8; 8];
        file.read_exact(&mut magic).map_err(|e| bad(e.to_string()))?;
        if &magic[..6] != b"\x93NUMPY" {
            return Err(bad("no \\x93NUMPY magic string".into()));
        }
        let len_bytes = match magic[6] {
            1 => 2,
            2 | 3 => 4,
            v => return Err(bad(format!("unknown format version {v}"))),
        };
        let mut len = [0u8; 4];
        file.read_exact(&mut len[..len_bytes]).map_err(|e| bad(e.to_string()))?;
        let mut header = vec![0u8; u32::from_le_bytes(len) as usize];
        file.read_exact(&mut header).map_err(|e| bad(format!("header: {e}")))?;
        let data_start = (8 + len_bytes + header.len()) as u64;
        let text = std::str::from_utf8(&header).map_err(|e| bad(format!("header: {e}")))?;
        let dict = match text.trim_end().parse::<Value>() {
            Ok(Value::Dict(dict)) => dict,
            _ => return Err(bad(format!("header {text:?} is not a dictionary"))),
        };
        let field = |key: &str| {
            header_value(&dict, key).ok_or_else(|| bad(format!("header {text:?} lacks {key:?}")))
        };
        let dtype = match field("descr")? {
            Value::String(d) if d == "<f4" => NpyFloat::F32,
            Value::String(d) if d == "<f8" => NpyFloat::F64,
            d => {
                return Err(Error::file(
                    path,
                    format!(
                        "unsupported dtype {d}: expected little-endian float32 '<f4' \
                         (or float64 '<f8', converted to float32)"
                    ),
                ))
            }
        };
        if !matches!(field("fortran_order")?, Value::Boolean(false)) {
            return Err(Error::file(
                path,
                "Fortran-order array: save it in C order (numpy.ascontiguousarray)",
            ));
        }
        let dims: Option<Vec<i64>> = match field("shape")? {
            Value::Tuple(dims) => dims
                .iter()
                .map(|d| d.as_integer().and_then(|i| i.to_string().parse().ok()))
                .collect(),
            _ => None,
        };
        let shape = match dims.as_deref() {
            Some(&[rows, cols]) => [rows, cols],
            _ => {
                return Err(Error::mismatch(
                    path,
                    format!("expected a 2-D array, header says {text:?}"),
                ))
            }
        };
        let elem = match dtype {
            NpyFloat::F32 => 4,
            NpyFloat::F64 => 8,
        };
        let row_bytes = shape[1] as u64 * elem;
        let needed =
            (shape[0] as u64).checked_mul(row_bytes).and_then(|n| n.checked_add(data_start));
        let len =
            file.metadata().map_err(|e| Error::file(path, format!("cannot stat: {e}")))?.len();
        match needed {
            Some(needed) if len >= needed => {}
            _ => {
                return Err(Error::file(
                    path,
                    format!(
                        "truncated: {len} bytes, but the header's shape {shape:?} needs {needed:?}"
                    ),
                ))
            }
        }
        let bytes = vec![0u8; row_bytes as usize];
        Ok(Self { file, path: path.to_path_buf(), dtype, shape, data_start, bytes })
    }

    /// Read row `row` (`< shape[0]`) into `out` (`shape[1]` values).
    pub(super) fn read_row(&mut self, row: i64, out: &mut [f32]) -> Result<()> {
        let offset = self.data_start + row as u64 * self.bytes.len() as u64;
        let read = self
            .file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut self.bytes));
        read.map_err(|e| Error::file(&self.path, format!("row {row}: {e}")))?;
        match self.dtype {
            NpyFloat::F32 => {
                for (x, b) in out.iter_mut().zip(self.bytes.chunks_exact(4)) {
                    *x = f32::from_le_bytes(b.try_into().expect("chunks of 4 bytes"));
                }
            }
            NpyFloat::F64 => {
                for (x, b) in out.iter_mut().zip(self.bytes.chunks_exact(8)) {
                    *x = f64::from_le_bytes(b.try_into().expect("chunks of 8 bytes")) as f32;
                }
            }
        }
        Ok(())
    }
}
