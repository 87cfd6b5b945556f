//! The `.pth` reader on fixtures from `tests/fixtures/pth/gen.py`: values, strides, a real
//! module's state dict, the reference folder layout, and typed errors naming the file.

use std::path::{Path, PathBuf};

use nfn_datasets::pth::{read_reference_inrs, read_state_dict};
use nfn_datasets::Error;
use nfn_weightspace::NetworkSpec;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pth").join(name)
}

/// gen.py's formula: element e of tensor t is (t * 1000 + e) / 4096.
fn expected(t: usize, n: usize) -> Vec<f32> {
    (0..n).map(|e| ((t * 1000 + e) as f64 / 4096.0) as f32).collect()
}

const KEYS: [&str; 6] = [
    "net.0.linear.weight",
    "net.0.linear.bias",
    "net.1.linear.weight",
    "net.1.linear.bias",
    "net.2.weight",
    "net.2.bias",
];

#[test]
fn reads_siren_state_dicts() {
    for (file, c) in
        [("cifar.pth", 3), ("strided.pth", 1), ("siren_mnist_wts/randinit_smaller_7s/net2.pth", 1)]
    {
        let sd = read_state_dict(fixture(file)).unwrap();
        let keys: Vec<&str> = sd.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, KEYS, "{file}");
        let shapes = [vec![32, 2], vec![32], vec![32, 32], vec![32], vec![c, 32], vec![c]];
        for (t, ((_, tensor), shape)) in sd.iter().zip(&shapes).enumerate() {
            assert_eq!(&tensor.shape, shape, "{file}");
            assert_eq!(tensor.data, expected(t, tensor.data.len()), "{file} tensor {t}");
        }
    }
}

#[test]
fn reference_folder_base_and_copies() {
    let root = fixture("siren_mnist_wts");
    let spec = NetworkSpec::siren(1);
    let base = read_reference_inrs(&root, None, &spec).unwrap();
    // The aug0 folder is not part of the base set.
    assert_eq!(base.iter().map(|r| (r.idx, r.label)).collect::<Vec<_>>(), [(2, 7), (5, 3)]);
    assert_eq!(base[0].params.len() as i64, spec.num_params());
    assert_eq!(&base[0].params[..64], expected(0, 64).as_slice());
    let aug = read_reference_inrs(&root, Some(0), &spec).unwrap();
    assert_eq!(aug.iter().map(|r| (r.idx, r.label)).collect::<Vec<_>>(), [(5, 3)]);
    assert!(read_reference_inrs(&root, Some(1), &spec).unwrap().is_empty());
    // A CIFAR spec does not fit MNIST SIRENs: a mismatch naming the file.
    let err = read_reference_inrs(&root, None, &NetworkSpec::siren(3)).unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }) && err.to_string().contains(".pth"), "{err}");
}

fn assert_file_error(path: &Path, what: &str) {
    let err = read_state_dict(path).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::File { .. }), "{text}");
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(text.contains(name.as_ref()) && text.contains(what), "{text}");
}

#[test]
fn bad_files_give_errors_naming_the_file() {
    assert_file_error(&fixture("unsupported.pth"), "collections.Counter");
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("cifar.pth")).unwrap();
    let cut = dir.path().join("truncated.pth");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert_file_error(&cut, "zip");
    let junk = dir.path().join("junk.pth");
    std::fs::write(&junk, b"not a zip at all").unwrap();
    assert_file_error(&junk, "zip");
    // Corrupt the pickle inside the zip: an opcode we do not support.
    let pkl = bytes.windows(6).position(|w| w == b"\x80\x02ccol").unwrap();
    let mut bad = bytes.clone();
    bad[pkl + 2] = b'i'; // INST: never supported
    let corrupt = dir.path().join("corrupt.pth");
    std::fs::write(&corrupt, &bad).unwrap();
    let err = read_state_dict(&corrupt).unwrap_err().to_string();
    assert!(err.contains("corrupt.pth"), "{err}");
}
