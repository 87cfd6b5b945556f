//! The Small CNN Zoo reader end to end on a tiny zoo written by the test, the exact Python
//! shuffle, the final-step rule, the `weights.npy` header checks, and typed errors naming the bad
//! file.

use std::io::Write;
use std::path::Path;

use ndarray::ShapeBuilder;

use nfn_datasets::cnn_zoo::{
    load_cnn_zoo, load_cnn_zoo_splits, read_layout, read_metrics, split_rows, CnnZoo, PyRandom,
    ZOO_NUM_PARAMS,
};
use nfn_datasets::{Error, Split};
use tch::Tensor;

const LAYOUT: &str = "varname,start_idx,end_idx,shape
sequential/conv2d/kernel:0,0,144,\"(3, 3, 1, 16)\"
sequential/conv2d/bias:0,144,160,\"(16,)\"
sequential/conv2d_1/kernel:0,160,2464,\"(3, 3, 16, 16)\"
sequential/conv2d_1/bias:0,2464,2480,\"(16,)\"
sequential/conv2d_2/kernel:0,2480,4784,\"(3, 3, 16, 16)\"
sequential/conv2d_2/bias:0,4784,4800,\"(16,)\"
sequential/dense/kernel:0,4800,4960,\"(16, 10)\"
sequential/dense/bias:0,4960,4970,\"(10,)\"
";

/// Value of column `col` of row `row` in the test zoo.
fn value(row: i64, col: i64) -> f32 {
    (row * 10_000 + col) as f32
}

/// The `[4, 4970]` weights of the test zoo.
fn zoo_weights() -> Tensor {
    let n = 4;
    let flat: Vec<f32> =
        (0..n).flat_map(|r| (0..ZOO_NUM_PARAMS).map(move |c| value(r, c))).collect();
    Tensor::from_slice(&flat).reshape([n, ZOO_NUM_PARAMS])
}

/// Four checkpoints; row 3 is not final (step 85). Accuracies 0.1 * (row + 1).
fn write_zoo(dir: &Path) {
    write_zoo_with_steps(dir, [86, 86, 86, 85]);
}

fn write_zoo_with_steps(dir: &Path, steps: [i64; 4]) {
    nfn_weightspace::io::write_npy(dir.join("weights.npy"), &zoo_weights()).unwrap();
    std::fs::write(dir.join("layout.csv"), LAYOUT).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.join("metrics.csv.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    writeln!(gz, ",step,test_accuracy,train_loss,config.l2reg").unwrap();
    for (r, step) in steps.iter().enumerate() {
        writeln!(gz, "{r},{step}.0,{},0.5,0.001", 0.1 * (r + 1) as f32).unwrap();
    }
    gz.finish().unwrap();
    // design.md §8.4: a leading "0" header artefact, so row 0 appears twice.
    std::fs::write(dir.join("split.csv"), "0\n2\n0\n1\n3\n").unwrap();
}

#[test]
fn tiny_zoo_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path());
    let split = dir.path().join("split.csv");
    // kept (permuted, step 86) = [0, 2, 0, 1]; test = [0, 1]; trainval [0, 2] -> Random(0)
    // shuffle of two positions is the identity, int(0.8 * 2) = 1: train [0], val [2].
    let test = load_cnn_zoo(dir.path(), &split, Split::Test).unwrap();
    assert_eq!(test.rows, vec![0, 1]);
    let train = load_cnn_zoo(dir.path(), &split, Split::Train).unwrap();
    assert_eq!(train.rows, vec![0]);
    let val = load_cnn_zoo(dir.path(), &split, Split::Val).unwrap();
    assert_eq!(val.rows, vec![2]);
    assert_eq!(Vec::<f32>::try_from(&val.targets).unwrap(), vec![0.3]);
    assert_eq!(Vec::<f32>::try_from(&test.targets).unwrap(), vec![0.1, 0.2]);

    let w = &test.wsfeat;
    assert_eq!(w.weight(0).size(), [2, 1, 16, 1, 3, 3]);
    assert_eq!(w.weight(1).size(), [2, 1, 16, 16, 3, 3]);
    assert_eq!(w.weight(3).size(), [2, 1, 10, 16]);
    assert_eq!(w.bias(3).size(), [2, 1, 10]);
    // conv layer 1: TF (kh, kw, in, out) index ((y * 3 + x) * 16 + i) * 16 + o at column 160 + that.
    let (b, o, i, y, x) = (1, 5, 7, 2, 1);
    let got = w.weight(1).double_value(&[b, 0, o, i, y, x]);
    let col = 160 + ((y * 3 + x) * 16 + i) * 16 + o;
    assert_eq!(got, value(test.rows[b as usize], col) as f64);
    // dense: TF (in, out) at column 4800 + i * 10 + o.
    let got = w.weight(3).double_value(&[0, 0, 4, 9]);
    assert_eq!(got, value(0, 4800 + 9 * 10 + 4) as f64);
    assert_eq!(w.bias(2).double_value(&[1, 0, 3]), value(1, 4784 + 3) as f64);
}

#[test]
fn python_shuffle_matches_the_committed_vector() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cnn_zoo/python_random.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ints = |key: &str| -> Vec<u64> {
        v[key].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
    };
    let mut rng = PyRandom::new(0);
    let bits: Vec<u64> = (0..5).map(|_| rng.getrandbits(32)).collect();
    assert_eq!(bits, ints("getrandbits32_seed0"));
    for n in [1u64, 2, 10, 1000, 15000] {
        let mut xs: Vec<u64> = (0..n).collect();
        PyRandom::new(0).shuffle(&mut xs);
        let want = ints(&format!("shuffle_{n}"));
        let got = if n <= 1000 { xs } else { [&xs[..50], &xs[xs.len() - 50..]].concat() };
        assert_eq!(got, want, "shuffle of {n}");
    }
    let mut xs: Vec<u64> = (0..300).collect();
    PyRandom::new(12_345_678_901).shuffle(&mut xs);
    assert_eq!(xs, ints("shuffle_300_seed_12345678901"));
    // split_rows on 22 final rows (identity permutation): trainval = the first 11.
    let perm: Vec<i64> = (0..22).collect();
    let splits = split_rows(&perm, &[86; 22], Path::new("perm")).unwrap();
    let as_u64 = |xs: &[i64]| xs.iter().map(|&x| x as u64).collect::<Vec<_>>();
    let split = &v["split_11"];
    let want = |k: &str| -> Vec<u64> {
        split[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
    };
    assert_eq!(as_u64(&splits.train), want("train"));
    assert_eq!(as_u64(&splits.val), want("val"));
    assert_eq!(splits.test, (11..22).collect::<Vec<_>>());
}

fn assert_names(err: Error, file: &str) {
    let text = err.to_string();
    assert!(text.contains(file), "{file} not named in: {text}");
}

#[test]
fn bad_inputs_give_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path());
    let split = dir.path().join("split.csv");
    let load = || load_cnn_zoo(dir.path(), &split, Split::Test).unwrap_err();

    // Permutation entry out of range.
    std::fs::write(&split, "0\n9\n").unwrap();
    assert!(matches!(load(), Error::Mismatch { .. }));
    assert_names(load(), "split.csv");
    std::fs::write(&split, "0\nx\n").unwrap();
    assert_names(load(), "split.csv");
    write_zoo(dir.path());

    // Truncated weights.npy.
    let npy = dir.path().join("weights.npy");
    let bytes = std::fs::read(&npy).unwrap();
    std::fs::write(&npy, &bytes[..bytes.len() / 2]).unwrap();
    assert_names(load(), "weights.npy");
    // Wrong shape.
    nfn_weightspace::io::write_npy(&npy, &Tensor::zeros([4, 100], tch::kind::FLOAT_CPU)).unwrap();
    assert_names(load(), "weights.npy");
    // Non-finite weights among the kept rows.
    let nan = Tensor::full([4, ZOO_NUM_PARAMS], f64::NAN, tch::kind::FLOAT_CPU);
    nfn_weightspace::io::write_npy(&npy, &nan).unwrap();
    assert_names(load(), "weights.npy");
    write_zoo(dir.path());

    // metrics: not gzip, truncated gzip, missing column.
    let metrics = dir.path().join("metrics.csv.gz");
    std::fs::write(&metrics, "step,test_accuracy\n86,0.5\n").unwrap();
    assert_names(read_metrics(&metrics).unwrap_err(), "metrics.csv.gz");
    write_zoo(dir.path());
    let bytes = std::fs::read(&metrics).unwrap();
    std::fs::write(&metrics, &bytes[..bytes.len() - 12]).unwrap();
    assert_names(load(), "metrics.csv.gz");

    // layout: wrong shape for a layer, inconsistent row.
    let layout = dir.path().join("layout.csv");
    write_zoo(dir.path());
    std::fs::write(&layout, LAYOUT.replace("\"(16, 10)\"", "\"(10, 16)\"")).unwrap();
    assert!(matches!(load(), Error::Mismatch { .. }));
    assert_names(load(), "layout.csv");
    std::fs::write(&layout, LAYOUT.replace("0,144,\"(3, 3, 1, 16)\"", "0,150,\"(3, 3, 1, 16)\""))
        .unwrap();
    assert_names(read_layout(&layout).unwrap_err(), "layout.csv");
}

fn assert_same_zoo(a: &CnnZoo, b: &CnnZoo) {
    assert_eq!(a.rows, b.rows);
    assert!(a.targets.allclose(&b.targets, 0.0, 0.0, false));
    for l in 0..4 {
        assert!(a.wsfeat.weight(l).allclose(b.wsfeat.weight(l), 0.0, 0.0, false));
        assert!(a.wsfeat.bias(l).allclose(b.wsfeat.bias(l), 0.0, 0.0, false));
    }
}

#[test]
fn all_splits_at_once_match_single_loads() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path());
    let split = dir.path().join("split.csv");
    let all = load_cnn_zoo_splits(dir.path(), &split).unwrap();
    for (zoo, s) in all.iter().zip([Split::Train, Split::Val, Split::Test]) {
        assert_same_zoo(zoo, &load_cnn_zoo(dir.path(), &split, s).unwrap());
    }
}

#[test]
fn final_step_is_the_largest_step_present() {
    let (real, short) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_zoo(real.path());
    // A generated zoo trained for 3 epochs: same rows kept as the step-86 zoo.
    write_zoo_with_steps(short.path(), [3, 3, 3, 2]);
    for s in [Split::Train, Split::Val, Split::Test] {
        let a = load_cnn_zoo(real.path(), real.path().join("split.csv"), s).unwrap();
        let b = load_cnn_zoo(short.path(), short.path().join("split.csv"), s).unwrap();
        assert_same_zoo(&a, &b);
    }
    let splits = split_rows(&[0, 1, 2], &[5, 7, 7], Path::new("perm")).unwrap();
    assert_eq!(splits.test, vec![2]);
}

#[test]
fn weights_header_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    write_zoo(dir.path());
    let split = dir.path().join("split.csv");
    let npy = dir.path().join("weights.npy");
    let load = || load_cnn_zoo(dir.path(), &split, Split::Test);
    let want = load().unwrap();

    // float64 is converted to float32 row by row.
    nfn_weightspace::io::write_npy(&npy, &zoo_weights().to_kind(tch::Kind::Double)).unwrap();
    assert_same_zoo(&load().unwrap(), &want);

    // Not a .npy file; big-endian; Fortran order; a short header.
    std::fs::write(&npy, "step,test_accuracy\n").unwrap();
    assert_names(load().unwrap_err(), "weights.npy");
    write_zoo(dir.path());
    let bytes = std::fs::read(&npy).unwrap();
    let mut big_endian = bytes.clone();
    let at = bytes.windows(5).position(|w| w == b"'<f4'").unwrap();
    big_endian[at + 1] = b'>';
    std::fs::write(&npy, big_endian).unwrap();
    let err = load().unwrap_err().to_string();
    assert!(err.contains("weights.npy") && err.contains("<f4"), "{err}");
    let fortran = ndarray::Array2::<f32>::zeros((4, ZOO_NUM_PARAMS as usize).f());
    ndarray_npy::write_npy(&npy, &fortran).unwrap();
    let err = load().unwrap_err().to_string();
    assert!(err.contains("weights.npy") && err.contains("Fortran"), "{err}");
    std::fs::write(&npy, &bytes[..20]).unwrap();
    assert_names(load().unwrap_err(), "weights.npy");
}
