//! A cache of edited targets beside an INR set: `<set>/targets-<style>/<split>.bin`, one file per
//! split holding the uint8 edited images in the order of the split's base INRs (copy 0, the order
//! of [`InrSet::load`] without copies).
//!
//! Each file is [`TARGETS_MAGIC`], the payload length (u64 LE), its CRC-32 (u32 LE), then a bincode
//! payload (as INR shards are framed), written atomically (temporary file, then rename). Missing
//! files are built, so an interrupted build resumes; a file that is there but truncated, corrupt,
//! or made from another INR set or other images is an error naming it (delete it to rebuild).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::{edit_images, image_bytes, scale_bytes, EditStyle};
use crate::error::{Error, Result};
use crate::framing::{crc32, frame, unframe};
use crate::images::ImageSet;
use crate::inr_set::{Split, MANIFEST_FILE};
use crate::loader::InrSet;

/// The first bytes of every target cache file.
pub const TARGETS_MAGIC: &[u8; 8] = b"NFNEDIT1";

/// One split's cached targets, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TargetRecords {
    style: EditStyle,
    split: Split,
    image_shape: [i64; 3],
    /// CRC-32 of the split's base shards in the manifest (file, first image, length).
    shards_crc32: u32,
    /// CRC-32 of the unedited uint8 images, in order.
    source_crc32: u32,
    /// Image index of each target.
    image_index: Vec<i64>,
    /// Edited images `[n, c, h, w]` uint8.
    pixels: Vec<u8>,
}

impl TargetRecords {
    fn encode(&self) -> Vec<u8> {
        frame(TARGETS_MAGIC, self)
    }

    fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::file(path, format!("cannot read edit targets: {e}")))?;
        let records: Self = unframe(&bytes, TARGETS_MAGIC, "an edit-target file", path)?;
        let bad = |m: String| Error::file(path, m);
        let numel = records.image_shape.iter().product::<i64>() as usize;
        if records.pixels.len() != records.image_index.len() * numel {
            return Err(bad("pixel count disagrees with the image count".into()));
        }
        Ok(records)
    }
}

/// One split in memory.
#[derive(Debug, Clone)]
struct SplitTargets {
    path: PathBuf,
    image_index: Vec<i64>,
    pixels: Vec<u8>,
}

/// The edited targets of an INR set, one [`EditStyle`], all splits (see the module docs).
#[derive(Debug, Clone)]
pub struct EditTargets {
    dir: PathBuf,
    style: EditStyle,
    image_shape: [i64; 3],
    splits: [SplitTargets; 3],
}

impl EditTargets {
    /// The cache folder of `style` beside the INR set in `set_dir`: `set_dir/targets-<style>`.
    pub fn dir_for(set_dir: &Path, style: EditStyle) -> PathBuf {
        set_dir.join(format!("targets-{}", style.name()))
    }

    /// Load the cached targets of `set`, building (and writing) the splits that are missing from
    /// `images`, the image set the INRs were fitted to.
    ///
    /// # Errors
    /// [`Error::Mismatch`] naming the manifest if the set's image shape is not the image set's, or
    /// naming a cache file made from another INR set, style or images; [`Error::File`] naming a
    /// cache file that is truncated or corrupt, or an INR shard that is missing or bad;
    /// [`Error::InvalidArgument`] for a style that does not fit the images or an image index
    /// outside the image set.
    pub fn build_or_load(set: &InrSet, images: &ImageSet, style: EditStyle) -> Result<Self> {
        let image_shape = images.image_shape();
        if set.manifest.image_shape != image_shape {
            return Err(Error::mismatch(
                set.dir().join(MANIFEST_FILE),
                format!(
                    "the INR set's images are {:?} but the image set's are {image_shape:?}",
                    set.manifest.image_shape
                ),
            ));
        }
        style.check_shape(image_shape)?;
        let dir = Self::dir_for(set.dir(), style);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::file(&dir, format!("cannot create: {e}")))?;
        let load = |split: Split| -> Result<SplitTargets> {
            let path = dir.join(format!("{}.bin", split.name()));
            let shards_crc32 = shards_crc32(set, split);
            if path.exists() {
                let r = TargetRecords::read(&path)?;
                let expected = (style, split, image_shape, shards_crc32);
                if (r.style, r.split, r.image_shape, r.shards_crc32) != expected {
                    return Err(Error::mismatch(
                        &path,
                        "made for another INR set, split, style or image shape; delete it to rebuild",
                    ));
                }
                check_indices(&r.image_index, images)?;
                if crc32(&image_bytes(images, &r.image_index)?) != r.source_crc32 {
                    return Err(Error::mismatch(
                        &path,
                        "made from other images than the image set given; delete it to rebuild",
                    ));
                }
                return Ok(SplitTargets { path, image_index: r.image_index, pixels: r.pixels });
            }
            let image_index = Vec::<i64>::try_from(&set.load(split, false)?.image_index)?;
            check_indices(&image_index, images)?;
            let source = image_bytes(images, &image_index)?;
            let records = TargetRecords {
                style,
                split,
                image_shape,
                shards_crc32,
                source_crc32: crc32(&source),
                pixels: edit_images(&source, image_shape, style)?,
                image_index,
            };
            let bytes = records.encode();
            nfn_weightspace::io::write_atomically(&path, |out| {
                out.write_all(&bytes).map_err(|e| e.to_string())
            })?;
            Ok(SplitTargets { path, image_index: records.image_index, pixels: records.pixels })
        };
        let splits = [load(Split::Train)?, load(Split::Val)?, load(Split::Test)?];
        Ok(EditTargets { dir, style, image_shape, splits })
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The edit style.
    pub fn style(&self) -> EditStyle {
        self.style
    }

    /// One image's shape `[c, h, w]`.
    pub fn image_shape(&self) -> [i64; 3] {
        self.image_shape
    }

    fn split(&self, split: Split) -> &SplitTargets {
        &self.splits[Split::ALL.iter().position(|&s| s == split).expect("a split")]
    }

    /// The cache file of `split`.
    pub fn path(&self, split: Split) -> &Path {
        &self.split(split).path
    }

    /// Image index of each target of `split`, in the order of `InrSet::load(split, false)`.
    pub fn image_index(&self, split: Split) -> &[i64] {
        &self.split(split).image_index
    }

    /// The edited images of `split`, uint8 `[n, c, h, w]` row-major.
    pub fn bytes(&self, split: Split) -> &[u8] {
        &self.split(split).pixels
    }

    /// Targets of `split`, f32 `[n, c, h, w]` in `[-1, 1]`, in the order of
    /// `InrSet::load(split, false)`.
    ///
    /// # Errors
    /// [`Error::Tch`] if LibTorch fails.
    pub fn targets(&self, split: Split) -> Result<Tensor> {
        scale_bytes(self.bytes(split), self.image_shape)
    }

    /// Targets for INRs of `split` with image indices `image_index` (i64 `[n]`, e.g. the
    /// `image_index` of a split loaded with copies: a copy's target is its image's target):
    /// f32 `[n, c, h, w]` in `[-1, 1]`.
    ///
    /// # Errors
    /// [`Error::Mismatch`] naming the cache file if an index is not among its images.
    pub fn targets_for(&self, split: Split, image_index: &Tensor) -> Result<Tensor> {
        let s = self.split(split);
        let row: HashMap<i64, usize> =
            s.image_index.iter().enumerate().map(|(i, &index)| (index, i)).collect();
        let numel = self.image_shape.iter().product::<i64>() as usize;
        let wanted = Vec::<i64>::try_from(image_index.f_reshape([-1])?)?;
        let mut pixels = Vec::with_capacity(wanted.len() * numel);
        for index in wanted {
            let i = *row.get(&index).ok_or_else(|| {
                Error::mismatch(
                    &s.path,
                    format!("image {index} is not in the {} targets", split.name()),
                )
            })?;
            pixels.extend_from_slice(&s.pixels[i * numel..(i + 1) * numel]);
        }
        scale_bytes(&pixels, self.image_shape)
    }
}

/// CRC-32 of the split's base shards as the manifest lists them.
fn shards_crc32(set: &InrSet, split: Split) -> u32 {
    let listing: String = set
        .manifest
        .shards
        .iter()
        .filter(|s| s.split == split && s.copy == 0)
        .map(|s| format!("{}:{}:{}\n", s.file, s.start, s.len))
        .collect();
    crc32(listing.as_bytes())
}

fn check_indices(image_index: &[i64], images: &ImageSet) -> Result<()> {
    match image_index.iter().find(|&&i| i < 0 || i >= images.len()) {
        Some(i) => Err(Error::InvalidArgument(format!(
            "image index {i} is outside the image set of {} images",
            images.len()
        ))),
        None => Ok(()),
    }
}
