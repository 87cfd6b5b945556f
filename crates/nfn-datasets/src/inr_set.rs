//! Our sharded INR data-set format: a folder with `manifest.json` and bincode shards.
//!
//! The manifest plans every shard up front (split, copy, image range, file name); a shard holds the
//! fitted SIRENs of one chunk of images. Shards are written atomically (temporary file, then
//! rename), so a folder holds only finished shards, and [`write_inr_set`] resumes by skipping them.
//! Each shard file is `MAGIC`, the payload length (u64 LE), its CRC-32 (u32 LE), then the bincode
//! payload, so truncated and corrupt shards are detected and named.
//!
//! Splits follow design.md §6.1: contiguous index ranges of the image set; extra copies (SIRENs
//! fitted from other random initialisations) exist for training images only.
//!
//! Sets converted from elsewhere ([`crate::convert`], e.g. the reference `.pth` folders) use the same
//! files. Their manifest has a `source` and no `fit`; their shards hold increasing but not
//! necessarily contiguous image indices (see [`ShardInfo`]), and no fitting PSNR (NaN).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use nfn_weightspace::{NetworkSpec, Shard, WeightSpaceFeatures};

use crate::error::{Error, Result};
use crate::images::ImageSet;
use crate::siren_fit::{fit_sirens, FitProgress, SirenFitConfig};

/// Version of the manifest and shard layout written by this code.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name inside a data-set folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The first bytes of every shard file.
pub const SHARD_MAGIC: &[u8; 8] = b"NFNINRS1";

/// A data-set split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training images (the only split with extra copies).
    Train,
    /// Validation images.
    Val,
    /// Test images.
    Test,
}

impl Split {
    /// All splits, in index order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// `"train"`, `"val"` or `"test"`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// Image index ranges `[start, end)` of the three splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRanges {
    /// Training images.
    pub train: [i64; 2],
    /// Validation images.
    pub val: [i64; 2],
    /// Test images.
    pub test: [i64; 2],
}

impl SplitRanges {
    /// FashionMNIST's Inr2Array splits (design.md §6.1): `[0,55000) / [55000,60000) / [60000,70000)`.
    pub fn fashion_mnist() -> Self {
        SplitRanges { train: [0, 55_000], val: [55_000, 60_000], test: [60_000, 70_000] }
    }

    /// MNIST's splits: `[0,45000) / [45000,50000) / [50000,70000)`.
    pub fn mnist() -> Self {
        SplitRanges { train: [0, 45_000], val: [45_000, 50_000], test: [50_000, 70_000] }
    }

    /// CIFAR-10's splits: `[0,45000) / [45000,50000) / [50000,60000)`.
    pub fn cifar10() -> Self {
        SplitRanges { train: [0, 45_000], val: [45_000, 50_000], test: [50_000, 60_000] }
    }

    /// The named split of the real CIFAR-10 subset (`cargo xtask download cifar10-subset`: the
    /// first 1,017 photos of each official batch): training from the five training batches less
    /// their last 508 photos (about a tenth), which validate, and the test batch's 1,017 photos:
    /// `[0,4577) / [4577,5085) / [5085,6102)`. Results on it are labelled "subset".
    pub fn cifar10_subset() -> Self {
        SplitRanges { train: [0, 4577], val: [4577, 5085], test: [5085, 6102] }
    }

    /// The splits `protocol` prescribes for the image set `dataset` (`"mnist"`, `"fashion-mnist"`,
    /// `"cifar10"`), design.md §6.1: the Inr2Array protocol is [`SplitRanges::fashion_mnist`],
    /// [`SplitRanges::mnist`] and [`SplitRanges::cifar10`]; the NFN classification protocol
    /// (`classify_siren`) is `[0,45000) / [45000,50000) / [50000,N)` on all three, `N` = 70 000
    /// (MNIST, FashionMNIST) or 60 000 (CIFAR-10). `None` for [`SplitProtocol::Fitted`] or an
    /// unknown data set.
    pub fn protocol(dataset: &str, protocol: SplitProtocol) -> Option<Self> {
        let n = match dataset {
            "mnist" | "fashion-mnist" => 70_000,
            "cifar10" => 60_000,
            // the subset has one named split, whatever the protocol
            "cifar10-subset" if protocol != SplitProtocol::Fitted => {
                return Some(Self::cifar10_subset())
            }
            _ => return None,
        };
        match protocol {
            SplitProtocol::Fitted => None,
            SplitProtocol::Inr2Array => Some(match dataset {
                "fashion-mnist" => Self::fashion_mnist(),
                "mnist" => Self::mnist(),
                _ => Self::cifar10(),
            }),
            SplitProtocol::Classify => {
                Some(SplitRanges { train: [0, 45_000], val: [45_000, 50_000], test: [50_000, n] })
            }
        }
    }

    /// The named protocol these ranges are for `dataset`, if any (a set fitted with `--limit`
    /// follows none).
    pub fn protocol_of(&self, dataset: &str) -> Option<SplitProtocol> {
        [SplitProtocol::Inr2Array, SplitProtocol::Classify]
            .into_iter()
            .find(|&p| Self::protocol(dataset, p) == Some(*self))
    }

    /// The range of `split`.
    pub fn range(&self, split: Split) -> [i64; 2] {
        match split {
            Split::Train => self.train,
            Split::Val => self.val,
            Split::Test => self.test,
        }
    }

    /// The first `n_train` training images and the same fraction (rounded, at least 1 if the split
    /// is not empty) of the leading validation and test images: a small data set with the full
    /// one's proportions.
    pub fn limited(&self, n_train: i64) -> Self {
        let full = (self.train[1] - self.train[0]).max(1);
        let n_train = n_train.clamp(0, full);
        let take = |[a, b]: [i64; 2]| {
            let n = ((b - a) as f64 * n_train as f64 / full as f64).round() as i64;
            [a, a + n.clamp((b > a && n_train > 0) as i64, b - a)]
        };
        SplitRanges {
            train: [self.train[0], self.train[0] + n_train],
            val: take(self.val),
            test: take(self.test),
        }
    }
}

/// Which images form the training, validation and test splits (design.md §6.1): the reference
/// splits by image index, differently for Inr2Array and for NFN classification on FashionMNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitProtocol {
    /// The splits the set was fitted or converted with (its manifest's `splits`).
    #[default]
    Fitted,
    /// The Inr2Array protocol (FashionMNIST `[0,55000) / [55000,60000) / [60000,70000)`).
    Inr2Array,
    /// The NFN classification protocol (`[0,45000) / [45000,50000) / [50000,N)`).
    Classify,
}

impl SplitProtocol {
    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            SplitProtocol::Fitted => "fitted",
            SplitProtocol::Inr2Array => "inr2array",
            SplitProtocol::Classify => "classify",
        }
    }
}

/// One planned shard: the SIRENs of images `[start, start + len)` of one split and copy.
///
/// In a converted set (the manifest has a [`InrSetManifest::source`]) a shard holds `len` INRs of
/// increasing image indices starting at `start`, with gaps where the source has no INR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// File name inside the data-set folder.
    pub file: String,
    /// The split.
    pub split: Split,
    /// Copy id: 0 for the base fits, `1..=copies` for extra random initialisations.
    pub copy: u32,
    /// First image index.
    pub start: i64,
    /// Number of images.
    pub len: i64,
    /// Seed of this shard's SIREN initialisation (0 in a converted set).
    pub seed: u64,
}

/// The manifest of an INR data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InrSetManifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub version: u32,
    /// Name of the image set (`"fashion-mnist"`).
    pub dataset: String,
    /// The SIREN spec.
    pub spec: NetworkSpec,
    /// One image's shape `[c, h, w]`.
    pub image_shape: [i64; 3],
    /// How the SIRENs were fitted (`seed` is the base seed; shards have their own); `None` for a
    /// set converted from elsewhere (see `source`), where the fitting is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<SirenFitConfig>,
    /// Image index ranges of the splits.
    pub splits: SplitRanges,
    /// Extra copies of each training image.
    pub copies: u32,
    /// INRs per split, copies included: `[train, val, test]`.
    pub counts: [i64; 3],
    /// Every shard, in writing order.
    pub shards: Vec<ShardInfo>,
    /// Where a converted set's INRs came from; `None` for sets fitted by [`write_inr_set`] (and
    /// absent from manifests written before the field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<InrSource>,
}

/// The origin of a converted INR set (see [`crate::convert`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InrSource {
    /// The source format, e.g. [`crate::convert::REFERENCE_PTH_FORMAT`].
    pub format: String,
    /// The folder or file the INRs were read from, as given (informational: a resumed conversion
    /// may name it differently).
    pub from: String,
    /// CRC-32 of the listing (copy, image index, label of every INR, in shard order): a resumed
    /// conversion refuses a source that changed.
    pub listing_crc32: u32,
    /// Extra-copy INRs left out because their image is not a training image (design.md §6.1: copies
    /// are for training only).
    pub dropped_copies: i64,
}

/// What to write: the image set's name and splits, the number of extra copies and the fit config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InrSetOptions {
    /// Name of the image set, stored in the manifest.
    pub dataset: String,
    /// Which images go where.
    pub splits: SplitRanges,
    /// Extra fits of every training image from other random initialisations.
    pub copies: u32,
    /// SIREN fitting; `fit.chunk` images per shard.
    pub fit: SirenFitConfig,
}

/// A seed for shard (`copy`, `start`) from the base seed (SplitMix64 finaliser).
fn shard_seed(base: u64, copy: u32, start: i64) -> u64 {
    let mut z = base ^ ((copy as u64) << 40) ^ (start as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl InrSetManifest {
    /// The manifest planned for `options` on images of shape `image_shape`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad fit config or an empty or reversed range.
    pub fn plan(options: &InrSetOptions, image_shape: [i64; 3]) -> Result<Self> {
        options.fit.validate()?;
        let chunk = options.fit.chunk;
        let mut shards = Vec::new();
        let mut counts = [0; 3];
        for copy in 0..=options.copies {
            for (s, split) in Split::ALL.into_iter().enumerate() {
                let [a, b] = options.splits.range(split);
                if a < 0 || b < a {
                    return Err(Error::InvalidArgument(format!(
                        "bad {} range [{a}, {b})",
                        split.name()
                    )));
                }
                if copy > 0 && split != Split::Train {
                    continue;
                }
                counts[s] += b - a;
                for start in (a..b).step_by(chunk as usize) {
                    shards.push(ShardInfo {
                        file: format!("{}-c{copy:02}-{start:06}.bin", split.name()),
                        split,
                        copy,
                        start,
                        len: chunk.min(b - start),
                        seed: shard_seed(options.fit.seed, copy, start),
                    });
                }
            }
        }
        Ok(InrSetManifest {
            version: FORMAT_VERSION,
            dataset: options.dataset.clone(),
            spec: NetworkSpec::siren(image_shape[0]),
            image_shape,
            fit: Some(options.fit.clone()),
            splits: options.splits,
            copies: options.copies,
            counts,
            shards,
            source: None,
        })
    }

    /// Read `dir/manifest.json`.
    ///
    /// # Errors
    /// [`Error::File`] naming the manifest if it is missing, not valid JSON, or another version.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::file(&path, format!("cannot read the INR set manifest: {e}")))?;
        let manifest: Self = serde_json::from_str(&text)
            .map_err(|e| Error::file(&path, format!("not a valid INR set manifest: {e}")))?;
        if manifest.version != FORMAT_VERSION {
            return Err(Error::file(
                &path,
                format!(
                    "format version {} unsupported, expected {FORMAT_VERSION}",
                    manifest.version
                ),
            ));
        }
        Ok(manifest)
    }

    /// Write `dir/manifest.json` atomically.
    ///
    /// # Errors
    /// [`Error::WeightSpace`] naming the file if it cannot be written.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("a manifest serialises to JSON");
        nfn_weightspace::io::write_atomically(&dir.join(MANIFEST_FILE), |out| {
            out.write_all(json.as_bytes()).map_err(|e| e.to_string())
        })?;
        Ok(())
    }

    /// Which of the planned shards in `dir` are missing or unreadable (not the planned split, copy
    /// and size, or failing their checksum). An empty list means the set is complete; the
    /// manifest is written before any shard, so this is how a folder filled by several
    /// processes ([`write_inr_set_part`]) is known to be done.
    pub fn missing_shards(&self, dir: &Path) -> Vec<(&ShardInfo, String)> {
        self.shards
            .iter()
            .filter_map(|info| {
                let path = dir.join(&info.file);
                if !path.exists() {
                    return Some((info, "not written yet".to_string()));
                }
                match ShardRecords::read(&path) {
                    Err(e) => Some((info, e.to_string())),
                    Ok(r) if r.split != info.split || r.copy != info.copy => {
                        Some((info, "holds another split or copy".to_string()))
                    }
                    Ok(r) if r.len() as i64 != info.len => {
                        Some((info, format!("holds {} INRs, the plan has {}", r.len(), info.len)))
                    }
                    Ok(_) => None,
                }
            })
            .collect()
    }

    /// Check that every planned shard of the set in `dir` is there and readable.
    ///
    /// # Errors
    /// [`Error::File`] naming the folder, the number of missing shards and the first of them.
    pub fn check_complete(&self, dir: &Path) -> Result<()> {
        let missing = self.missing_shards(dir);
        if let Some((first, why)) = missing.first() {
            return Err(Error::file(
                dir,
                format!(
                    "{} of {} shards missing or unreadable, first {} ({why}); \
                     run the missing parts again (finished shards are kept)",
                    missing.len(),
                    self.shards.len(),
                    first.file
                ),
            ));
        }
        Ok(())
    }

    /// Whether this fitted set is `old` with more augmentation copies: the same images, splits and
    /// fitting, and `old`'s shards (seeded by copy and start only) a prefix of this plan's.
    fn extends_copies_of(&self, old: &Self) -> bool {
        let same_but_copies = Self {
            copies: self.copies,
            counts: self.counts,
            shards: self.shards.clone(),
            ..old.clone()
        };
        self.source.is_none()
            && old.copies < self.copies
            && same_but_copies == *self
            && self.shards.starts_with(&old.shards)
    }

    /// Start or resume writing this set into `dir`: create the folder and write the manifest, or,
    /// if one is there, check that it is this one. The source's `from` is not compared, as a
    /// re-run may name the same folder by another path. A fitted set asked for with more
    /// augmentation copies than it was started with grows: its shards are kept (a copy's shards
    /// do not depend on how many copies there are) and the larger manifest replaces the old one.
    ///
    /// # Errors
    /// [`Error::Mismatch`] naming `dir/manifest.json` if it describes another set (fewer copies
    /// than it holds included); I/O errors naming the folder or the file.
    pub fn create_or_check(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
        if !dir.join(MANIFEST_FILE).exists() {
            return self.write(dir);
        }
        let mut old = Self::read(dir)?;
        if let (Some(o), Some(n)) = (&mut old.source, &self.source) {
            o.from.clone_from(&n.from);
        }
        if self.extends_copies_of(&old) {
            return self.write(dir);
        }
        if old.extends_copies_of(self) {
            return Err(Error::mismatch(
                dir.join(MANIFEST_FILE),
                format!(
                    "the folder holds this INR set with {} augmentation copies, {} asked; \
                     ask for {} (or more) to resume it",
                    old.copies, self.copies, old.copies
                ),
            ));
        }
        if old != *self {
            return Err(Error::mismatch(
                dir.join(MANIFEST_FILE),
                "the folder holds another INR set (other options or a changed source); \
                 use another folder or delete it",
            ));
        }
        Ok(())
    }
}

/// The records of one shard: per INR its flat parameters (design.md §1.4 order: `W0, b0, W1, ...`),
/// label, image index, final PSNR and steps. Converted INRs, whose fitting is unknown, have PSNR
/// NaN and 0 steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecords {
    /// The split of every record.
    pub split: Split,
    /// The copy id of every record.
    pub copy: u32,
    /// Parameters per INR.
    pub num_params: u32,
    /// `[n * num_params]` f32, INR-major.
    pub params: Vec<f32>,
    /// Class label per INR.
    pub labels: Vec<i64>,
    /// Image index per INR.
    pub image_index: Vec<i64>,
    /// Final PSNR (dB) per INR; NaN where unknown (converted sets).
    pub psnr: Vec<f32>,
    /// Adam steps per INR; 0 where unknown (converted sets).
    pub steps: Vec<u32>,
}

impl ShardRecords {
    /// Number of INRs.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the shard is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Encode with the shard framing (magic, length, CRC-32, bincode payload).
    pub fn encode(&self) -> Vec<u8> {
        crate::framing::frame(SHARD_MAGIC, self)
    }

    /// Decode a shard's bytes; `path` names it in errors.
    ///
    /// # Errors
    /// [`Error::File`] for a wrong magic, a truncated file, a CRC mismatch, an undecodable payload,
    /// inconsistent record counts or a weight that is NaN or infinite.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let records: Self = crate::framing::unframe(bytes, SHARD_MAGIC, "an INR shard", path)?;
        let bad = |m: String| Error::file(path, m);
        let n = records.labels.len();
        let consistent = records.params.len() == n * records.num_params as usize
            && records.image_index.len() == n
            && records.psnr.len() == n
            && records.steps.len() == n;
        if !consistent {
            return Err(bad("inconsistent record counts".into()));
        }
        // a fit that diverged, or a damaged writer: refuse here rather than train on NaN
        let per_inr = (records.num_params as usize).max(1);
        if let Some(at) = records.params.iter().position(|w| !w.is_finite()) {
            let k = at / per_inr;
            return Err(bad(format!(
                "INR {k} (image {}) has a NaN or infinite weight",
                records.image_index.get(k).copied().unwrap_or(-1)
            )));
        }
        Ok(records)
    }

    /// Read and decode a shard file.
    ///
    /// # Errors
    /// As [`ShardRecords::decode`], plus [`Error::File`] if it cannot be read.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::file(path, format!("cannot read shard: {e}")))?;
        Self::decode(&bytes, path)
    }

    /// Encode and write the shard to `path` atomically (temporary file, then rename).
    ///
    /// # Errors
    /// [`Error::WeightSpace`] naming the file if it cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = self.encode();
        nfn_weightspace::io::write_atomically(path, |out| {
            out.write_all(&bytes).map_err(|e| e.to_string())
        })?;
        Ok(())
    }
}

/// What [`write_inr_set`] reports to its callback.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteEvent<'a> {
    /// A shard that was already on disk (from an earlier run) and is skipped.
    Skipped {
        /// The shard.
        shard: &'a ShardInfo,
    },
    /// A fitting step in the current shard.
    Step {
        /// The shard.
        shard: &'a ShardInfo,
        /// The fitting progress.
        progress: FitProgress,
    },
    /// A shard was fitted and written.
    Written {
        /// The shard.
        shard: &'a ShardInfo,
        /// Mean final PSNR of its INRs (dB).
        mean_psnr: f64,
        /// Minimum final PSNR (dB).
        min_psnr: f64,
        /// Seconds spent fitting and writing it.
        seconds: f64,
    },
}

fn shard_exists_and_valid(path: &Path, info: &ShardInfo) -> bool {
    ShardRecords::read(path).is_ok_and(|r| r.len() as i64 == info.len && r.copy == info.copy)
}

/// Fit and write the INR data set planned by `options` into `dir`, resuming an earlier run: shards
/// that are already there and decode are skipped. Returns the manifest.
///
/// # Errors
/// [`Error::Mismatch`] if `dir` holds a manifest for other options or images; [`Error::InvalidArgument`]
/// if the splits exceed the image set; fitting and I/O errors naming the file.
pub fn write_inr_set(
    dir: &Path,
    images: &ImageSet,
    options: &InrSetOptions,
    on_event: &mut dyn FnMut(&WriteEvent),
) -> Result<InrSetManifest> {
    write_inr_set_part(dir, images, options, Shard::ALL, Device::Cpu, on_event)
}

/// [`write_inr_set`] for one part of the set, fitting on `device`: only the manifest's shards `k`
/// that `shard` takes ([`Shard::takes`]). Every part writes the same planned manifest (atomically),
/// so `n` processes, on one machine or many sharing the folder, each run with their own
/// `Shard::new(i, n)` and together write the set a single process writes;
/// [`InrSetManifest::check_complete`] then tells whether every shard is there.
///
/// # Errors
/// As [`write_inr_set`].
pub fn write_inr_set_part(
    dir: &Path,
    images: &ImageSet,
    options: &InrSetOptions,
    shard: Shard,
    device: Device,
    on_event: &mut dyn FnMut(&WriteEvent),
) -> Result<InrSetManifest> {
    let manifest = InrSetManifest::plan(options, images.image_shape())?;
    for split in Split::ALL {
        if manifest.splits.range(split)[1] > images.len() {
            return Err(Error::InvalidArgument(format!(
                "{} range {:?} exceeds the {} images",
                split.name(),
                manifest.splits.range(split),
                images.len()
            )));
        }
    }
    manifest.create_or_check(dir)?;
    for (k, info) in manifest.shards.iter().enumerate() {
        if !shard.takes(k) {
            continue;
        }
        let path = dir.join(&info.file);
        if shard_exists_and_valid(&path, info) {
            on_event(&WriteEvent::Skipped { shard: info });
            continue;
        }
        let start = Instant::now();
        let records = fit_shard(images, &manifest, &options.fit, info, device, on_event)?;
        records.write(&path)?;
        let mean_psnr = records.psnr.iter().map(|&p| p as f64).sum::<f64>() / records.len() as f64;
        let min_psnr = records.psnr.iter().map(|&p| p as f64).fold(f64::INFINITY, f64::min);
        on_event(&WriteEvent::Written {
            shard: info,
            mean_psnr,
            min_psnr,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    Ok(manifest)
}

fn fit_shard(
    images: &ImageSet,
    manifest: &InrSetManifest,
    fit: &SirenFitConfig,
    shard: &ShardInfo,
    device: Device,
    on_event: &mut dyn FnMut(&WriteEvent),
) -> Result<ShardRecords> {
    let chunk = images.images.f_narrow(0, shard.start, shard.len)?.f_to_device(device)?;
    let labels = Vec::<i64>::try_from(images.labels.f_narrow(0, shard.start, shard.len)?)?;
    let cfg = SirenFitConfig { seed: shard.seed, ..fit.clone() };
    let mut cb =
        |progress: &FitProgress| on_event(&WriteEvent::Step { shard, progress: *progress });
    let fit = fit_sirens(&chunk, &cfg, Some(&mut cb))?;
    let flat = fit.wsfeat.flatten().f_reshape([-1])?.f_to_device(Device::Cpu)?; // [n * num_params]
    Ok(ShardRecords {
        split: shard.split,
        copy: shard.copy,
        num_params: manifest.spec.num_params() as u32,
        params: Vec::<f32>::try_from(&flat)?,
        labels,
        image_index: (shard.start..shard.start + shard.len).collect(),
        psnr: fit.psnr.iter().map(|&p| p as f32).collect(),
        steps: fit.steps.iter().map(|&s| s as u32).collect(),
    })
}

/// Flat parameters `[n, num_params]` as raw weight-space features `[n, 1, ...]` of `spec`.
///
/// # Errors
/// [`Error::WeightSpace`] if the sizes do not match `spec`.
pub fn features_from_flat(flat: &Tensor, spec: &NetworkSpec) -> Result<WeightSpaceFeatures> {
    Ok(WeightSpaceFeatures::unflatten(&flat.f_unsqueeze(1)?, spec)?)
}

/// The path of a shard inside `dir`.
pub fn shard_path(dir: &Path, shard: &ShardInfo) -> PathBuf {
    dir.join(&shard.file)
}
