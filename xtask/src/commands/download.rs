//! `cargo xtask download <dataset>`: fetch a data set into `data/`, resumably and verified.
//!
//! Each file is fetched into `<file>.part` (an interrupted download resumes with an HTTP `Range`
//! request), checked against its MD5 where one is known, then renamed into place, so a finished
//! name always holds a complete, verified file. Archives are then unpacked (`.tar.gz`, `.tar.xz`,
//! `.tar`). The SIREN INR sets live in a Google Drive folder that has no plain URLs: download the
//! tarball by hand and pass it with `--from FILE`. Formats and URLs: `docs/datasets.md`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use md5::{Digest, Md5};

use crate::util::root;

/// Options of `download`.
#[derive(clap::Args)]
pub struct Args {
    /// mnist, cifar10, siren-mnist, siren-fashion, siren-cifar, cnn-zoo-cifar10, cnn-zoo-svhn,
    /// cnn-zoo-mnist, cnn-zoo-fashion-mnist or cnn-zoo-splits (the reference's split files).
    pub dataset: String,
    /// Destination root (default: `data/` in the workspace).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Use this local archive instead of downloading (required for the SIREN sets).
    #[arg(long)]
    pub from: Option<PathBuf>,
}

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
}

const SIREN_DRIVE: &str =
    "https://drive.google.com/drive/folders/15CdOTPWHqDcS4SwbIdm100rXkTYZPcC5";

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

/// The known data sets (design.md §6.1, §6.3).
pub fn dataset(name: &str) -> Result<Dataset> {
    let remote = |url, file, md5| Remote { url, file, md5 };
    let siren = |name, tar, dir| Dataset {
        name,
        subdir: "siren",
        files: vec![],
        ready: dir,
        manual: Some(tar),
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
        },
        _ => bail!(
            "unknown data set {name:?}; available: mnist, cifar10, siren-mnist, siren-fashion, \
             siren-cifar, cnn-zoo-cifar10, cnn-zoo-svhn, cnn-zoo-mnist, cnn-zoo-fashion-mnist, \
             cnn-zoo-splits"
        ),
    })
}

/// Download (or take `--from`) and unpack one data set.
pub fn run(args: &Args) -> Result<()> {
    let set = dataset(&args.dataset)?;
    let dir = args.dir.clone().unwrap_or_else(|| root().join("data")).join(set.subdir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {dir:?}"))?;
    if dir.join(set.ready).exists() {
        eprintln!("xtask: {} is already in {}", set.name, dir.display());
        return Ok(());
    }
    let archives: Vec<PathBuf> = match (&args.from, set.manual) {
        (Some(from), _) => vec![from.clone()],
        (None, Some(tar)) => bail!(
            "{} is in a Google Drive folder, which has no plain download URL.\n\
             By hand: open {SIREN_DRIVE}, download {tar}, then run\n  \
             cargo xtask download {} --from /path/to/{tar}\n\
             (it is unpacked into {}).",
            set.name,
            set.name,
            dir.display()
        ),
        (None, None) => {
            let agent = agent();
            let mut out = Vec::new();
            for remote in &set.files {
                let dest = dir.join(remote.file);
                fetch(&agent, remote.url, &dest, remote.md5, true, 5)?;
                out.push(dest);
            }
            out
        }
    };
    for archive in archives.iter().filter(|a| is_archive(a)) {
        eprintln!("xtask: unpacking {} into {}", archive.display(), dir.display());
        unpack(archive, &dir)?;
    }
    if !dir.join(set.ready).exists() {
        bail!("{} did not produce {}", set.name, dir.join(set.ready).display());
    }
    eprintln!("xtask: {} ready in {}", set.name, dir.display());
    Ok(())
}

/// An HTTP agent with rustls and generous timeouts.
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build()
}

/// The lower-case hex MD5 of a file.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {path:?}"))?;
    let mut hasher = Md5::new();
    io::copy(&mut file, &mut hasher).with_context(|| format!("reading {path:?}"))?;
    Ok(format!("{:x}", hasher.finalize()))
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().expect("a destination file name").to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Fetch `url` to `dest`: resume `dest.part` with a `Range` request, retry up to `attempts` times
/// on a broken transfer, verify `md5`, then rename into place. A `dest` that already exists is
/// verified and kept. On a checksum mismatch the partial file is removed and nothing is placed.
pub fn fetch(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    md5: Option<&str>,
    progress: bool,
    attempts: usize,
) -> Result<()> {
    if dest.exists() {
        match md5 {
            Some(want) if md5_file(dest)? != want => {
                bail!("{dest:?} exists but its MD5 is not {want}; delete it and retry")
            }
            _ => return Ok(()),
        }
    }
    let part = part_path(dest);
    let mut last_err = None;
    for attempt in 1..=attempts.max(1) {
        match fetch_once(agent, url, &part, progress) {
            Ok(()) => {
                last_err = None;
                break;
            }
            Err(e) => {
                eprintln!("xtask: {url}: attempt {attempt} failed: {e:#}");
                last_err = Some(e);
            }
        }
    }
    if let Some(e) = last_err {
        return Err(e.context(format!("downloading {url} (partial file kept: {part:?})")));
    }
    if let Some(want) = md5 {
        let got = md5_file(&part)?;
        if got != want {
            fs::remove_file(&part).with_context(|| format!("removing {part:?}"))?;
            bail!("{url}: MD5 {got} != expected {want}; removed the download");
        }
    }
    fs::rename(&part, dest).with_context(|| format!("renaming {part:?} to {dest:?}"))?;
    Ok(())
}

/// One request: append to `part` from its current length until the server's total.
fn fetch_once(agent: &ureq::Agent, url: &str, part: &Path, progress: bool) -> Result<()> {
    let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        // The part file already holds everything.
        Err(ureq::Error::Status(416, _)) if have > 0 => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("GET {url}")),
    };
    let header_u64 = |name| response.header(name).and_then(|v| v.trim().parse::<u64>().ok());
    let (start, total) = match response.status() {
        206 => {
            // Content-Range: bytes <start>-<end>/<total>
            let range = response.header("Content-Range").unwrap_or_default().to_string();
            let start = range
                .strip_prefix("bytes ")
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.parse::<u64>().ok());
            if start != Some(have) {
                bail!("{url}: asked for bytes {have}-, got Content-Range {range:?}");
            }
            let total = range.rsplit('/').next().and_then(|t| t.parse::<u64>().ok());
            (have, total)
        }
        200 => (0, header_u64("Content-Length")),
        code => bail!("{url}: HTTP {code}"),
    };
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(start == 0)
        .append(start > 0)
        .open(part)
        .with_context(|| format!("opening {part:?}"))?;
    let bar = if progress {
        indicatif::ProgressBar::new(total.unwrap_or(0))
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    bar.set_message(part.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    bar.set_position(start);
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut written = start;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                file.flush()?;
                bail!("{url}: connection broke after {written} bytes: {e}");
            }
        };
        file.write_all(&buf[..n]).with_context(|| format!("writing {part:?}"))?;
        written += n as u64;
        bar.set_position(written);
    }
    file.sync_all().with_context(|| format!("syncing {part:?}"))?;
    bar.finish_and_clear();
    if let Some(total) = total {
        if written != total {
            bail!("{url}: connection closed after {written} of {total} bytes");
        }
    }
    Ok(())
}

fn is_archive(path: &Path) -> bool {
    let name = path.to_string_lossy();
    [".tar", ".tar.gz", ".tgz", ".tar.xz"].iter().any(|ext| name.ends_with(ext))
}

/// Unpack a `.tar`, `.tar.gz`/`.tgz` or `.tar.xz` archive into `dir`. The archive is unpacked into
/// a hidden folder next to the targets first, then its top-level entries are renamed into `dir`,
/// so an interrupted unpack leaves no half-filled data folder. `.tar.xz` is decompressed to a
/// temporary `.tar` on disk first (the xz decoder wants a writer, and the zoo archives are GBs).
pub fn unpack(archive: &Path, dir: &Path) -> Result<()> {
    let name = archive.to_string_lossy().into_owned();
    let staging = dir.join(".unpacking");
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("removing {staging:?}"))?;
    }
    fs::create_dir_all(&staging).with_context(|| format!("creating {staging:?}"))?;
    let open = || File::open(archive).with_context(|| format!("opening {archive:?}"));
    let unpack_tar = |reader: &mut dyn Read| -> Result<()> {
        tar::Archive::new(reader)
            .unpack(&staging)
            .with_context(|| format!("unpacking {archive:?} (corrupt or truncated archive?)"))
    };
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        unpack_tar(&mut flate2::read::GzDecoder::new(BufReader::new(open()?)))?;
    } else if name.ends_with(".tar.xz") {
        let tmp = dir.join(".unpacking.tar");
        {
            let mut out =
                BufWriter::new(File::create(&tmp).with_context(|| format!("creating {tmp:?}"))?);
            lzma_rs::xz_decompress(&mut BufReader::new(open()?), &mut out)
                .map_err(|e| anyhow::anyhow!("decompressing {archive:?}: {e:?}"))?;
            out.flush()?;
        }
        let result = unpack_tar(&mut BufReader::new(File::open(&tmp)?));
        fs::remove_file(&tmp).with_context(|| format!("removing {tmp:?}"))?;
        result?;
    } else {
        unpack_tar(&mut BufReader::new(open()?))?;
    }
    for entry in fs::read_dir(&staging).with_context(|| format!("listing {staging:?}"))? {
        let entry = entry?;
        let target = dir.join(entry.file_name());
        if target.exists() {
            bail!("{target:?} already exists; remove it to unpack {archive:?} again");
        }
        fs::rename(entry.path(), &target)
            .with_context(|| format!("moving {:?} to {target:?}", entry.path()))?;
    }
    fs::remove_dir(&staging).with_context(|| format!("removing {staging:?}"))?;
    Ok(())
}

#[cfg(test)]
mod tests;
