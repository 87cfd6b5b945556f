//! `cargo xtask gpu-check --pack DIR`: everything the GPU check needs on a machine that has a GPU and
//! PyTorch but no cargo, no crates and no network, built here. The bundle holds
//!
//! - `bin/nfn` and `bin/bench_layers` (release, `--features cuda`), `bin/xtask` (this program) and
//!   `bin/tests/*` (the test binaries of the symmetry suites that honour `NFN_TEST_DEVICE`), stripped;
//! - `py/nfn`: the PyTorch reference package (`nfn==0.1.2`, pure Python) from `.venv`;
//! - `fashion-mnist/`: the FashionMNIST files with every training-file image outside the demo's
//!   splits set to zero (the file keeps its 60,000 entries, so image indices and labels stay true, and
//!   it compresses to a few MB);
//! - `PACK.json`: the commit, the host and the LibTorch version it was built against.
//!
//! The binaries link LibTorch dynamically; on the GPU machine `gpu-check --prebuilt DIR` points
//! `LD_LIBRARY_PATH` at that machine's PyTorch (`torch/lib`), which must be the same version.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::util::{cargo, output, root, run as sh};

/// Test binaries whose suites move their layers and inputs to `NFN_TEST_DEVICE`.
pub const SUITES: [&str; 5] =
    ["nfn_layers", "nft_layers", "model_symmetry", "encoder", "precision"];

/// Training-file image ranges the demo's INR set reads under the Inr2Array split protocol (design.md
/// §6.1): the first `limit` training images, and the validation images `[55000, 60000)` of which
/// `--limit` keeps a leading part. The test split comes from the test file, copied whole.
fn kept_train_images(limit: usize) -> [std::ops::Range<usize>; 2] {
    [0..limit, 55_000..60_000]
}

/// Build and copy the bundle into `dir` (under the project root when relative).
pub fn pack(dir: &Path, demo_limit: usize) -> Result<()> {
    let dir = root().join(dir);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin/tests"))?;
    let release = |pkg: &str, bin: &str| -> Result<()> {
        sh(cargo().args(["build", "--release", "-p", pkg, "--features", "cuda", "--bin", bin]))
    };
    release("nfn-cli", "nfn")?;
    release("nfn-bench", "bench_layers")?;
    for bin in ["nfn", "bench_layers"] {
        copy_stripped(&root().join("target/release").join(bin), &dir.join("bin").join(bin))?;
    }
    let xtask = std::env::current_exe().context("locating the xtask binary")?;
    copy_stripped(&xtask, &dir.join("bin/xtask"))?;
    for (suite, exe) in test_binaries()? {
        copy_stripped(&exe, &dir.join("bin/tests").join(suite))?;
    }
    copy_reference_package(&dir.join("py"))?;
    sparse_fashion_mnist(&dir.join("fashion-mnist"), demo_limit)?;
    let commit = output(Command::new("git").args(["rev-parse", "--short", "HEAD"]));
    let dirty = output(Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]))
        .is_some_and(|s| !s.is_empty());
    let torch = output(
        Command::new(crate::util::python()).args(["-c", "import torch; print(torch.__version__)"]),
    );
    let meta = serde_json::json!({
        "commit": commit.map(|c| if dirty { format!("{c} (with uncommitted changes)") } else { c }),
        "built_on": super::bench::cpu_name(),
        "libtorch": torch,
        "suites": SUITES,
    });
    std::fs::write(dir.join("PACK.json"), serde_json::to_string_pretty(&meta)?)?;
    let size = output(Command::new("du").arg("-sh").arg(&dir)).unwrap_or_default();
    eprintln!("xtask: packed {} ({size})", dir.display());
    Ok(())
}

/// Copy `from` to `to` without symbols (`strip`), or as it is where `strip` is missing.
fn copy_stripped(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {from:?} to {to:?}"))?;
    if Command::new("strip").arg(to).status().map_or(true, |s| !s.success()) {
        eprintln!("xtask: could not strip {} (copied with its symbols)", to.display());
    }
    Ok(())
}

/// Build the workspace's test binaries (the README's test features, so the build is the cached one)
/// and return the executables of [`SUITES`].
fn test_binaries() -> Result<Vec<(&'static str, PathBuf)>> {
    let out = cargo()
        .args([
            "test",
            "--workspace",
            "--no-run",
            "--features",
            "nfn-weightspace/testing",
            "--message-format",
            "json",
        ])
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("starting cargo test --no-run")?;
    ensure!(out.status.success(), "cargo test --no-run failed with {}", out.status);
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(name), Some(exe)) = (msg["target"]["name"].as_str(), msg["executable"].as_str())
        else {
            continue;
        };
        let is_test =
            msg["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "test"));
        if let Some(suite) = SUITES.iter().find(|s| **s == name).filter(|_| is_test) {
            found.push((*suite, PathBuf::from(exe)));
        }
    }
    if let Some(missing) = SUITES.iter().find(|s| !found.iter().any(|(f, _)| f == *s)) {
        bail!("cargo test --no-run built no test binary {missing}");
    }
    Ok(found)
}

/// Copy the reference package (`import nfn` in the project's Python) into `dir/nfn`.
fn copy_reference_package(dir: &Path) -> Result<()> {
    let code = "import nfn, os; print(os.path.dirname(nfn.__file__))";
    let Some(src) = output(Command::new(crate::util::python()).args(["-c", code])) else {
        bail!("the reference package is not installed: run `cargo xtask setup --reference` first");
    };
    copy_tree(Path::new(&src), &dir.join("nfn"))
}

/// Copy the `.py` files of a folder tree.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {from:?}"))? {
        let path = entry?.path();
        let target = to.join(path.file_name().expect("a directory entry has a name"));
        if path.is_dir() && path.file_name().is_some_and(|n| n != "__pycache__") {
            copy_tree(&path, &target)?;
        } else if path.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&path, &target)?;
        }
    }
    Ok(())
}

/// The FashionMNIST folder here: Debian's, else `data/fashion-mnist`.
fn fashion_mnist_dir() -> Result<PathBuf> {
    let file = "train-images-idx3-ubyte.gz";
    let debian = PathBuf::from("/usr/share/datasets/fashion-mnist");
    [debian, root().join("data/fashion-mnist")]
        .into_iter()
        .find(|d| d.join(file).exists())
        .context("no FashionMNIST here: install dataset-fashion-mnist or `cargo xtask download fashion-mnist`")
}

/// Write the FashionMNIST files to `out`, the training images outside [`kept_train_images`] zeroed.
fn sparse_fashion_mnist(out: &Path, limit: usize) -> Result<()> {
    let src = fashion_mnist_dir()?;
    std::fs::create_dir_all(out)?;
    for name in
        ["train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    {
        std::fs::copy(src.join(name), out.join(name))
            .with_context(|| format!("copying {:?}", src.join(name)))?;
    }
    let name = "train-images-idx3-ubyte.gz";
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(src.join(name))?)
        .read_to_end(&mut raw)
        .with_context(|| format!("reading {:?}", src.join(name)))?;
    let sparse = zero_images_outside(raw, &kept_train_images(limit))
        .with_context(|| format!("{:?}", src.join(name)))?;
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(out.join(name))?,
        flate2::Compression::best(),
    );
    gz.write_all(&sparse)?;
    gz.finish()?;
    Ok(())
}

/// An IDX image file (`u32` magic 0x0803, count, rows, columns, then the pixels) with every image
/// whose index lies outside `keep` set to zero.
fn zero_images_outside(mut raw: Vec<u8>, keep: &[std::ops::Range<usize>]) -> Result<Vec<u8>> {
    let word = |i: usize| -> Result<usize> {
        let bytes = raw.get(4 * i..4 * i + 4).context("the IDX header is truncated")?;
        Ok(u32::from_be_bytes(bytes.try_into().expect("four bytes")) as usize)
    };
    ensure!(word(0)? == 0x0803, "not an IDX image file (magic {:#x})", word(0)?);
    let (n, size) = (word(1)?, word(2)? * word(3)?);
    ensure!(raw.len() == 16 + n * size, "{} bytes, expected {}", raw.len(), 16 + n * size);
    for (i, image) in raw[16..].chunks_mut(size).enumerate() {
        if !keep.iter().any(|r| r.contains(&i)) {
            image.fill(0);
        }
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroes_exactly_the_images_outside_the_kept_ranges() {
        let mut raw = vec![0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2];
        raw.extend((1..=10).collect::<Vec<u8>>());
        let out = zero_images_outside(raw, &[0..1, 3..4]).unwrap();
        assert_eq!(&out[16..], &[1, 2, 0, 0, 0, 0, 7, 8, 0, 0]);
        assert!(zero_images_outside(vec![0, 0, 8, 1], &[]).is_err());
        let mut short = vec![0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2];
        short.extend([1, 2, 3]);
        assert!(zero_images_outside(short, &[]).is_err());
    }
}
