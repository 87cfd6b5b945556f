//! The catalogue of `cargo xtask download`: each data set's files, URLs, MD5s and folder.

use anyhow::{bail, Result};

/// One remote file.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    /// Full URL.
    pub url: &'static str,
    /// File name on disk.
    pub file: &'static str,
    /// Lower-case hex MD5, where a published one is known.
    pub md5: Option<&'static str>,
}

/// One file of a data set as it lies unpacked, for taking the set from a local mirror
/// (`download <set> --from <dir>`): its path under the set's folder and the MD5 of its
/// uncompressed content (the same whether a mirror holds it plain or gzipped).
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Path relative to the set's folder, uncompressed name.
    pub path: &'static str,
    /// Lower-case hex MD5 of the uncompressed file.
    pub md5: &'static str,
}

/// A data set: where its files come from and where they go under the data root.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The name on the command line.
    pub name: &'static str,
    /// Sub-folder of the data root that receives the files (and the unpacked archives).
    pub subdir: &'static str,
    /// Files to fetch; empty for the manual-download sets.
    pub files: Vec<Remote>,
    /// A path (relative to `subdir`) whose presence means the set is ready.
    pub ready: &'static str,
    /// For manual-download sets: what to do by hand.
    pub manual: Option<&'static str>,
    /// The unpacked files with the MD5s of their content, where known: what `--from <dir>` takes
    /// and checks. Empty: `--from` takes only the set's archive.
    pub contents: Vec<Content>,
}

/// The Google Drive folder of the reference SIREN sets (no plain download URLs).
pub const SIREN_DRIVE: &str =
    "https://drive.google.com/drive/folders/15CdOTPWHqDcS4SwbIdm100rXkTYZPcC5";

/// The local mirror `download` takes sets from when `--from` is not given and `NFN_DATA_MIRROR` is
/// not set, relative to the workspace: the project machines' shared data folder (MNIST and the
/// CIFAR-10 subset; `../shared/data/README.md`). Absent elsewhere, where the URLs are used.
pub const DEFAULT_MIRROR: &str = "../shared/data";

/// The reference's zoo split files: URL, file name, MD5.
const ZOO_SPLITS: [(&str, &str, &str); 4] = [
    (
        "https://raw.githubusercontent.com/AllanYangZhou/nfn/ce783221fd7c511596220d805c7a5beccd764ee8/experiments/predict_gen_data_splits/cifar10_split.csv",
        "cifar10_split.csv",
        "11f540f58b301e17d6d776a32b08ac0b",
    ),
    (
        "https://raw.githubusercontent.com/AllanYangZhou/nfn/ce783221fd7c511596220d805c7a5beccd764ee8/experiments/predict_gen_data_splits/fashion_mnist_split.csv",
        "fashion_mnist_split.csv",
        "c0db6f99d12e50188964ad8d7b35a437",
    ),
    (
        "https://raw.githubusercontent.com/AllanYangZhou/nfn/ce783221fd7c511596220d805c7a5beccd764ee8/experiments/predict_gen_data_splits/mnist_split.csv",
        "mnist_split.csv",
        "b3faa8b00dd4702393c1000b3769d09f",
    ),
    (
        "https://raw.githubusercontent.com/AllanYangZhou/nfn/ce783221fd7c511596220d805c7a5beccd764ee8/experiments/predict_gen_data_splits/svhn_split.csv",
        "svhn_split.csv",
        "f3e87a68c6bde5ec76807bc18920ee6c",
    ),
];

/// FashionMNIST from Zalando's repository: URL, file name, MD5 (Zalando's README and
/// torchvision's resource list). Debian's `dataset-fashion-mnist` holds the same files recompressed,
/// so its MD5s differ; nothing here reads that package.
const FASHION_MNIST: [(&str, &str, &str); 4] = [
    (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/train-images-idx3-ubyte.gz",
        "train-images-idx3-ubyte.gz",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    ),
    (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/train-labels-idx1-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "25c81989df183df01b3e8a0aad5dffbe",
    ),
    (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/t10k-images-idx3-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "bef4ecab320f06d8554ea6380940ec79",
    ),
    (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/t10k-labels-idx1-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
];

/// MNIST's four files uncompressed, with the canonical MD5s of their content.
const MNIST_CONTENT: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
    ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
];

/// FashionMNIST's four files uncompressed (the content of Zalando's `.gz` files, which Debian's
/// package holds recompressed): MD5s measured on Debian's `dataset-fashion-mnist` (2026-12-07).
const FASHION_MNIST_CONTENT: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    ("train-labels-idx1-ubyte", "9018921c3c673c538a1fc5bad174d6f9"),
    ("t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a"),
    ("t10k-labels-idx1-ubyte", "15d484375f8d13e6eb1aabb0c3f46965"),
];

/// The CIFAR-10 subset's six batch files (1,017 records each).
const CIFAR10_SUBSET_CONTENT: [(&str, &str); 6] = [
    ("cifar-10-batches-bin/data_batch_1.bin", "62f96788be656b9613f40150fe2dda66"),
    ("cifar-10-batches-bin/data_batch_2.bin", "dba81ae79c6bb902054ffa93f0a5ba49"),
    ("cifar-10-batches-bin/data_batch_3.bin", "ce8b36aa75ea547b647c849f5a3faac8"),
    ("cifar-10-batches-bin/data_batch_4.bin", "9548927dc715700d733c40695d94a590"),
    ("cifar-10-batches-bin/data_batch_5.bin", "76194cdcb36d1a469e54752268defd4a"),
    ("cifar-10-batches-bin/test_batch.bin", "6ac134a1c8e0e152e254c10d0fc92b6f"),
];

fn contents(table: &[(&'static str, &'static str)]) -> Vec<Content> {
    table.iter().map(|&(path, md5)| Content { path, md5 }).collect()
}

/// The known data sets (design.md §6.1, §6.3).
pub fn dataset(name: &str) -> Result<Dataset> {
    let remote = |url, file, md5| Remote { url, file, md5 };
    let siren = |name, tar, dir| Dataset {
        name,
        subdir: "siren",
        files: vec![],
        ready: dir,
        manual: Some(tar),
        contents: vec![],
    };
    Ok(match name {
        "mnist" => Dataset {
            name: "mnist",
            subdir: "mnist",
            files: vec![
                remote(
                    "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                    "train-images-idx3-ubyte.gz",
                    Some("f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                ),
                remote(
                    "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
                    "train-labels-idx1-ubyte.gz",
                    Some("d53e105ee54ea40749a09fcbcd1e9432"),
                ),
                remote(
                    "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
                    "t10k-images-idx3-ubyte.gz",
                    Some("9fb629c4189551a2d022fa330f9573f3"),
                ),
                remote(
                    "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
                    "t10k-labels-idx1-ubyte.gz",
                    Some("ec29112dd5afa0611ce80d1b7f02629c"),
                ),
            ],
            ready: "t10k-labels-idx1-ubyte.gz",
            manual: None,
            contents: contents(&MNIST_CONTENT),
        },
        // For machines without Debian's `dataset-fashion-mnist`; `nfn` looks in
        // /usr/share/datasets/fashion-mnist first, then in data/fashion-mnist.
        "fashion-mnist" => Dataset {
            name: "fashion-mnist",
            subdir: "fashion-mnist",
            files: FASHION_MNIST
                .iter()
                .map(|&(url, file, md5)| remote(url, file, Some(md5)))
                .collect(),
            ready: "t10k-labels-idx1-ubyte.gz",
            manual: None,
            contents: contents(&FASHION_MNIST_CONTENT),
        },
        "cifar10" => Dataset {
            name: "cifar10",
            subdir: "cifar10",
            files: vec![remote(
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                "cifar-10-binary.tar.gz",
                Some("c32a1d4ab5d03f1284b67883e8d87530"),
            )],
            ready: "cifar-10-batches-bin/test_batch.bin",
            manual: None,
            contents: vec![],
        },
        // SVHN's cropped digits (format 2), for `nfn make-zoo --dataset svhn-gs`: MATLAB v5 files;
        // MD5s as in torchvision's SVHN resource list.
        "svhn" => Dataset {
            name: "svhn",
            subdir: "svhn",
            files: vec![
                remote(
                    "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                    "train_32x32.mat",
                    Some("e26dedcc434d2e4c54c9b2d4a06d8373"),
                ),
                remote(
                    "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
                    "test_32x32.mat",
                    Some("eb5a983be6a315427106f1b164d9cef3"),
                ),
            ],
            ready: "test_32x32.mat",
            manual: None,
            contents: vec![],
        },
        // A real subset of CIFAR-10 (the first 1,017 photos of each official batch: 5,085 training
        // and 1,017 test images, official binary layout), for machines that cannot reach the full
        // set; it has no URL, only `--from` a folder holding it (`../shared/data/cifar10-subset`).
        // MD5s of the subset's files. Results on it are labelled "subset".
        "cifar10-subset" => Dataset {
            name: "cifar10-subset",
            subdir: "cifar10-subset",
            files: vec![],
            ready: "cifar-10-batches-bin/test_batch.bin",
            manual: None,
            contents: contents(&CIFAR10_SUBSET_CONTENT),
        },
        "siren-mnist" => siren("siren-mnist", "siren_mnist_wts.tar", "siren_mnist_wts"),
        "siren-fashion" => siren("siren-fashion", "siren_fashion_wts.tar", "siren_fashion_wts"),
        "siren-cifar" => siren("siren-cifar", "siren_cifar_wts.tar", "siren_cifar_wts"),
        "cnn-zoo-cifar10" => Dataset {
            name: "cnn-zoo-cifar10",
            subdir: "cnn_zoo",
            files: vec![remote(
                "https://storage.googleapis.com/gresearch/smallcnnzoo-dataset/cifar10.tar.xz",
                "cifar10.tar.xz",
                None,
            )],
            ready: "cifar10/weights.npy",
            manual: None,
            contents: vec![],
        },
        "cnn-zoo-svhn" => Dataset {
            name: "cnn-zoo-svhn",
            subdir: "cnn_zoo",
            files: vec![remote(
                "https://storage.googleapis.com/gresearch/smallcnnzoo-dataset/svhn_cropped.tar.xz",
                "svhn_cropped.tar.xz",
                None,
            )],
            ready: "svhn_cropped/weights.npy",
            manual: None,
            contents: vec![],
        },
        "cnn-zoo-mnist" => Dataset {
            name: "cnn-zoo-mnist",
            subdir: "cnn_zoo",
            files: vec![remote(
                "https://storage.googleapis.com/gresearch/smallcnnzoo-dataset/mnist.tar.xz",
                "mnist.tar.xz",
                None,
            )],
            ready: "mnist/weights.npy",
            manual: None,
            contents: vec![],
        },
        "cnn-zoo-fashion-mnist" => Dataset {
            name: "cnn-zoo-fashion-mnist",
            subdir: "cnn_zoo",
            files: vec![remote(
                "https://storage.googleapis.com/gresearch/smallcnnzoo-dataset/fashion_mnist.tar.xz",
                "fashion_mnist.tar.xz",
                None,
            )],
            ready: "fashion_mnist/weights.npy",
            manual: None,
            contents: vec![],
        },
        // The reference's fixed permutation files (design.md §6.3, §8.4), from its repository at
        // the commit the spec describes; MD5s of those blobs.
        "cnn-zoo-splits" => Dataset {
            name: "cnn-zoo-splits",
            subdir: "cnn_zoo/splits",
            files: ZOO_SPLITS
                .iter()
                .map(|&(url, file, md5)| remote(url, file, Some(md5)))
                .collect(),
            ready: "svhn_split.csv",
            manual: None,
            contents: vec![],
        },
        _ => bail!(
            "unknown data set {name:?}; available: mnist, fashion-mnist, cifar10, cifar10-subset, svhn, siren-mnist, \
             siren-fashion, siren-cifar, cnn-zoo-cifar10, cnn-zoo-svhn, cnn-zoo-mnist, cnn-zoo-fashion-mnist, \
             cnn-zoo-splits"
        ),
    })
}
