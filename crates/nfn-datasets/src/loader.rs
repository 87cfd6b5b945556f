//! Reading INR data sets written by [`crate::inr_set`]: whole splits in memory, seeded shuffled
//! batches of weight-space features, and the per-position standardisation statistics
//! (design.md §3.5).
//!
//! Shards are read and decoded in parallel with rayon (plain Rust); every tch call stays on the
//! caller's thread.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use tch::{Kind, Tensor};

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};

use crate::error::{Error, Result};
use crate::inr_set::{features_from_flat, InrSetManifest, ShardInfo, ShardRecords, Split};

/// Positions whose training-set std is below this are divided by 1 instead (design.md §3.5).
pub const MIN_STD: f64 = 1e-5;

/// An INR data set on disk: its folder and manifest.
#[derive(Debug, Clone)]
pub struct InrSet {
    dir: PathBuf,
    /// The data set's manifest.
    pub manifest: InrSetManifest,
}

/// One split of an INR data set in memory.
#[derive(Debug)]
pub struct InrSplit {
    /// The SIREN spec.
    pub spec: NetworkSpec,
    /// Flat parameters `[n, num_params]` f32 (design.md §1.4 order).
    pub params: Tensor,
    /// Class labels `[n]` i64.
    pub labels: Tensor,
    /// Image index of each INR `[n]` i64.
    pub image_index: Tensor,
    /// Copy id of each INR `[n]` i64 (0 = base fit).
    pub copy: Tensor,
    /// Final fitting PSNR (dB) of each INR `[n]` f32; NaN for converted INRs (fitting unknown).
    pub psnr: Tensor,
}

impl InrSet {
    /// Open the data set in `dir` (reads the manifest only).
    ///
    /// # Errors
    /// As [`InrSetManifest::read`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let manifest = InrSetManifest::read(&dir)?;
        Ok(InrSet { dir, manifest })
    }

    /// The data set's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The INRs whose image index lies in `range` `[start, end)`, from every shard of the set
    /// whatever split it was fitted for; `with_copies` adds the extra copies of those images (only
    /// training images have them). This re-splits a set under another [`SplitProtocol`](crate::inr_set::SplitProtocol).
    ///
    /// # Errors
    /// As [`InrSet::load`].
    pub fn load_range(&self, range: [i64; 2], with_copies: bool) -> Result<InrSplit> {
        let wanted: Vec<&ShardInfo> =
            self.manifest.shards.iter().filter(|s| with_copies || s.copy == 0).collect();
        let all = self.read_shards(&wanted)?;
        let keep = |i: i64| (range[0]..range[1]).contains(&i);
        let num_params = self.manifest.spec.num_params() as usize;
        let mut picked = Vec::new();
        for r in all {
            let mut out = ShardRecords {
                split: r.split,
                copy: r.copy,
                num_params: r.num_params,
                params: Vec::new(),
                labels: Vec::new(),
                image_index: Vec::new(),
                psnr: Vec::new(),
                steps: Vec::new(),
            };
            for (k, &idx) in r.image_index.iter().enumerate() {
                if keep(idx) {
                    out.params.extend_from_slice(&r.params[k * num_params..(k + 1) * num_params]);
                    out.labels.push(r.labels[k]);
                    out.image_index.push(idx);
                    out.psnr.push(r.psnr[k]);
                    out.steps.push(r.steps[k]);
                }
            }
            if !out.is_empty() {
                picked.push(out);
            }
        }
        self.assemble(picked)
    }

    /// Load `split` into memory; `with_copies` adds the extra copies (training split only).
    ///
    /// # Errors
    /// [`Error::File`] naming a shard that is missing (the set is incomplete), truncated or corrupt;
    /// [`Error::Mismatch`] if a shard disagrees with the manifest.
    pub fn load(&self, split: Split, with_copies: bool) -> Result<InrSplit> {
        let shards: Vec<_> = self
            .manifest
            .shards
            .iter()
            .filter(|s| s.split == split && (with_copies || s.copy == 0))
            .collect();
        let decoded = self.read_shards(&shards)?;
        self.assemble(decoded)
    }

    /// Read and check `shards`, in parallel.
    fn read_shards(&self, shards: &[&ShardInfo]) -> Result<Vec<ShardRecords>> {
        let num_params = self.manifest.spec.num_params();
        shards
            .par_iter()
            .map(|info| {
                let path = self.dir.join(&info.file);
                if !path.exists() {
                    return Err(Error::file(
                        &path,
                        "missing shard: the INR set is incomplete (resume writing it)",
                    ));
                }
                let records = ShardRecords::read(&path)?;
                let ok = records.len() as i64 == info.len
                    && records.split == info.split
                    && records.copy == info.copy
                    && records.num_params as i64 == num_params
                    && records.image_index.first() == Some(&info.start);
                if ok {
                    Ok(records)
                } else {
                    Err(Error::mismatch(&path, "shard contents disagree with the manifest"))
                }
            })
            .collect::<Result<_>>()
    }

    /// One split in memory from decoded records, in order.
    fn assemble(&self, decoded: Vec<ShardRecords>) -> Result<InrSplit> {
        let num_params = self.manifest.spec.num_params();
        let n: usize = decoded.iter().map(ShardRecords::len).sum();
        let mut params = Vec::with_capacity(n * num_params as usize);
        let (mut labels, mut index, mut copy, mut psnr) = (vec![], vec![], vec![], vec![]);
        for r in decoded {
            params.extend_from_slice(&r.params);
            labels.extend_from_slice(&r.labels);
            index.extend_from_slice(&r.image_index);
            copy.extend(std::iter::repeat_n(r.copy as i64, r.len()));
            psnr.extend_from_slice(&r.psnr);
        }
        Ok(InrSplit {
            spec: self.manifest.spec.clone(),
            params: Tensor::f_from_slice(&params)?.f_reshape([n as i64, num_params])?,
            labels: Tensor::from_slice(&labels),
            image_index: Tensor::from_slice(&index),
            copy: Tensor::from_slice(&copy),
            psnr: Tensor::from_slice(&psnr),
        })
    }
}

impl InrSplit {
    /// The INRs of `parts` one after another (they must share a spec).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no parts or parts of different specs.
    pub fn concat(parts: &[InrSplit]) -> Result<InrSplit> {
        let first =
            parts.first().ok_or_else(|| Error::InvalidArgument("no INRs to join".into()))?;
        if parts.iter().any(|p| p.spec != first.spec) {
            return Err(Error::InvalidArgument("INR splits of different SIREN specs".into()));
        }
        let cat = |f: fn(&InrSplit) -> &Tensor| {
            Tensor::cat(&parts.iter().map(|p| f(p).shallow_clone()).collect::<Vec<_>>(), 0)
        };
        Ok(InrSplit {
            spec: first.spec.clone(),
            params: cat(|p| &p.params),
            labels: cat(|p| &p.labels),
            image_index: cat(|p| &p.image_index),
            copy: cat(|p| &p.copy),
            psnr: cat(|p| &p.psnr),
        })
    }

    /// Number of INRs.
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Raw weight-space features `[b, 1, ...]` of the INRs at `indices` (i64 `[b]`).
    ///
    /// # Errors
    /// [`Error::Tch`] for an index out of range.
    pub fn features(&self, indices: &Tensor) -> Result<WeightSpaceFeatures> {
        features_from_flat(&self.params.f_index_select(0, indices)?, &self.spec)
    }

    /// All INRs as raw weight-space features `[n, 1, ...]`.
    ///
    /// # Errors
    /// As [`features_from_flat`].
    pub fn all_features(&self) -> Result<WeightSpaceFeatures> {
        features_from_flat(&self.params, &self.spec)
    }

    /// Batches of `(features [b, 1, ...], labels [b])`, shuffled with `seed` (`None`: in order);
    /// `drop_last` drops a final partial batch.
    ///
    /// # Panics
    /// If `batch_size < 1`.
    pub fn batches(&self, batch_size: i64, seed: Option<u64>, drop_last: bool) -> Batches<'_> {
        assert!(batch_size >= 1, "batch size must be positive");
        let mut order: Vec<i64> = (0..self.len()).collect();
        if let Some(seed) = seed {
            order.shuffle(&mut StdRng::seed_from_u64(seed));
        }
        Batches { split: self, order, batch_size, drop_last, pos: 0 }
    }

    /// Per-position mean and population std of the parameters over this split (use the training
    /// split), std below [`MIN_STD`] replaced by 1 (design.md §3.5).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty split.
    pub fn standardization(&self) -> Result<Standardization> {
        if self.is_empty() {
            return Err(Error::InvalidArgument("standardisation of an empty split".into()));
        }
        let params = self.params.f_to_kind(Kind::Double)?;
        let mean = params.f_mean_dim(0, true, Kind::Double)?; // [1, P]
        let std = params.f_std_correction(0, 0, true)?;
        let std = std.f_where_scalarother(&std.f_ge(MIN_STD)?, 1.0)?;
        Ok(Standardization {
            mean: features_from_flat(&mean.f_to_kind(Kind::Float)?, &self.spec)?,
            std: features_from_flat(&std.f_to_kind(Kind::Float)?, &self.spec)?,
        })
    }
}

/// Iterator over batches of an [`InrSplit`] (see [`InrSplit::batches`]).
#[derive(Debug)]
pub struct Batches<'a> {
    split: &'a InrSplit,
    order: Vec<i64>,
    batch_size: i64,
    drop_last: bool,
    pos: usize,
}

impl Iterator for Batches<'_> {
    type Item = (WeightSpaceFeatures, Tensor);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.order.len() - self.pos;
        let take = rest.min(self.batch_size as usize);
        if take == 0 || (self.drop_last && take < self.batch_size as usize) {
            return None;
        }
        let idx = Tensor::from_slice(&self.order[self.pos..self.pos + take]);
        self.pos += take;
        let wsfeat = self.split.features(&idx).expect("batch indices come from 0..len");
        Some((wsfeat, self.split.labels.index_select(0, &idx)))
    }
}

/// Per-position standardisation statistics, each `[1, 1, ...]` features of the SIREN spec.
#[derive(Debug)]
pub struct Standardization {
    /// Mean per weight and bias position.
    pub mean: WeightSpaceFeatures,
    /// Population std per position (1 where below [`MIN_STD`]).
    pub std: WeightSpaceFeatures,
}

impl Standardization {
    /// `(x - mean) / std`, broadcast over the batch.
    pub fn apply(&self, wsfeat: &WeightSpaceFeatures) -> WeightSpaceFeatures {
        wsfeat.zip_map(&self.mean, |x, m| x - m).zip_map(&self.std, |x, s| x / s)
    }
}
