//! `cargo xtask download <dataset>`: fetch a data set into `data/`, resumably and verified.
//!
//! Each file is fetched into `<file>.part` (an interrupted download resumes with an HTTP `Range`
//! request), checked against its MD5 where one is known, then renamed into place, so a finished
//! name always holds a complete, verified file. Archives are then unpacked (`.tar.gz`, `.tar.xz`,
//! `.tar`). The SIREN INR sets live in a Google Drive folder that has no plain URLs: download the
//! tarball by hand and pass it with `--from FILE`. The data sets and their URLs and MD5s are in
//! `download/catalog.rs`; formats and where each set lands: `docs/datasets.md`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use md5::{Digest, Md5};

use crate::util::root;

mod catalog;
mod local;

pub use catalog::{dataset, Dataset};
use catalog::{DEFAULT_MIRROR, SIREN_DRIVE};

/// Options of `download`.
#[derive(clap::Args)]
pub struct Args {
    /// mnist, fashion-mnist, cifar10, cifar10-subset (a local copy only), svhn, siren-mnist,
    /// siren-fashion, siren-cifar, cnn-zoo-cifar10, cnn-zoo-svhn, cnn-zoo-mnist,
    /// cnn-zoo-fashion-mnist or cnn-zoo-splits (the reference's split files).
    pub dataset: String,
    /// Destination root (default: `data/` in the workspace).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Take the set from this local copy instead of downloading: its archive (required for the
    /// SIREN sets), or a mirror folder holding its files, plain or `.gz`, checked against the
    /// catalog's MD5s of their uncompressed content (`../shared/data/mnist`).
    #[arg(long)]
    pub from: Option<PathBuf>,
}

/// Download (or take `--from`, or from the default mirror) and unpack one data set.
pub fn run(args: &Args) -> Result<()> {
    let set = dataset(&args.dataset)?;
    let data_root = args.dir.clone().unwrap_or_else(|| root().join("data"));
    let from = args.from.clone().or_else(|| mirror_folder(&set));
    install(&set, &data_root, from.as_deref(), true).map(|_| ())
}

/// The environment variable naming a local mirror folder (one sub-folder per set, named as the
/// set's folder under `data/`) that `download` takes sets from when no `--from` is given; empty
/// turns the mirror off.
pub const MIRROR_ENV: &str = "NFN_DATA_MIRROR";

/// `set`'s folder in the local mirror ([`MIRROR_ENV`], else [`DEFAULT_MIRROR`] beside the
/// workspace), where that folder exists and the catalog records the checksums to check it by.
fn mirror_folder(set: &Dataset) -> Option<PathBuf> {
    let mirror = match std::env::var_os(MIRROR_ENV) {
        Some(m) if m.is_empty() => return None,
        Some(m) => PathBuf::from(m),
        None => root().join(DEFAULT_MIRROR),
    };
    let folder = mirror.join(set.subdir);
    (local::takes_folder(set) && folder.is_dir()).then(|| {
        eprintln!(
            "xtask: taking {} from the local mirror {} ({MIRROR_ENV})",
            set.name,
            folder.display()
        );
        folder
    })
}

/// Fetch `set`'s files (or take the archive `from`) into `data_root/<subdir>`, verified, unpack
/// its archives, and return that folder. A set that is already there is left alone.
///
/// # Errors
/// A failed or corrupt download (naming its URL), a manual-download set without `from`, an archive
/// that does not unpack, or a set that is still incomplete afterwards.
pub fn install(
    set: &Dataset,
    data_root: &Path,
    from: Option<&Path>,
    progress: bool,
) -> Result<PathBuf> {
    let dir = data_root.join(set.subdir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {dir:?}"))?;
    if dir.join(set.ready).exists() || local::has_contents(set, &dir) {
        eprintln!("xtask: {} is already in {}", set.name, dir.display());
        return Ok(dir);
    }
    let archives: Vec<PathBuf> = match (from, set.manual) {
        (Some(from), _) if from.is_dir() && local::takes_folder(set) => {
            local::install_from_folder(set, from, &dir)?;
            eprintln!("xtask: {} ready in {}", set.name, dir.display());
            return Ok(dir);
        }
        (Some(from), _) if from.is_dir() => archives_in_folder(set, from, &dir)?,
        (Some(from), _) => vec![from.to_path_buf()],
        (None, Some(tar)) => bail!(
            "{} is in a Google Drive folder, which has no plain download URL.\n\
             By hand: open {SIREN_DRIVE}, download {tar}, then run\n  \
             cargo xtask download {} --from /path/to/{tar}\n\
             (it is unpacked into {}).",
            set.name,
            set.name,
            dir.display()
        ),
        (None, None) if set.files.is_empty() => bail!(
            "{} has no download URL: take it from a folder that holds it, \
             `cargo xtask download {} --from <folder>` (docs/datasets.md)",
            set.name,
            set.name
        ),
        (None, None) => {
            let agent = agent();
            let mut out = Vec::new();
            for remote in &set.files {
                let dest = dir.join(remote.file);
                fetch(&agent, remote.url, &dest, remote.md5, progress, 5)?;
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
    Ok(dir)
}

/// A mirror folder holding `set`'s archive or files under their catalog names (or, for a manual
/// set, its tarball): each is checked against its published MD5 where there is one; files that are
/// not archives are copied into `dir`, the archives returned for unpacking.
fn archives_in_folder(set: &Dataset, from: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let wanted: Vec<(&str, Option<&str>)> = match set.manual {
        Some(tar) => vec![(tar, None)],
        None => set.files.iter().map(|r| (r.file, r.md5)).collect(),
    };
    let mut out = Vec::new();
    for (file, md5) in wanted {
        let path = from.join(file);
        if !path.is_file() {
            bail!("{}: missing from the mirror folder {}", path.display(), from.display());
        }
        if let Some(want) = md5 {
            let got = md5_file(&path)?;
            if got != want {
                bail!(
                    "{}: MD5 {got}, the catalog's is {want}; refused, nothing placed",
                    path.display()
                );
            }
        }
        out.push(path);
    }
    for path in out.iter().filter(|p| !is_archive(p)) {
        local::place(path, &dir.join(path.file_name().unwrap_or_default()))?;
    }
    Ok(out.into_iter().filter(|p| is_archive(p)).collect())
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
