//! Converting INRs from elsewhere, above all the reference SIREN folders (design.md §6.1), into our
//! sharded INR-set format ([`crate::inr_set`]), which [`crate::loader::InrSet`] reads unchanged.
//!
//! A conversion is planned from a listing ([`InrEntry`]: copy, image index, label, source file);
//! parameters are read only when their shard is written. Image indices may come in any order and
//! with gaps: each INR goes to the split whose range holds its image index, and per split and copy
//! the INRs are sorted by image index and cut into shards of `shard_size`. Extra copies are for
//! training only (design.md §6.1): copy INRs of validation or test images are dropped and counted.
//! The reference's augmented folder `randinit_smaller_aug<k>_<d>s` becomes our copy `k + 1` (copy 0
//! is the base set).
//!
//! Resuming: the manifest is written first; shards are written atomically (temporary file, then
//! rename) and a re-run skips every shard that is already there, decodes, and holds exactly the
//! planned INRs (split, copy, image indices, labels). A re-run on a changed source (another listing)
//! is refused. Converted INRs have no fitting record: PSNR NaN, 0 steps, no `fit` in the manifest.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use nfn_weightspace::{NetworkSpec, Shard};

use crate::error::{Error, Result};
use crate::inr_set::{
    InrSetManifest, InrSource, ShardInfo, ShardRecords, Split, SplitRanges, FORMAT_VERSION,
};
use crate::pth::{list_reference_inrs, read_reference_params, reference_prefix};

/// [`InrSource::format`] of sets converted from reference `.pth` folders.
pub const REFERENCE_PTH_FORMAT: &str = "reference-pth";
/// INRs per shard unless told otherwise.
pub const DEFAULT_SHARD_SIZE: i64 = 1000;

/// What a conversion writes: the data set's name, SIREN spec, image shape, splits, extra copies and
/// shard size.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertOptions {
    /// Name of the image set, stored in the manifest (`"mnist"`, `"fashion-mnist"`, `"cifar10"`).
    pub dataset: String,
    /// The SIREN spec every INR must have.
    pub spec: NetworkSpec,
    /// One image's shape `[c, h, w]`.
    pub image_shape: [i64; 3],
    /// Which image indices go to which split.
    pub splits: SplitRanges,
    /// Extra copies of the training INRs to convert (reference folders `aug0 .. aug{copies-1}`).
    pub copies: u32,
    /// INRs per shard.
    pub shard_size: i64,
}

impl ConvertOptions {
    /// The reference SIREN set of `dataset` (`"mnist"`, `"fashion-mnist"` or `"cifar10"`): SIREN
    /// spec, image shape and Inr2Array splits of design.md §6.1, no copies, [`DEFAULT_SHARD_SIZE`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for another name.
    pub fn reference(dataset: &str) -> Result<Self> {
        let (c, side, splits) = match dataset {
            "mnist" => (1, 28, SplitRanges::mnist()),
            "fashion-mnist" => (1, 28, SplitRanges::fashion_mnist()),
            "cifar10" => (3, 32, SplitRanges::cifar10()),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown data set {other:?} (mnist, fashion-mnist or cifar10)"
                )))
            }
        };
        Ok(ConvertOptions {
            dataset: dataset.into(),
            spec: NetworkSpec::siren(c),
            image_shape: [c, side, side],
            splits,
            copies: 0,
            shard_size: DEFAULT_SHARD_SIZE,
        })
    }
}

/// One INR to convert, listed but not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InrEntry {
    /// Copy id: 0 for the base set, `1..=copies` for extra copies.
    pub copy: u32,
    /// Image index (into the concatenated train + test image set).
    pub image_index: i64,
    /// Class label.
    pub label: i64,
    /// Where its parameters are read from (named in errors).
    pub path: PathBuf,
}

/// A planned conversion: the manifest, the listed INRs and which of them each shard holds.
#[derive(Debug, Clone)]
pub struct ConversionPlan {
    /// The manifest to write (with its `source`).
    pub manifest: InrSetManifest,
    /// The INRs that are converted (dropped copies are not here).
    pub entries: Vec<InrEntry>,
    /// Per shard of the manifest, positions in `entries`, by increasing image index.
    pub members: Vec<Vec<usize>>,
}

/// What [`ConversionPlan::write`] reports to its callback.
#[derive(Debug, Clone, PartialEq)]
pub enum ConvertEvent<'a> {
    /// A shard that was already on disk (from an earlier run) and is skipped.
    Skipped {
        /// The shard.
        shard: &'a ShardInfo,
    },
    /// A shard was read and written.
    Written {
        /// The shard.
        shard: &'a ShardInfo,
        /// Seconds spent reading and writing it.
        seconds: f64,
    },
}

/// The split whose range holds `idx`, if any.
fn split_of(splits: &SplitRanges, idx: i64) -> Option<Split> {
    Split::ALL.into_iter().find(|&s| {
        let [a, b] = splits.range(s);
        (a..b).contains(&idx)
    })
}

impl ConversionPlan {
    /// Plan the conversion of `entries` (any order, gaps allowed) from `source` (`format`, `from`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no base INRs, a copy id above `options.copies`, or a
    /// non-positive shard size; [`Error::Mismatch`] naming the file of a base INR whose image index
    /// is in no split, or of an INR whose copy and image index another file has too.
    pub fn new(
        entries: Vec<InrEntry>,
        options: &ConvertOptions,
        format: &str,
        from: &str,
    ) -> Result<Self> {
        if options.shard_size < 1 {
            return Err(Error::InvalidArgument(format!(
                "shard size {} must be positive",
                options.shard_size
            )));
        }
        if !entries.iter().any(|e| e.copy == 0) {
            return Err(Error::InvalidArgument(format!("no base INRs to convert from {from}")));
        }
        // Group by (copy, split); drop copies of non-training images.
        let mut groups: Vec<Vec<Vec<usize>>> =
            vec![vec![Vec::new(); Split::ALL.len()]; options.copies as usize + 1];
        let mut dropped = 0;
        for (i, e) in entries.iter().enumerate() {
            if e.copy > options.copies {
                return Err(Error::InvalidArgument(format!(
                    "{}: copy {} but only {} extra copies are converted",
                    e.path.display(),
                    e.copy,
                    options.copies
                )));
            }
            match split_of(&options.splits, e.image_index) {
                Some(s) if e.copy == 0 || s == Split::Train => {
                    groups[e.copy as usize][s as usize].push(i)
                }
                Some(_) => dropped += 1,
                None if e.copy > 0 => dropped += 1,
                None => {
                    return Err(Error::mismatch(
                        &e.path,
                        format!(
                            "image index {} is in no split (train {:?}, val {:?}, test {:?})",
                            e.image_index,
                            options.splits.train,
                            options.splits.val,
                            options.splits.test
                        ),
                    ))
                }
            }
        }
        let mut shards = Vec::new();
        let mut members = Vec::new();
        let mut counts = [0i64; 3];
        let mut crc = flate2::Crc::new();
        // Copy-major, then split, as `InrSetManifest::plan` orders its shards.
        for (copy, by_split) in groups.iter_mut().enumerate() {
            for (s, group) in by_split.iter_mut().enumerate() {
                group.sort_by_key(|&i| entries[i].image_index);
                if let Some(w) = group
                    .windows(2)
                    .find(|w| entries[w[0]].image_index == entries[w[1]].image_index)
                {
                    let (a, b) = (&entries[w[0]], &entries[w[1]]);
                    return Err(Error::mismatch(
                        &b.path,
                        format!(
                            "image index {} of copy {copy} appears twice (also {})",
                            b.image_index,
                            a.path.display()
                        ),
                    ));
                }
                counts[s] += group.len() as i64;
                let split = Split::ALL[s];
                for chunk in group.chunks(options.shard_size as usize) {
                    for &i in chunk {
                        let e = &entries[i];
                        crc.update(&e.copy.to_le_bytes());
                        crc.update(&e.image_index.to_le_bytes());
                        crc.update(&e.label.to_le_bytes());
                    }
                    let start = entries[chunk[0]].image_index;
                    shards.push(ShardInfo {
                        file: format!("{}-c{copy:02}-{start:06}.bin", split.name()),
                        split,
                        copy: copy as u32,
                        start,
                        len: chunk.len() as i64,
                        seed: 0,
                    });
                    members.push(chunk.to_vec());
                }
            }
        }
        let manifest = InrSetManifest {
            version: FORMAT_VERSION,
            dataset: options.dataset.clone(),
            spec: options.spec.clone(),
            image_shape: options.image_shape,
            fit: None,
            splits: options.splits,
            copies: options.copies,
            counts,
            shards,
            source: Some(InrSource {
                format: format.into(),
                from: from.into(),
                listing_crc32: crc.sum(),
                dropped_copies: dropped,
            }),
        };
        Ok(ConversionPlan { manifest, entries, members })
    }

    /// Plan the conversion of a reference SIREN folder (design.md §6.1): the base fits
    /// `randinit_smaller_<d>s/net<idx>.pth` as copy 0, and for `k < options.copies` the augmented
    /// fits `randinit_smaller_aug<k>_<d>s/` as copy `k + 1`. No file is opened yet.
    ///
    /// # Errors
    /// [`Error::File`] naming `root` if it cannot be listed, holds no base SIRENs, or lacks an
    /// augmented copy asked for; as [`ConversionPlan::new`].
    pub fn reference(root: &Path, options: &ConvertOptions) -> Result<Self> {
        let mut entries = Vec::new();
        for copy in 0..=options.copies {
            let aug = copy.checked_sub(1);
            let files = list_reference_inrs(root, aug)?;
            if files.is_empty() {
                let prefix = reference_prefix(aug);
                return Err(Error::file(
                    root,
                    format!(
                        "no reference SIRENs for copy {copy}: expected class folders \
                         {prefix}<digit>s/ holding net<idx>.pth files"
                    ),
                ));
            }
            entries.extend(files.into_iter().map(|f| InrEntry {
                copy,
                image_index: f.idx,
                label: f.label,
                path: f.path,
            }));
        }
        Self::new(entries, options, REFERENCE_PTH_FORMAT, &root.display().to_string())
    }

    /// Total INRs to convert (all splits and copies).
    pub fn total(&self) -> i64 {
        self.manifest.counts.iter().sum()
    }

    /// Write the planned set into `dir`, reading each INR's flat parameters (design.md §1.4
    /// order) with `read`, in parallel within a shard. Resumes an earlier run: shards that are
    /// there and hold the planned INRs are skipped.
    ///
    /// # Errors
    /// [`Error::Mismatch`] if `dir` holds a manifest of another plan (the source changed) or `read`
    /// returns the wrong number of parameters (naming the INR's file); `read`'s errors; I/O errors
    /// naming the file.
    ///
    /// `part` selects the shards this process writes ([`Shard::takes`] on the shard's position in
    /// the manifest; [`Shard::ALL`] for all): `n` processes with parts `0/n .. n-1/n` sharing `dir`
    /// together write the same set.
    pub fn write(
        &self,
        dir: &Path,
        part: Shard,
        read: &(dyn Fn(&InrEntry) -> Result<Vec<f32>> + Sync),
        on_event: &mut dyn FnMut(&ConvertEvent),
    ) -> Result<()> {
        self.manifest.create_or_check(dir)?;
        let num_params = self.manifest.spec.num_params();
        for (k, (shard, members)) in self.manifest.shards.iter().zip(&self.members).enumerate() {
            if !part.takes(k) {
                continue;
            }
            let path = dir.join(&shard.file);
            let planned = |r: &ShardRecords| {
                r.split == shard.split
                    && r.copy == shard.copy
                    && r.num_params as i64 == num_params
                    && r.len() == members.len()
                    && members.iter().zip(r.image_index.iter().zip(&r.labels)).all(
                        |(&i, (&idx, &label))| {
                            let e = &self.entries[i];
                            e.image_index == idx && e.label == label
                        },
                    )
            };
            if path.exists() && ShardRecords::read(&path).is_ok_and(|r| planned(&r)) {
                on_event(&ConvertEvent::Skipped { shard });
                continue;
            }
            let start = Instant::now();
            let params: Vec<Vec<f32>> = members
                .par_iter()
                .map(|&i| {
                    let e = &self.entries[i];
                    let p = read(e)?;
                    if p.len() as i64 != num_params {
                        return Err(Error::mismatch(
                            &e.path,
                            format!("{} parameters, the SIREN spec has {num_params}", p.len()),
                        ));
                    }
                    Ok(p)
                })
                .collect::<Result<_>>()?;
            let n = members.len();
            ShardRecords {
                split: shard.split,
                copy: shard.copy,
                num_params: num_params as u32,
                params: params.concat(),
                labels: members.iter().map(|&i| self.entries[i].label).collect(),
                image_index: members.iter().map(|&i| self.entries[i].image_index).collect(),
                psnr: vec![f32::NAN; n],
                steps: vec![0; n],
            }
            .write(&path)?;
            on_event(&ConvertEvent::Written { shard, seconds: start.elapsed().as_secs_f64() });
        }
        Ok(())
    }

    /// Write a plan from [`ConversionPlan::reference`]: every INR is read from its `.pth` file by
    /// [`read_reference_params`] and checked against the manifest's spec.
    ///
    /// # Errors
    /// As [`ConversionPlan::write`]; [`Error::File`] naming a corrupt or truncated `.pth`;
    /// [`Error::Mismatch`] naming a `.pth` whose tensors do not have the spec's shapes.
    pub fn write_reference(
        &self,
        dir: &Path,
        part: Shard,
        on_event: &mut dyn FnMut(&ConvertEvent),
    ) -> Result<()> {
        let spec = &self.manifest.spec;
        self.write(dir, part, &|e: &InrEntry| read_reference_params(&e.path, spec), on_event)
    }
}

/// Convert the reference SIREN folder `root` into an INR set in `dir` (plan, then write;
/// resumable). Returns the manifest.
///
/// # Errors
/// As [`ConversionPlan::reference`] and [`ConversionPlan::write_reference`].
pub fn convert_reference_inrs(
    root: &Path,
    dir: &Path,
    options: &ConvertOptions,
    on_event: &mut dyn FnMut(&ConvertEvent),
) -> Result<InrSetManifest> {
    let plan = ConversionPlan::reference(root, options)?;
    plan.write_reference(dir, Shard::ALL, on_event)?;
    Ok(plan.manifest)
}
