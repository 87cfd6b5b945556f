//! A narrow reader of MATLAB v5 `.mat` files (the format of SVHN's cropped digits): the top-level
//! `miMATRIX` elements, zlib-compressed (`miCOMPRESSED`) or not, holding real numeric arrays.
//! Cells, structs, sparse and complex arrays are refused.
//!
//! Why not the `matfile` crate: fuzzing it through our SVHN reader found an integer overflow panic
//! within two seconds (a hostile element size in its padding arithmetic), and it inflates compressed
//! elements without a bound. This reader does its arithmetic checked, bounds every inflated element
//! (64 times its compressed size plus 64 MiB: SVHN's compress about 1.2x) and is fuzzed
//! (`svhn_mat` in `crates/nfn-fuzz`).

use std::io::Read as _;
use std::path::Path;

use crate::error::{Error, Result};

/// One real numeric array.
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    /// Its variable name.
    pub name: String,
    /// Its dimensions, as MATLAB gives them (column-major: the first varies fastest).
    pub dims: Vec<usize>,
    /// Its MATLAB class (`mxDOUBLE_CLASS` 6, `mxUINT8_CLASS` 9, ...).
    pub class: u8,
    /// Its values in column-major order, in the stored element type.
    pub data: MatData,
}

/// The values of an array, in the type the file stores them (MATLAB may store a double array as
/// a narrower integer type when its values fit).
#[derive(Debug, Clone, PartialEq)]
pub enum MatData {
    /// `miUINT8`.
    U8(Vec<u8>),
    /// Any other numeric type, widened.
    F64(Vec<f64>),
}

impl MatData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            MatData::U8(v) => v.len(),
            MatData::F64(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// Read every real numeric array of a MATLAB v5 file.
///
/// # Errors
/// [`Error::File`] naming the file if it cannot be read, is not a little-endian MATLAB v5 file, is
/// truncated, holds an element that does not parse, or a compressed element that expands past its
/// bound.
pub fn read_mat(path: &Path) -> Result<Vec<MatArray>> {
    let bad = |m: String| Error::file(path, m);
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    if bytes.len() < 128 || !bytes.starts_with(b"MATLAB 5.0 MAT-file") {
        return Err(bad("not a MATLAB v5 file (no \"MATLAB 5.0 MAT-file\" header)".into()));
    }
    if &bytes[126..128] != b"IM" {
        return Err(bad("not a little-endian MATLAB v5 file".into()));
    }
    let mut arrays = Vec::new();
    let mut rest = &bytes[128..];
    while !rest.is_empty() {
        let (ty, data, next) = element(rest).map_err(|m| bad(m.to_string()))?;
        match ty {
            MI_MATRIX => arrays.push(matrix(data).map_err(|m| bad(m.to_string()))?),
            MI_COMPRESSED => {
                let limit = data.len().saturating_mul(64).saturating_add(64 << 20);
                let mut inflated = Vec::new();
                flate2::read::ZlibDecoder::new(data)
                    .take(limit as u64 + 1)
                    .read_to_end(&mut inflated)
                    .map_err(|e| bad(format!("broken compressed element: {e}")))?;
                if inflated.len() > limit {
                    return Err(bad(format!("a compressed element expands past {limit} bytes")));
                }
                let (ty, data, _) = element(&inflated).map_err(|m| bad(m.to_string()))?;
                if ty == MI_MATRIX {
                    arrays.push(matrix(data).map_err(|m| bad(m.to_string()))?);
                }
            }
            _ => {} // other top-level elements carry nothing we read
        }
        rest = next;
    }
    Ok(arrays)
}

/// The element at the start of `bytes`: its type, its data and what follows it (after padding).
/// Handles the small format (type and size in one word, up to 4 bytes of data in the next).
fn element(bytes: &[u8]) -> std::result::Result<(u32, &[u8], &[u8]), &'static str> {
    let word = |i: usize| -> std::result::Result<u32, &'static str> {
        let b = bytes.get(i..i + 4).ok_or("truncated element tag")?;
        Ok(u32::from_le_bytes(b.try_into().expect("four bytes")))
    };
    let first = word(0)?;
    if first >> 16 != 0 {
        let (ty, size) = (first & 0xffff, (first >> 16) as usize);
        if size > 4 || bytes.len() < 8 {
            return Err("bad small data element");
        }
        return Ok((ty, &bytes[4..4 + size], &bytes[8..]));
    }
    let size = word(4)? as usize;
    let end = 8usize.checked_add(size).filter(|&e| e <= bytes.len()).ok_or("truncated element")?;
    // padding to 8 bytes, except after compressed elements (and at the end of the file)
    let padded =
        if first == MI_COMPRESSED { end } else { end.next_multiple_of(8).min(bytes.len()) };
    Ok((first, &bytes[8..end], &bytes[padded..]))
}

/// A `miMATRIX` element's data: array flags, dimensions, name, real part.
fn matrix(data: &[u8]) -> std::result::Result<MatArray, &'static str> {
    let (ty, flags, rest) = element(data)?;
    if ty != 6 || flags.len() != 8 {
        return Err("array flags missing");
    }
    let class = flags[0];
    if flags[1] & 0x08 != 0 {
        return Err("complex arrays are not supported");
    }
    if !(6..=15).contains(&class) {
        return Err("only numeric arrays are supported (not cells, structs, chars or sparse)");
    }
    let (ty, dims, rest) = element(rest)?;
    if ty != 5 || dims.len() % 4 != 0 || dims.is_empty() {
        return Err("array dimensions missing");
    }
    let dims: Vec<usize> = dims
        .chunks_exact(4)
        .map(|d| i32::from_le_bytes(d.try_into().expect("four bytes")))
        .map(|d| usize::try_from(d).map_err(|_| "negative dimension"))
        .collect::<std::result::Result<_, _>>()?;
    let count =
        dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or("dimensions overflow")?;
    let (ty, name, rest) = element(rest)?;
    if ty != 1 {
        return Err("array name missing");
    }
    let name = String::from_utf8(name.to_vec()).map_err(|_| "array name is not UTF-8")?;
    let (ty, real, _) = element(rest)?;
    let width = match ty {
        1 | 2 => 1,
        3 | 4 => 2,
        5..=7 => 4,
        9 | 12 | 13 => 8,
        _ => return Err("unsupported numeric element type"),
    };
    if real.len() != count.checked_mul(width).ok_or("dimensions overflow")? {
        return Err("array data size does not match its dimensions");
    }
    let data = if ty == 2 {
        MatData::U8(real.to_vec())
    } else {
        MatData::F64(
            real.chunks_exact(width)
                .map(|b| match ty {
                    1 => f64::from(b[0] as i8),
                    3 => f64::from(i16::from_le_bytes([b[0], b[1]])),
                    4 => f64::from(u16::from_le_bytes([b[0], b[1]])),
                    5 => f64::from(i32::from_le_bytes(b.try_into().expect("4 bytes"))),
                    6 => f64::from(u32::from_le_bytes(b.try_into().expect("4 bytes"))),
                    7 => f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))),
                    12 => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
                    13 => u64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
                    _ => f64::from_le_bytes(b.try_into().expect("8 bytes")),
                })
                .collect(),
        )
    };
    Ok(MatArray { name, dims, class, data })
}
