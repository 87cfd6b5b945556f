//! Hostile `.pth` files: the reader executes no pickle code and allocates no more than the file
//! justifies. Each case is a zip written here around a hand-assembled pickle; each must end in
//! [`Error::File`] naming the file and the problem, never in a panic, an abort or a huge
//! allocation. A well-formed file assembled the same way reads back first, so that every hostile
//! case fails for its own reason and not for a mistake in the assembly.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use nfn_datasets::pth::read_state_dict;
use nfn_datasets::Error;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

/// A pickle string (`BINUNICODE`).
fn text(s: &str) -> Vec<u8> {
    let mut out = vec![b'X'];
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
    out
}

/// A pickle integer (`LONG1`, 8 bytes).
fn int(v: i64) -> Vec<u8> {
    let mut out = vec![0x8a, 8];
    out.extend(v.to_le_bytes());
    out
}

/// `GLOBAL module.name`.
fn global(module: &str, name: &str) -> Vec<u8> {
    [b"c".as_slice(), module.as_bytes(), b"\n", name.as_bytes(), b"\n"].concat()
}

/// A tuple of integers (`MARK ... TUPLE`).
fn ints(values: &[i64]) -> Vec<u8> {
    let mut out = vec![b'('];
    values.iter().for_each(|&v| out.extend(int(v)));
    out.push(b't');
    out
}

/// `_rebuild_tensor_v2(storage(key, numel), 0, size, stride, False, OrderedDict())`.
fn tensor(key: &str, numel: i64, size: &[i64], stride: &[i64]) -> Vec<u8> {
    let mut out = global("torch._utils", "_rebuild_tensor_v2");
    out.push(b'(');
    out.push(b'(');
    out.extend(text("storage"));
    out.extend(global("torch", "FloatStorage"));
    out.extend(text(key));
    out.extend(text("cpu"));
    out.extend(int(numel));
    out.extend(b"tQ"); // the persistent id tuple, then BINPERSID
    out.extend(int(0));
    out.extend(ints(size));
    out.extend(ints(stride));
    out.push(0x89); // False
    out.extend(global("collections", "OrderedDict"));
    out.extend(b")R"); // OrderedDict()
    out.extend(b"tR"); // the argument tuple, then REDUCE
    out
}

/// A state dict `{name: tensor}` as `torch.save` lays it out (protocol 2).
fn state_dict(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0x80, 2];
    out.extend(global("collections", "OrderedDict"));
    out.extend(b")R");
    for (name, value) in entries {
        out.extend(text(name));
        out.extend(value);
        out.push(b's');
    }
    out.push(b'.');
    out
}

/// Write `archive/data.pkl` and `archive/data/<key>` entries to `dir/name`.
fn write_pth(
    dir: &Path,
    name: &str,
    pickle: &[u8],
    storages: &[(&str, Vec<u8>)],
    method: CompressionMethod,
) -> PathBuf {
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = SimpleFileOptions::default().compression_method(method);
    zip.start_file("archive/data.pkl", options).unwrap();
    zip.write_all(pickle).unwrap();
    for (key, bytes) in storages {
        zip.start_file(format!("archive/data/{key}"), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    path
}

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The file must be refused with [`Error::File`] naming it and saying `what`.
fn refused(path: &Path, what: &str) {
    let err = read_state_dict(path).expect_err("a hostile file must be refused");
    let text = err.to_string();
    assert!(matches!(err, Error::File { .. }), "{text}");
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(text.contains(name.as_ref()), "the error names the file: {text}");
    assert!(text.contains(what), "expected {what:?} in: {text}");
    assert!(text.len() < 400, "one short line: {text}");
}

#[test]
fn the_assembled_state_dict_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let pickle = state_dict(&[
        ("w", tensor("0", 4, &[2, 2], &[1, 2])), // a transposed view
        ("b", tensor("1", 2, &[2], &[1])),
    ]);
    let storages = [("0", floats(&[1.0, 2.0, 3.0, 4.0])), ("1", floats(&[5.0, 6.0]))];
    for (name, method) in
        [("stored.pth", CompressionMethod::Stored), ("deflated.pth", CompressionMethod::Deflated)]
    {
        let path = write_pth(dir.path(), name, &pickle, &storages, method);
        let dict = read_state_dict(&path).unwrap();
        assert_eq!(dict.len(), 2);
        assert_eq!((dict[0].0.as_str(), dict[0].1.shape.as_slice()), ("w", &[2i64, 2][..]));
        assert_eq!(dict[0].1.data, [1.0, 3.0, 2.0, 4.0]);
        assert_eq!(dict[1].1.data, [5.0, 6.0]);
    }
}

#[test]
fn a_tensor_claiming_100_gb_is_an_error_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let n = 25_000_000_000; // 100 GB of f32
    let small = [("0", floats(&[1.0; 4]))];
    // the storage claims 100 GB and holds 16 bytes
    let claim = state_dict(&[("w", tensor("0", n, &[n], &[1]))]);
    let path = write_pth(dir.path(), "claim.pth", &claim, &small, CompressionMethod::Stored);
    refused(&path, "has 16 bytes, expected 100000000000");
    let path = write_pth(
        dir.path(),
        "claim_storage.pth",
        &state_dict(&[("w", tensor("0", n, &[4], &[1]))]),
        &small,
        CompressionMethod::Stored,
    );
    refused(&path, "expected 100000000000");
    // a 10^12-element view of a 4-element storage through zero strides
    let broadcast = state_dict(&[("w", tensor("0", 4, &[1_000_000, 1_000_000], &[0, 0]))]);
    let path =
        write_pth(dir.path(), "broadcast.pth", &broadcast, &small, CompressionMethod::Stored);
    refused(&path, "larger than its storage");
    // sizes whose product overflows, strides whose offsets overflow
    let overflow = state_dict(&[("w", tensor("0", 4, &[i64::MAX, 4], &[1, 1]))]);
    let path = write_pth(dir.path(), "overflow.pth", &overflow, &small, CompressionMethod::Stored);
    refused(&path, "larger than its storage");
    let stride = state_dict(&[("w", tensor("0", 4, &[2], &[i64::MAX]))]);
    let path = write_pth(dir.path(), "stride.pth", &stride, &small, CompressionMethod::Stored);
    refused(&path, "reaches past storage");
    let numel = state_dict(&[("w", tensor("0", i64::MAX, &[4], &[1]))]);
    let path = write_pth(dir.path(), "numel.pth", &numel, &small, CompressionMethod::Stored);
    refused(&path, "claims");
}

#[test]
fn deep_nesting_is_refused_before_it_can_overflow_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    // 100,000 nested one-element tuples: `()` then TUPLE1 again and again
    let mut pickle = vec![0x80, 2, b')'];
    pickle.extend(std::iter::repeat_n(0x85, 100_000));
    pickle.push(b'.');
    let path = write_pth(dir.path(), "tuple1.pth", &pickle, &[], CompressionMethod::Stored);
    refused(&path, "nest deeper than 32");
    // the same with MARK ... TUPLE
    let mut pickle = vec![0x80, 2];
    pickle.extend(std::iter::repeat_n(b'(', 100_000));
    pickle.extend(std::iter::repeat_n(b't', 100_000));
    pickle.push(b'.');
    let path = write_pth(dir.path(), "marks.pth", &pickle, &[], CompressionMethod::Stored);
    refused(&path, "nest deeper than 32");
    // and through dict values: `{} "k" {} "k" ... {}`, then SETITEM 40 times folds each dict into
    // the one below it
    let mut pickle = vec![0x80, 2, b'}'];
    for _ in 0..40 {
        pickle.extend(text("k"));
        pickle.push(b'}');
    }
    pickle.extend(std::iter::repeat_n(b's', 40));
    pickle.push(b'.');
    let path = write_pth(dir.path(), "dicts.pth", &pickle, &[], CompressionMethod::Stored);
    refused(&path, "nest deeper than 32");
}

#[test]
fn a_memo_bomb_runs_out_of_budget() {
    let dir = tempfile::tempdir().unwrap();
    // a 100 kB string put in the memo, then fetched a million times (2 bytes each)
    let mut pickle = vec![0x80, 2, b'('];
    pickle.extend(text(&"x".repeat(100_000)));
    pickle.extend(b"q\x00");
    for _ in 0..1_000_000 {
        pickle.extend(b"h\x00");
    }
    pickle.extend(b"t.");
    let path = write_pth(dir.path(), "memo.pth", &pickle, &[], CompressionMethod::Stored);
    refused(&path, "more than the file's size justifies");
}

#[test]
fn a_zip_bomb_is_refused_before_it_is_inflated() {
    let dir = tempfile::tempdir().unwrap();
    let n = 16 << 20; // 64 MiB of zeros, a few kB deflated
    let pickle = state_dict(&[("w", tensor("0", n, &[n], &[1]))]);
    let zeros = vec![0u8; 4 * n as usize];
    let path =
        write_pth(dir.path(), "bomb.pth", &pickle, &[("0", zeros)], CompressionMethod::Deflated);
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    refused(&path, "zip bomb");
}

#[test]
fn globals_outside_the_allow_list_are_never_called() {
    let dir = tempfile::tempdir().unwrap();
    // os.system("...") through GLOBAL + REDUCE
    let mut pickle = vec![0x80, 2];
    pickle.extend(global("os", "system"));
    pickle.extend(text("touch pwned"));
    pickle.extend(b"\x85R.");
    let path = write_pth(dir.path(), "global.pth", &pickle, &[], CompressionMethod::Stored);
    refused(&path, "refusing unsupported global os.system");
    // the same through STACK_GLOBAL (protocol 4)
    let mut pickle = vec![0x80, 4];
    pickle.extend(text("builtins"));
    pickle.extend(text("eval"));
    pickle.push(0x93);
    pickle.extend(text("1"));
    pickle.extend(b"\x85R.");
    let path = write_pth(dir.path(), "stack_global.pth", &pickle, &[], CompressionMethod::Stored);
    refused(&path, "refusing unsupported global builtins.eval");
    // INST and OBJ, which name and call a class in one opcode, are not understood at all
    let pickle = [&[0x80u8, 2, b'('][..], b"ios\nsystem\n."].concat();
    let path = write_pth(dir.path(), "inst.pth", &pickle, &[], CompressionMethod::Stored);
    refused(&path, "unsupported pickle opcode 0x69");
    assert!(!Path::new("pwned").exists());
}
