//! The saved fuzz inputs replayed through every reader (CI fuzzes nothing; it re-checks every
//! input a fuzzer kept and every finding), and the seeds written from our own writers.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use nfn_fuzz::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<target>/` (none if the folder is missing), sorted.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.map(|e| e.expect("a corpus entry").path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

/// Every input of every target: the seeds (written by our writers), the regressions (every
/// finding, kept for good) and the corpus the fuzzers kept (minimised).
#[test]
fn every_saved_input_is_read_without_a_panic() {
    let mut total = 0;
    for target in TARGETS {
        assert!(!inputs("seeds", target.name).is_empty(), "{}: no seeds", target.name);
        for kind in ["seeds", "regressions", "corpus"] {
            for file in inputs(kind, target.name) {
                let data = std::fs::read(&file).expect("a corpus file");
                let outcome = std::panic::catch_unwind(|| (target.run)(&data));
                assert!(outcome.is_ok(), "{}: {} panicked", target.name, file.display());
                total += 1;
            }
        }
    }
    eprintln!("replayed {total} inputs through {} readers", TARGETS.len());
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for target in TARGETS {
        let source = fuzz_dir().join("fuzz_targets").join(format!("{}.rs", target.name));
        let text = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("{source:?}: {e}"));
        assert!(text.contains(&format!("target(\"{}\")", target.name)), "{source:?}");
        assert!(manifest.contains(&format!("name = \"{}\"", target.name)), "fuzz/Cargo.toml");
    }
}

/// Write the seed corpora (`fuzz/seeds/<target>/seed-*`) with the project's own writers and
/// fixtures: `cargo test -p nfn-fuzz --test corpora -- --ignored write_seeds`.
#[test]
#[ignore = "writes the committed seed corpora"]
fn write_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let seed = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir().join("seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    };
    let tmp = std::env::temp_dir().join(format!("nfn-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    // pth: the reader's fixtures
    for f in ["narrow.pth", "strided.pth", "unsupported.pth"] {
        let bytes =
            std::fs::read(root.join("crates/nfn-datasets/tests/fixtures/pth").join(f)).unwrap();
        seed("pth", f, &bytes);
    }
    // idx: images and labels, plain and gzipped
    for (gzip, name) in [(false, "images"), (true, "images.gz")] {
        let path = tmp.join(name);
        nfn_datasets::idx::write_idx(&path, &[2, 3, 3], &[7; 18], gzip).unwrap();
        seed("idx", name, &std::fs::read(&path).unwrap());
    }
    let labels = tmp.join("labels");
    nfn_datasets::idx::write_idx(&labels, &[4], &[0, 1, 2, 9], false).unwrap();
    seed("idx", "labels", &std::fs::read(&labels).unwrap());
    // cifar: two records (label byte + 3072 pixels)
    let mut batch = Vec::new();
    for label in [3u8, 9] {
        batch.push(label);
        batch.extend((0..3072).map(|i| (i % 251) as u8));
    }
    seed("cifar", "two-records.bin", &batch);
    // svhn_mat: the SciPy-written fixtures and one of our writer's
    for f in ["compressed.mat", "plain.mat"] {
        let bytes =
            std::fs::read(root.join("crates/nfn-datasets/tests/fixtures/svhn").join(f)).unwrap();
        seed("svhn_mat", f, &bytes);
    }
    let path = tmp.join("ours.mat");
    nfn_datasets::images::write_svhn_mat(&path, &[9; 3072], &[4], true).unwrap();
    seed("svhn_mat", "ours.mat", &std::fs::read(&path).unwrap());
    // npy: f32 and f64 arrays written by our writer, and a layer fixture
    for (name, kind) in [("f32.npy", tch::Kind::Float), ("f64.npy", tch::Kind::Double)] {
        let path = tmp.join(name);
        nfn_weightspace::io::write_npy(
            &path,
            &tch::Tensor::arange(6, (kind, tch::Device::Cpu)).view([2, 3]),
        )
        .unwrap();
        seed("npy", name, &std::fs::read(&path).unwrap());
    }
    // npz: features of a 2-3-1 MLP, f32, as nfn writes them
    let weights = vec![
        tch::Tensor::ones([2, 1, 3, 2], tch::kind::FLOAT_CPU),
        tch::Tensor::ones([2, 1, 1, 3], tch::kind::FLOAT_CPU),
    ];
    let biases = vec![
        tch::Tensor::zeros([2, 1, 3], tch::kind::FLOAT_CPU),
        tch::Tensor::zeros([2, 1, 1], tch::kind::FLOAT_CPU),
    ];
    let features = nfn_weightspace::WeightSpaceFeatures::new(weights, biases).unwrap();
    let path = tmp.join("inrs.npz");
    features.write_npz(&path).unwrap();
    seed("npz", "mlp.npz", &std::fs::read(&path).unwrap());
    let fixture = root.join("crates/nfn-layers/tests/fixtures/nfn/mlp_3_5_2/W0.npy");
    seed("npy", "fixture-W0.npy", &std::fs::read(fixture).unwrap());
    // inr_shard: two INRs of a 2-3-1 SIREN
    let shard = nfn_datasets::inr_set::ShardRecords {
        split: nfn_datasets::Split::Train,
        copy: 0,
        num_params: 13,
        params: (0..26).map(|i| i as f32 / 10.0).collect(),
        labels: vec![1, 7],
        image_index: vec![0, 1],
        psnr: vec![41.0, f32::NAN],
        steps: vec![120, 0],
    };
    seed("inr_shard", "two-inrs.bin", &shard.encode());
    seed("inr_shard_payload", "two-inrs.bincode", &shard.encode()[20..]);
    // inr_manifest: the planned manifest of a small FashionMNIST set
    let options = nfn_datasets::InrSetOptions {
        dataset: "fashion-mnist".into(),
        splits: nfn_datasets::SplitRanges::fashion_mnist().limited(300),
        copies: 1,
        fit: nfn_datasets::SirenFitConfig::default(),
    };
    let manifest = nfn_datasets::InrSetManifest::plan(&options, [1, 28, 28]).unwrap();
    manifest.write(&tmp).unwrap();
    seed("inr_manifest", "manifest.json", &std::fs::read(tmp.join("manifest.json")).unwrap());
    // zoo: the Small CNN Zoo's layout and metrics, as make-zoo writes them
    let layout = "varname,start_idx,end_idx,shape\n\
                  sequential/conv2d/kernel:0,0,144,\"(3, 3, 1, 16)\"\n\
                  sequential/conv2d/bias:0,144,160,\"(16,)\"\n\
                  sequential/dense/kernel:0,160,320,\"(16, 10)\"\n\
                  sequential/dense/bias:0,320,330,\"(10,)\"\n";
    seed("zoo_layout", "layout.csv", layout.as_bytes());
    let metrics = ",config.dataset,modeldir,step,test_accuracy,test_loss,laststep\n\
                   0,fashion_mnist,net-000000,0,0.107,2.30,False\n\
                   1,fashion_mnist,net-000000,86,0.61,1.10,True\n";
    let mut gz = gzip(metrics.as_bytes());
    seed("zoo_metrics", "metrics.csv.gz", &gz);
    gz.truncate(gz.len() / 2);
    seed("zoo_metrics", "truncated.csv.gz", &gz);
    // checkpoint: the harness model's own variables, saved
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _ = tch::nn::linear(&vs.root() / "head", 3, 2, Default::default());
    let path = tmp.join("model.safetensors");
    nft_model::train::save_model(&vs, &path).unwrap();
    seed("checkpoint", "model.safetensors", &std::fs::read(&path).unwrap());
    // config: the shipped Inr2Array configs
    for f in ["inr2array_fashion_small.toml", "inr2array_fashion_cls_small.toml"] {
        let text = std::fs::read(root.join("xtask/configs").join(f)).unwrap();
        seed("config", f, &text);
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `bytes` gzipped.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}
