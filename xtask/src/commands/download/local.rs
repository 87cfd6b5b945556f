//! `cargo xtask download <set> --from <dir>`: take a catalog data set from a local mirror (a
//! cluster without internet, a colleague's folder, `../shared/data`) instead of its URLs.
//!
//! Each file the catalog lists in [`Dataset::contents`] is looked up in the mirror folder under its
//! path or its bare name, plain or gzip-compressed (`name` or `name.gz`), checked against the MD5
//! of its *uncompressed* content recorded in the catalog (so a re-compressed `.gz` passes and a
//! flipped byte does not), copied to a temporary file beside its target and renamed into place in
//! the form it came in (the readers take both). Every file is checked before any is placed, so a
//! refused mirror leaves the data folder as it was.

use std::fs::{self, File};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use md5::{Digest, Md5};

use super::catalog::{Content, Dataset};

/// One mirror file found for a catalog entry.
struct Found<'a> {
    content: &'a Content,
    source: PathBuf,
    gz: bool,
}

/// Whether `set` can be taken from a mirror folder file by file (its catalog entry records the
/// checksums of its uncompressed files).
pub fn takes_folder(set: &Dataset) -> bool {
    !set.contents.is_empty()
}

/// Whether `dir` holds every file of `set`'s [`Dataset::contents`], plain or gzipped.
pub fn has_contents(set: &Dataset, dir: &Path) -> bool {
    takes_folder(set)
        && set.contents.iter().all(|c| {
            let target = dir.join(c.path);
            target.is_file() || gz_name(&target).is_file()
        })
}

/// Check every file of `set` in the mirror folder `from`, then place them all in `dir`.
///
/// # Errors
/// A file the mirror lacks (naming the paths looked at), one whose uncompressed content does not
/// have the catalog's MD5 (naming the file and both checksums), or an I/O failure.
pub fn install_from_folder(set: &Dataset, from: &Path, dir: &Path) -> Result<()> {
    if !from.is_dir() {
        bail!(
            "{}: not a folder (--from takes the folder that holds {}'s files)",
            from.display(),
            set.name
        );
    }
    let mut found = Vec::with_capacity(set.contents.len());
    for content in &set.contents {
        let (source, gz) = locate(from, content.path)?;
        let got = md5_uncompressed(&source, gz)?;
        if got != content.md5 {
            bail!(
                "{}: MD5 of its {}content is {got}, the catalog's for {} is {}; refused (a corrupt or \
                 different file), nothing placed",
                source.display(),
                if gz { "uncompressed " } else { "" },
                content.path,
                content.md5
            );
        }
        found.push(Found { content, source, gz });
    }
    for f in &found {
        let target = dir.join(f.content.path);
        let target = if f.gz { gz_name(&target) } else { target };
        place(&f.source, &target)?;
        eprintln!("xtask: {} <- {} (MD5 of content checked)", target.display(), f.source.display());
    }
    Ok(())
}

/// The mirror's file for the catalog path `rel`: `from/rel`, then `from/<file name>`, each plain
/// or with `.gz`; the path and whether it is gzipped.
fn locate(from: &Path, rel: &str) -> Result<(PathBuf, bool)> {
    let by_path = from.join(rel);
    let by_name = from.join(Path::new(rel).file_name().unwrap_or_default());
    let candidates = [
        (by_path.clone(), false),
        (gz_name(&by_path), true),
        (by_name.clone(), false),
        (gz_name(&by_name), true),
    ];
    for (path, gz) in &candidates {
        if path.is_file() {
            return Ok((path.clone(), *gz));
        }
    }
    let looked: Vec<String> = candidates.iter().map(|(p, _)| p.display().to_string()).collect();
    bail!("{}: missing from the mirror (looked for {})", rel, looked.join(", "))
}

fn gz_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".gz");
    PathBuf::from(name)
}

/// The lower-case hex MD5 of a file's content, gunzipped first when `gz`.
fn md5_uncompressed(path: &Path, gz: bool) -> Result<String> {
    if !gz {
        return super::md5_file(path);
    }
    let file =
        BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?);
    let mut hasher = Md5::new();
    io::copy(&mut flate2::read::GzDecoder::new(file), &mut hasher)
        .with_context(|| format!("{}: not a readable gzip file", path.display()))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Copy `source` to `target` through `<target>.part` in the target's folder, then rename.
pub fn place(source: &Path, target: &Path) -> Result<()> {
    let parent = target.parent().context("a target inside a folder")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let part = super::part_path(target);
    let copied = (|| -> Result<()> {
        let mut input =
            File::open(source).with_context(|| format!("opening {}", source.display()))?;
        let mut out =
            File::create(&part).with_context(|| format!("creating {}", part.display()))?;
        io::copy(&mut input, &mut out)
            .with_context(|| format!("copying {} to {}", source.display(), part.display()))?;
        out.flush()?;
        out.sync_all()?;
        Ok(())
    })();
    if let Err(e) = copied {
        let _ = fs::remove_file(&part);
        return Err(e);
    }
    fs::rename(&part, target)
        .with_context(|| format!("renaming {} to {}", part.display(), target.display()))
}
