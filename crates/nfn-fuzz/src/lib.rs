//! Every reader of files that come from outside (downloads, other tools, other machines, our own
//! earlier runs) as a [`Target`]: a function of the file's bytes that must return, never panic,
//! abort or allocate without bound, whatever the bytes are.
//!
//! The cargo-fuzz crate in `fuzz/` (run by `cargo xtask fuzz <target>`) has one fuzz target per
//! entry of [`TARGETS`]; `tests/corpora.rs` replays the saved corpora (`fuzz/corpus/<target>/`,
//! seeds and every input a fuzzer kept) through the same functions as an ordinary test, so CI
//! re-checks every finding without fuzzing.
//!
//! Readers that take a path get the bytes through a scratch file of the calling thread.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use tch::nn::VarStore;

/// One reader under test.
pub struct Target {
    /// The fuzz target's name (`fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`).
    pub name: &'static str,
    /// What it reads, for the docs.
    pub reads: &'static str,
    /// Feed it one input; the result is dropped (errors are the expected outcome).
    pub run: fn(&[u8]),
}

/// Every reader, in the order of `docs/reliability.md`.
pub const TARGETS: &[Target] = &[
    Target {
        name: "pth",
        reads: "PyTorch `.pth` state dicts (zip + pickle): the reference INR sets",
        run: pth,
    },
    Target {
        name: "idx",
        reads: "IDX image and label files, gzipped or not (MNIST, FashionMNIST)",
        run: idx,
    },
    Target { name: "cifar", reads: "CIFAR-10 binary batches", run: cifar },
    Target { name: "svhn_mat", reads: "SVHN `.mat` files (MATLAB v5, zlib inside)", run: svhn_mat },
    Target { name: "npy", reads: "`.npy` arrays (fixtures, zoo weights, latents)", run: npy },
    Target {
        name: "npz",
        reads: "`.npz` weight-space features (`nfn predict --inrs x.npz`)",
        run: npz,
    },
    Target { name: "inr_shard", reads: "our INR-set shards (framed bincode)", run: inr_shard },
    Target {
        name: "inr_shard_payload",
        reads:
            "the bincode payload of a shard, framed with a valid CRC (what a fuzzer cannot forge)",
        run: inr_shard_payload,
    },
    Target { name: "inr_manifest", reads: "our INR-set manifests (JSON)", run: inr_manifest },
    Target { name: "zoo_layout", reads: "the Small CNN Zoo's `layout.csv`", run: zoo_layout },
    Target { name: "zoo_metrics", reads: "the Small CNN Zoo's `metrics.csv.gz`", run: zoo_metrics },
    Target {
        name: "checkpoint",
        reads: "safetensors checkpoints (`last.safetensors`)",
        run: checkpoint,
    },
    Target {
        name: "config",
        reads: "TOML experiment configs (Inr2Array pretrain and classify)",
        run: config,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

thread_local! {
    /// This thread's scratch folder (in `/dev/shm` where it exists: no disk writes per input).
    static SCRATCH: PathBuf = {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() { base.to_path_buf() } else { std::env::temp_dir() };
        let id = format!("{:?}", std::thread::current().id());
        let id: String = id.chars().filter(char::is_ascii_digit).collect();
        let dir = base.join(format!("nfn-fuzz-{}-{id}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder for the fuzz input");
        dir
    };
    /// A small model's variables for [`checkpoint`] to load into.
    static MODEL: RefCell<VarStore> = RefCell::new({
        let vs = VarStore::new(tch::Device::Cpu);
        let _ = tch::nn::linear(&vs.root() / "head", 3, 2, Default::default());
        vs
    });
}

/// Write `data` to the scratch file `name` and return its path.
fn scratch(name: &str, data: &[u8]) -> PathBuf {
    let path = SCRATCH.with(|dir| dir.join(name));
    std::fs::write(&path, data).expect("writing the fuzz input to the scratch folder");
    path
}

fn pth(data: &[u8]) {
    let _ = nfn_datasets::pth::read_state_dict(scratch("net0.pth", data));
}

fn idx(data: &[u8]) {
    let _ = nfn_datasets::idx::read_idx(scratch("images-idx3-ubyte", data));
}

fn cifar(data: &[u8]) {
    let _ = nfn_datasets::images::read_cifar10_batch(scratch("data_batch_1.bin", data));
}

fn svhn_mat(data: &[u8]) {
    let _ = nfn_datasets::images::read_svhn_mat(scratch("train_32x32.mat", data));
}

fn npy(data: &[u8]) {
    let _ = nfn_weightspace::io::read_npy(scratch("array.npy", data));
}

fn npz(data: &[u8]) {
    let _ = nfn_weightspace::WeightSpaceFeatures::read_npz(scratch("inrs.npz", data));
}

fn inr_shard(data: &[u8]) {
    let _ = nfn_datasets::inr_set::ShardRecords::decode(data, Path::new("shard-00000.bin"));
}

fn inr_shard_payload(data: &[u8]) {
    let framed = nfn_datasets::frame_bytes(nfn_datasets::inr_set::SHARD_MAGIC, data);
    let _ = nfn_datasets::inr_set::ShardRecords::decode(&framed, Path::new("shard-00000.bin"));
}

fn inr_manifest(data: &[u8]) {
    let path = scratch("manifest.json", data);
    let _ = nfn_datasets::InrSetManifest::read(path.parent().expect("a scratch file has a folder"));
}

fn zoo_layout(data: &[u8]) {
    let _ = nfn_datasets::cnn_zoo::read_layout(scratch("layout.csv", data));
}

fn zoo_metrics(data: &[u8]) {
    let _ = nfn_datasets::cnn_zoo::read_metrics(scratch("metrics.csv.gz", data));
}

fn checkpoint(data: &[u8]) {
    let path = scratch("last.safetensors", data);
    MODEL.with(|vs| {
        let _ = nft_model::train::checkpoint::load_model(&mut vs.borrow_mut(), &path);
    });
}

fn config(data: &[u8]) {
    let path = scratch("config.toml", data);
    let _ = inr2array::config::PretrainConfig::read(&path);
    let _ = inr2array::config::ClassifyConfig::read(&path);
}
