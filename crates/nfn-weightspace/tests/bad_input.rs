//! Bad input gets a typed error that names the layer or the file and the problem, never a panic.

use std::io::Write;

use nfn_weightspace::io::read_npy;
use nfn_weightspace::{Error, NetworkSpec, WeightSpaceFeatures};
use tch::{Device, Kind, Tensor};

const F: (Kind, Device) = (Kind::Float, Device::Cpu);

fn siren_parts() -> (Vec<Tensor>, Vec<Tensor>) {
    WeightSpaceFeatures::randn(&NetworkSpec::siren(1), 2, 1, F).into_parts()
}

#[test]
fn wrong_shapes_name_the_layer() {
    let (mut w, b) = siren_parts();
    w[1] = Tensor::zeros([2, 1, 32, 31], F);
    let err = WeightSpaceFeatures::new(w, b).unwrap_err();
    assert!(matches!(err, Error::Shape { layer: 1, what: "weight", .. }), "{err}");
    assert!(err.to_string().contains("layer 1 weight") && err.to_string().contains("31"));

    let (w, mut b) = siren_parts();
    b[2] = Tensor::zeros([2, 1, 3], F);
    let err = WeightSpaceFeatures::new(w, b).unwrap_err();
    assert!(matches!(err, Error::Shape { layer: 2, what: "bias", .. }), "{err}");

    let (mut w, b) = siren_parts();
    w[0] = Tensor::zeros([3, 1, 32, 2], F); // batch disagrees
    assert!(matches!(WeightSpaceFeatures::new(w, b), Err(Error::Shape { layer: 0, .. })));

    let (mut w, b) = siren_parts();
    w[0] = Tensor::zeros([32, 2], F);
    assert!(matches!(WeightSpaceFeatures::new(w, b), Err(Error::Shape { layer: 0, .. })));

    let (w, mut b) = siren_parts();
    b.pop();
    assert!(matches!(WeightSpaceFeatures::new(w, b), Err(Error::SpecMismatch(_))));

    let ws = WeightSpaceFeatures::randn(&NetworkSpec::siren(1), 2, 1, F);
    assert!(ws.check_spec(&NetworkSpec::siren(3)).is_err());
    assert!(WeightSpaceFeatures::unflatten(
        &Tensor::zeros([2, 1, 1000], F),
        &NetworkSpec::siren(1)
    )
    .is_err());
}

#[test]
fn wrong_dtype_is_rejected() {
    let (mut w, b) = siren_parts();
    w[2] = w[2].to_kind(Kind::Int64);
    let err = WeightSpaceFeatures::new(w, b).unwrap_err();
    assert!(matches!(err, Error::Dtype { .. }), "{err}");
    assert!(err.to_string().contains("layer 2 weight"));
    let ws = WeightSpaceFeatures::randn(&NetworkSpec::siren(1), 1, 1, F);
    assert!(ws.to_kind(Kind::Int).is_err());
}

#[test]
fn nan_and_inf_are_found() {
    let (w, b) = siren_parts();
    let _ = b[1].get(0).get(0).get(3).fill_(f64::NAN);
    let _ = w[2].get(1).get(0).get(0).get(5).fill_(f64::INFINITY);
    let ws = WeightSpaceFeatures::new(w, b).unwrap();
    let err = ws.check_finite().unwrap_err();
    assert!(matches!(err, Error::NonFinite { layer: 1, what: "bias", count: 1 }), "{err}");
    let clean = WeightSpaceFeatures::randn(&NetworkSpec::siren(1), 1, 1, F);
    assert!(clean.check_finite().is_ok());
}

fn write_bytes(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
    path
}

fn npy_bytes(xs: &Tensor) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    nfn_weightspace::io::write_npy(&path, xs).unwrap();
    std::fs::read(path).unwrap()
}

fn assert_file_error(result: Result<impl std::fmt::Debug, Error>, name: &str, needle: &str) {
    let err = result.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::File { .. }), "{msg}");
    assert!(
        msg.contains(name) && msg.contains(needle),
        "{msg:?} should name {name} and say {needle:?}"
    );
}

#[test]
fn bad_npy_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = npy_bytes(&Tensor::randn([4, 8], F));
    let truncated = write_bytes(dir.path(), "truncated.npy", &good[..good.len() - 7]);
    assert_file_error(read_npy(truncated), "truncated.npy", "truncated");
    let garbage = write_bytes(dir.path(), "garbage.npy", b"this is not an npy file at all");
    assert_file_error(read_npy(garbage), "garbage.npy", "not a valid .npy");
    let header_only = write_bytes(dir.path(), "header.npy", &good[..20]);
    assert_file_error(read_npy(header_only), "header.npy", "");
    assert_file_error(read_npy(dir.path().join("missing.npy")), "missing.npy", "cannot open");

    let ints = ndarray::ArrayD::<i32>::zeros(ndarray::IxDyn(&[3]));
    let path = dir.path().join("ints.npy");
    ndarray_npy::write_npy(&path, &ints).unwrap();
    assert_file_error(read_npy(path), "ints.npy", "unsupported dtype");
}

#[test]
fn bad_npz_files() {
    let dir = tempfile::tempdir().unwrap();
    let ws = WeightSpaceFeatures::randn(&NetworkSpec::siren(1), 2, 1, F);
    let path = dir.path().join("good.npz");
    ws.write_npz(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let truncated = write_bytes(dir.path(), "cut.npz", &bytes[..bytes.len() / 2]);
    assert_file_error(WeightSpaceFeatures::read_npz(truncated), "cut.npz", "");
    let garbage = write_bytes(dir.path(), "junk.npz", b"PK\x03\x04 nonsense");
    assert_file_error(WeightSpaceFeatures::read_npz(garbage), "junk.npz", "");

    // An archive with a missing bias and one with inconsistent shapes.
    let (w, b) = ws.to_ndarray::<f32>().unwrap();
    let write = |name: &str, skip_b2: bool, bad_w1: bool| {
        let path = dir.path().join(name);
        let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&path).unwrap());
        for l in 0..3 {
            let wl = if bad_w1 && l == 1 {
                ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[2, 1, 32, 5]))
            } else {
                w[l].clone()
            };
            npz.add_array(format!("W{l}"), &wl).unwrap();
            if !(skip_b2 && l == 2) {
                npz.add_array(format!("b{l}"), &b[l]).unwrap();
            }
        }
        npz.finish().unwrap();
        path
    };
    assert_file_error(
        WeightSpaceFeatures::read_npz(write("nob2.npz", true, false)),
        "nob2.npz",
        "expected arrays",
    );
    assert_file_error(
        WeightSpaceFeatures::read_npz(write("shape.npz", false, true)),
        "shape.npz",
        "layer 1 weight",
    );
}
