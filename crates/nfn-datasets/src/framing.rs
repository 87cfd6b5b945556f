//! The framing of our binary files (INR shards, edit targets): an 8-byte magic, the payload length
//! (u64 LE), its CRC-32 (u32 LE), then the bincode payload; so that a truncated, torn or foreign
//! file is refused with the file named, never decoded as whole.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// The CRC-32 of `bytes`.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// `value` framed with `magic`.
pub(crate) fn frame<T: Serialize>(magic: &[u8; 8], value: &T) -> Vec<u8> {
    frame_bytes(magic, &bincode::serialize(value).expect("in-memory records serialise"))
}

/// The raw `payload` framed with `magic` (magic, length, CRC-32, payload): public for the fuzzer,
/// which frames arbitrary payloads to reach the decoder behind the CRC.
pub fn frame_bytes(magic: &[u8; 8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 20);
    out.extend_from_slice(magic);
    out.extend((payload.len() as u64).to_le_bytes());
    out.extend(crc32(payload).to_le_bytes());
    out.extend(payload);
    out
}

/// The value framed in `bytes` with `magic`; `what` names the kind of file and `path` the file in
/// errors.
///
/// # Errors
/// [`Error::File`] for a wrong magic, a truncated file or trailing bytes, a CRC mismatch or an
/// undecodable payload.
pub(crate) fn unframe<T: DeserializeOwned>(
    bytes: &[u8],
    magic: &[u8; 8],
    what: &str,
    path: &Path,
) -> Result<T> {
    let bad = |m: String| Error::file(path, m);
    if bytes.len() < 20 || &bytes[..8] != magic {
        return Err(bad(format!("not {what} (bad magic or shorter than the header)")));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let payload = &bytes[20..];
    if payload.len() != len {
        let kind = if payload.len() < len { "truncated" } else { "trailing bytes" };
        return Err(bad(format!(
            "{kind}: header says {len} payload bytes, found {}",
            payload.len()
        )));
    }
    if crc32(payload) != crc {
        return Err(bad(format!("corrupt: CRC-32 {:#010x} != stored {crc:#010x}", crc32(payload))));
    }
    bincode::deserialize(payload).map_err(|e| bad(format!("cannot decode {what}: {e}")))
}
