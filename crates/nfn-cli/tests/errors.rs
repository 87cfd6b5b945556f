//! Bad input through the binary, one table row per case: a missing file, a wrong or missing data
//! set, an unknown config key, a SIREN of the wrong width, CNN weights for an MLP model, NaN weights
//! (given directly and inside an INR set's shard), a truncated shard and a file of the wrong kind.
//! Each must print exactly one line that names the file and the problem, and exit with code 2,
//! without a panic or a backtrace (even under `RUST_BACKTRACE=1`).

mod support;

use std::path::Path;
use std::process::Command;

use nfn_datasets::inr_set::ShardRecords;
use nfn_weightspace::WeightSpaceFeatures;
use support::{classify_config, fit_tiny_set};
use tch::{Kind, Tensor};

/// One bad-input case: the arguments, and what the error line must contain.
struct Case {
    name: &'static str,
    args: Vec<String>,
    says: Vec<String>,
}

/// Random features of networks with these widths (MLP), or CNN kernels of `kernel` size.
fn features(widths: &[i64], kernel: Option<i64>, nan: bool) -> WeightSpaceFeatures {
    let (mut weights, mut biases) = (Vec::new(), Vec::new());
    for pair in widths.windows(2) {
        let mut shape = vec![3, 1, pair[1], pair[0]];
        if let Some(k) = kernel {
            shape.extend([k, k]);
        }
        weights.push(Tensor::randn(shape, (Kind::Float, tch::Device::Cpu)));
        biases.push(Tensor::randn([3, 1, pair[1]], (Kind::Float, tch::Device::Cpu)));
    }
    if nan {
        let _ = weights[0].get(0).get(0).get(0).get(0).fill_(f64::NAN);
    }
    WeightSpaceFeatures::new(weights, biases).expect("consistent shapes")
}

#[test]
fn every_bad_input_gets_one_line_naming_the_file_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    let inrs = fit_tiny_set(dir.path());

    // a config with a misspelt key
    let config = classify_config("typo", &inrs, 10, 5).replace("log_every = 1", "log_evry = 1");
    std::fs::write(d("typo.toml"), config).unwrap();
    // weight-space augmentation with a shift larger than the image
    let config = classify_config("far", &inrs, 10, 5)
        .replace("eval_batch_size = 16", "eval_batch_size = 16\naugment = { shift = 2.0 }");
    std::fs::write(d("far.toml"), config).unwrap();
    // weight files of the wrong kinds
    features(&[2, 16, 16, 1], None, false).write_npz(d("narrow.npz")).unwrap();
    features(&[2, 32, 32, 1], Some(3), false).write_npz(d("cnn.npz")).unwrap();
    features(&[2, 32, 32, 1], None, true).write_npz(d("nan.npz")).unwrap();
    std::fs::write(d("notes.txt"), "not weights").unwrap();
    // an INR set whose first training shard holds a NaN weight, and one with a truncated shard
    let shard_name = "train-c00-000000.bin";
    for (copy, damage) in [("nan-set", "nan"), ("cut-set", "cut")] {
        let target = dir.path().join(copy);
        std::fs::create_dir_all(&target).unwrap();
        for entry in std::fs::read_dir(&inrs).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, target.join(path.file_name().unwrap())).unwrap();
        }
        let shard = target.join(shard_name);
        if damage == "nan" {
            let mut records = ShardRecords::read(&shard).unwrap();
            records.params[7] = f32::NAN;
            records.write(&shard).unwrap();
        } else {
            let bytes = std::fs::read(&shard).unwrap();
            std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
        }
        let cfg = classify_config(copy, &target, 10, 5);
        std::fs::write(d(&format!("{copy}.toml")), cfg).unwrap();
    }
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let runs = d("runs");

    let case = |name: &'static str, args: &[&str], says: &[&str]| Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        says: says.iter().map(|s| s.to_string()).collect(),
    };
    let cases = [
        case("missing config", &["train", &d("nowhere.toml"), "--runs", &runs], &["nowhere.toml"]),
        case(
            "unknown config key",
            &["train", &d("typo.toml"), "--runs", &runs],
            &["typo.toml", "unknown field `log_evry`", "line"],
        ),
        case(
            "augmentation out of range",
            &["train", &d("far.toml"), "--runs", &runs],
            &["far.toml", "data.augment.shift must be in [0, 1]"],
        ),
        case(
            "missing data set",
            &["fit-inrs", "--dataset", "mnist", "--data-dir", &d("empty"), "--out", &d("x")],
            &["train-images-idx3-ubyte"],
        ),
        case(
            "wrong data set (CIFAR-10 asked, IDX files there)",
            &["fit-inrs", "--dataset", "cifar10", "--data-dir", &d("images"), "--out", &d("y")],
            &["data_batch_1"],
        ),
        case(
            "SIREN of the wrong width",
            &["predict", "--pretrained", "fashion-mnist", "--inrs", &d("narrow.npz")],
            &["narrow.npz", "widths [2, 16, 16, 1]"],
        ),
        case(
            "CNN weights for an MLP model",
            &["predict", "--pretrained", "fashion-mnist", "--inrs", &d("cnn.npz")],
            &["cnn.npz"],
        ),
        case(
            "NaN weights given directly",
            &["predict", "--pretrained", "fashion-mnist", "--inrs", &d("nan.npz")],
            &["nan.npz", "NaN"],
        ),
        case(
            "NaN weight inside an INR set",
            &["train", &d("nan-set.toml"), "--runs", &runs],
            &[shard_name, "NaN"],
        ),
        case(
            "truncated shard",
            &["train", &d("cut-set.toml"), "--runs", &runs],
            &[shard_name, "truncated"],
        ),
        case(
            "a file of the wrong kind",
            &["predict", "--pretrained", "fashion-mnist", "--inrs", &d("notes.txt")],
            &["notes.txt", "not an INR set folder"],
        ),
        case("an INR set that is not there", &["inr-stats", "--inrs", &d("nowhere")], &["nowhere"]),
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let out = Command::new(env!("CARGO_BIN_EXE_nfn"))
            .args(&case.args)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // progress lines go to stderr before the error: the error is the last line
        let error_lines: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        let last = stderr.lines().last().unwrap_or("");
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push(format!("exit {:?}", out.status.code()));
        }
        if error_lines.len() != 1 || !last.starts_with("nfn: error: ") {
            problems.push("not exactly one error line, last".into());
        }
        if stderr.contains("panicked") || stderr.contains("stack backtrace") {
            problems.push("a panic or backtrace".into());
        }
        for want in &case.says {
            if !last.contains(want.as_str()) {
                problems.push(format!("no {want:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}\n{stderr}", case.name, problems.join(", ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    assert!(!Path::new(&runs).join("typo").exists(), "a refused config made no run folder");
}
