//! IDX files (the MNIST / FashionMNIST format), plain or gzipped.
//!
//! Layout: two zero bytes, a type byte (`0x08` = unsigned byte, the only type these sets use), the
//! number of dimensions, that many big-endian `u32` sizes, then the data in row-major order.

use std::io::{Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::error::{Error, Result};

/// The IDX type byte for unsigned bytes.
const UBYTE: u8 = 0x08;

/// An unsigned-byte IDX array: its sizes and row-major data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes, outermost first (`[n, rows, cols]` for images, `[n]` for labels).
    pub dims: Vec<usize>,
    /// The values, row-major; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Read a file's bytes, gunzipping if it starts with the gzip magic `1f 8b`.
///
/// # Errors
/// [`Error::File`] naming the file if it cannot be opened, is a broken gzip stream, or expands past
/// 64 times its size plus 64 MiB.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        // image files compress 2-10x; a stream that expands past 64x (plus 64 MiB) is a gzip bomb
        let limit = raw.len().saturating_mul(64).saturating_add(64 << 20);
        let mut out = Vec::with_capacity(raw.len() * 4);
        GzDecoder::new(raw.as_slice())
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::file(path, format!("broken or truncated gzip stream: {e}")))?;
        if out.len() > limit {
            return Err(Error::file(
                path,
                format!("gzip stream expands past {limit} bytes, 64x its size (gzip bomb?)"),
            ));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parse IDX bytes; `path` only names the source in errors.
///
/// # Errors
/// [`Error::File`] for a bad magic, a type other than unsigned byte, or data shorter or longer
/// than the header says.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    let bad = |m: String| Error::file(path, m);
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file: it must start with two zero bytes".into()));
    }
    if bytes[2] != UBYTE {
        return Err(bad(format!("IDX type byte {:#04x} unsupported, expected 0x08", bytes[2])));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        return Err(bad(format!("truncated IDX header ({ndim} dims, {} bytes)", bytes.len())));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("IDX sizes {dims:?} overflow")))?;
    let body = &bytes[header..];
    if body.len() != len {
        let what = if body.len() < len { "truncated" } else { "trailing bytes" };
        return Err(bad(format!(
            "{what}: header {dims:?} needs {len} data bytes, found {}",
            body.len()
        )));
    }
    Ok(IdxArray { dims, data: body.to_vec() })
}

/// Read an IDX file (gzipped or not).
///
/// # Errors
/// As [`read_maybe_gz`] and [`parse_idx`].
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    parse_idx(&read_maybe_gz(path)?, path)
}

/// Read an IDX file and check it has `ndim` dimensions.
///
/// # Errors
/// As [`read_idx`], plus [`Error::File`] for another rank.
pub fn read_idx_rank(path: impl AsRef<Path>, ndim: usize) -> Result<IdxArray> {
    let path = path.as_ref();
    let array = read_idx(path)?;
    if array.dims.len() != ndim {
        return Err(Error::file(
            path,
            format!("expected {ndim} IDX dimension(s), found {:?}", array.dims),
        ));
    }
    Ok(array)
}

/// Write an unsigned-byte IDX file (gzipped if `gzip`), atomically. Used by tests and fixtures.
///
/// # Errors
/// [`Error::InvalidArgument`] if `data.len()` is not the product of `dims`; [`Error::WeightSpace`]
/// naming the file if it cannot be written.
pub fn write_idx(path: impl AsRef<Path>, dims: &[usize], data: &[u8], gzip: bool) -> Result<()> {
    if dims.iter().product::<usize>() != data.len() || dims.is_empty() || dims.len() > 255 {
        return Err(Error::InvalidArgument(format!(
            "IDX sizes {dims:?} do not match {} data bytes",
            data.len()
        )));
    }
    let mut bytes = vec![0, 0, UBYTE, dims.len() as u8];
    for &d in dims {
        let d = u32::try_from(d)
            .map_err(|_| Error::InvalidArgument(format!("IDX size {d} exceeds u32")))?;
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    nfn_weightspace::io::write_atomically(path.as_ref(), |out| {
        if gzip {
            let mut enc = GzEncoder::new(out, flate2::Compression::fast());
            enc.write_all(&bytes).map_err(|e| e.to_string())?;
            enc.finish().map(|_| ()).map_err(|e| e.to_string())
        } else {
            out.write_all(&bytes).map_err(|e| e.to_string())
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_bad_input() {
        let p = Path::new("x.idx");
        assert!(parse_idx(&[1, 0, 8, 1], p).is_err());
        assert!(parse_idx(&[0, 0, 9, 1, 0, 0, 0, 1, 7], p).is_err());
        assert!(parse_idx(&[0, 0, 8, 1, 0, 0], p).is_err());
        let err = parse_idx(&[0, 0, 8, 1, 0, 0, 0, 3, 7, 8], p).expect_err("truncated");
        assert!(err.to_string().contains("truncated") && err.to_string().contains("x.idx"));
        let ok = parse_idx(&[0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 2, 7, 8], p).expect("valid");
        assert_eq!(ok, IdxArray { dims: vec![1, 2], data: vec![7, 8] });
    }
}
