//! The glue between INR data sets and the trainer: loading splits, evaluation batches, and training
//! batches as a pure function of the step.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nfn_datasets::images::CIFAR10_BATCHES;
use nfn_datasets::inr_set::{SplitProtocol, SplitRanges};
use nfn_datasets::{ImageSet, InrSet, InrSplit, Split, Standardization, DEFAULT_FASHION_MNIST_DIR};
use nft_model::{Batch, TrainData};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Where `cargo xtask download fashion-mnist` puts FashionMNIST, read when Debian's folder
/// ([`DEFAULT_FASHION_MNIST_DIR`]) lacks the files.
pub const DOWNLOADED_FASHION_MNIST_DIR: &str = "data/fashion-mnist";

/// The four files of an MNIST-layout folder, each read plain or with `.gz` appended.
const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The image sets INRs are fitted to (and editing targets made from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dataset {
    /// FashionMNIST (IDX files; `cargo xtask setup` installs Debian's package, or
    /// `cargo xtask download fashion-mnist`).
    FashionMnist,
    /// MNIST (IDX files, same layout; `cargo xtask download mnist`).
    Mnist,
    /// CIFAR-10 (`cifar-10-batches-bin`; `cargo xtask download cifar10`).
    Cifar10,
    /// A real subset of CIFAR-10 (the first 1,017 photos of each batch, 6,102 in all; `cargo xtask
    /// download cifar10-subset --from <folder>`), with its own split ([`SplitRanges::cifar10_subset`]).
    Cifar10Subset,
}

impl Dataset {
    /// The data set an INR-set manifest names.
    ///
    /// # Errors
    /// An unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        [Dataset::FashionMnist, Dataset::Mnist, Dataset::Cifar10, Dataset::Cifar10Subset]
            .into_iter()
            .find(|d| d.name() == name)
            .with_context(|| format!("unknown image data set {name:?}"))
    }

    /// The name INR-set manifests record.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Mnist => "mnist",
            Dataset::Cifar10 => "cifar10",
            Dataset::Cifar10Subset => "cifar10-subset",
        }
    }

    /// The folders searched for the image files, in order: for FashionMNIST Debian's
    /// `dataset-fashion-mnist` folder, then [`DOWNLOADED_FASHION_MNIST_DIR`]; for the others
    /// where `cargo xtask download <name>` puts them.
    pub fn default_dirs(self) -> &'static [&'static str] {
        match self {
            Dataset::FashionMnist => &[DEFAULT_FASHION_MNIST_DIR, DOWNLOADED_FASHION_MNIST_DIR],
            Dataset::Mnist => &["data/mnist"],
            Dataset::Cifar10 => &["data/cifar10/cifar-10-batches-bin"],
            Dataset::Cifar10Subset => &["data/cifar10-subset/cifar-10-batches-bin"],
        }
    }

    /// How to get the files into [`Dataset::default_dirs`].
    fn how_to_get(self) -> &'static str {
        match self {
            Dataset::FashionMnist => {
                "`cargo xtask setup` (installs Debian's dataset-fashion-mnist) or \
                 `cargo xtask download fashion-mnist`"
            }
            Dataset::Mnist => "`cargo xtask download mnist`",
            Dataset::Cifar10 => "`cargo xtask download cifar10`",
            Dataset::Cifar10Subset => {
                "`cargo xtask download cifar10-subset --from <folder holding it>`"
            }
        }
    }

    /// Whether `dir` holds every file of the set.
    pub fn has_files(self, dir: &Path) -> bool {
        match self {
            Dataset::FashionMnist | Dataset::Mnist => IDX_FILES
                .iter()
                .all(|f| dir.join(f).is_file() || dir.join(format!("{f}.gz")).is_file()),
            Dataset::Cifar10 | Dataset::Cifar10Subset => {
                CIFAR10_BATCHES.iter().all(|f| dir.join(f).is_file())
            }
        }
    }

    /// The first of [`Dataset::default_dirs`] that holds every file of the set.
    ///
    /// # Errors
    /// None does: the error names each folder searched and how to get the files.
    pub fn default_dir(self) -> Result<PathBuf> {
        let dirs = self.default_dirs();
        dirs.iter().map(PathBuf::from).find(|d| self.has_files(d)).with_context(|| {
            format!(
                "{} not found in {}; get it with {}",
                self.name(),
                dirs.join(" or "),
                self.how_to_get()
            )
        })
    }

    /// The reference protocol's splits by image index.
    pub fn splits(self) -> SplitRanges {
        match self {
            Dataset::FashionMnist => SplitRanges::fashion_mnist(),
            Dataset::Mnist => SplitRanges::mnist(),
            Dataset::Cifar10 => SplitRanges::cifar10(),
            Dataset::Cifar10Subset => SplitRanges::cifar10_subset(),
        }
    }

    /// Load the images from `dir`, naming it in the error.
    pub fn load(self, dir: &Path) -> Result<ImageSet> {
        let set = match self {
            Dataset::FashionMnist => ImageSet::fashion_mnist(dir),
            Dataset::Mnist => ImageSet::mnist(dir),
            Dataset::Cifar10 | Dataset::Cifar10Subset => ImageSet::cifar10(dir),
        };
        set.with_context(|| format!("loading {} from {}", self.name(), dir.display()))
    }
}

/// The original images of the INRs at `image_index` of `set`, read from `dir` (default: the set's
/// data set at its usual place), if the image set can be read.
pub fn original_images(set: &InrSet, image_index: &Tensor, dir: Option<&Path>) -> Option<Tensor> {
    let dataset = Dataset::from_name(&set.manifest.dataset).ok()?;
    let dir = dir.map_or_else(|| dataset.default_dir(), |d| Ok(d.to_path_buf())).ok()?;
    let images = dataset.load(&dir).ok()?;
    let idx: Vec<i64> = Vec::<i64>::try_from(image_index).ok()?;
    Some(images.select(&idx).ok()?.images)
}

/// Which data a run trains on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The INR data set folder written by `nfn fit-inrs` or `nfn convert-inrs`.
    pub inrs: PathBuf,
    /// Training batch size (classify_siren: 32).
    pub batch_size: i64,
    /// Evaluation batch size.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: i64,
    /// Train on the augmentation copies too (classify_siren: yes).
    #[serde(default)]
    pub use_copies: bool,
    /// Standardise every weight position with training-set statistics (design.md §3.5,
    /// `normalize=true`; the reference uses it for the CNN zoo).
    #[serde(default)]
    pub standardize: bool,
    /// Which images form the splits: `fitted` (the set's own, the default), `inr2array` or
    /// `classify` (design.md §6.1: the reference's NFN classification uses `[0,45000) /
    /// [45000,50000) / [50000,N)` on every data set, its Inr2Array FashionMNIST `55000/60000`).
    #[serde(default, skip_serializing_if = "is_fitted")]
    pub split_protocol: SplitProtocol,
    /// More INR sets whose training INRs (with their copies if `use_copies`) join the training
    /// split, e.g. the same images fitted with another recipe (`nfn fit-inrs --recipe reference`),
    /// so that the model learns INRs from more than one fitter. Validation and test stay `inrs`'s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_train: Vec<PathBuf>,
}

fn is_fitted(p: &SplitProtocol) -> bool {
    *p == SplitProtocol::Fitted
}

fn default_eval_batch() -> i64 {
    256
}

/// The three splits of an INR set, loaded, with the standardisation to apply (if configured).
pub struct Splits {
    /// Per-position statistics of the training split, when `standardize` is set.
    pub standardization: Option<Standardization>,
    /// Training INRs (with copies if configured).
    pub train: InrSplit,
    /// Validation INRs.
    pub val: InrSplit,
    /// Test INRs.
    pub test: InrSplit,
}

/// Open an INR set, saying how to make it when it is missing.
///
/// # Errors
/// A missing or unreadable set, named.
pub fn open_set(inrs: &Path) -> Result<InrSet> {
    InrSet::open(inrs).with_context(|| {
        format!("opening the INR set {inrs:?} (make it with `cargo xtask fit-inrs`)")
    })
}

/// `train` (of the set `inrs`) joined by the training INRs of the `extra` sets (`data.extra_train`:
/// e.g. the same images fitted with another recipe), with their copies when `use_copies`.
///
/// # Errors
/// A missing extra set, or one of other SIRENs, named.
pub fn with_extra_train(
    train: InrSplit,
    inrs: &Path,
    extra: &[PathBuf],
    use_copies: bool,
) -> Result<InrSplit> {
    if extra.is_empty() {
        return Ok(train);
    }
    let mut parts = vec![train];
    for path in extra {
        let set = open_set(path)?;
        if set.manifest.spec != parts[0].spec {
            bail!("{path:?}: its SIRENs differ from those of {inrs:?}");
        }
        parts.push(set.load(Split::Train, use_copies)?);
    }
    Ok(InrSplit::concat(&parts)?)
}

/// Load the splits of `cfg.inrs`.
///
/// # Errors
/// A missing or incomplete data set, named with the command that makes it.
pub fn load_splits(cfg: &DataConfig) -> Result<Splits> {
    let set = open_set(&cfg.inrs)?;
    let [train, val, test] = match cfg.split_protocol {
        SplitProtocol::Fitted => [
            set.load(Split::Train, cfg.use_copies)?,
            set.load(Split::Val, false)?,
            set.load(Split::Test, false)?,
        ],
        protocol => {
            let m = &set.manifest;
            let ranges = SplitRanges::protocol(&m.dataset, protocol).with_context(|| {
                format!(
                    "{:?}: no {} split protocol for data set {:?}",
                    cfg.inrs,
                    protocol.name(),
                    m.dataset
                )
            })?;
            let mut out = Vec::new();
            for split in Split::ALL {
                let range = ranges.range(split);
                let inrs = set.load_range(range, cfg.use_copies && split == Split::Train)?;
                if inrs.is_empty() {
                    bail!(
                        "{:?}: under the {} protocol the {} split (images {range:?}) holds no INRs; \
                         the set covers train {:?}, val {:?}, test {:?}",
                        cfg.inrs,
                        protocol.name(),
                        split.name(),
                        m.splits.train,
                        m.splits.val,
                        m.splits.test
                    );
                }
                out.push(inrs);
            }
            let [train, val, test]: [InrSplit; 3] =
                out.try_into().map_err(|_| anyhow::anyhow!("three splits"))?;
            [train, val, test]
        }
    };
    let train = with_extra_train(train, &cfg.inrs, &cfg.extra_train, cfg.use_copies)?;
    let standardization = if cfg.standardize { Some(train.standardization()?) } else { None };
    Ok(Splits { standardization, train, val, test })
}

fn prepare(
    ws: &nfn_weightspace::WeightSpaceFeatures,
    std: Option<&Standardization>,
) -> nfn_weightspace::WeightSpaceFeatures {
    std.map_or_else(|| ws.shallow_clone(), |s| s.apply(ws))
}

/// The first `limit` INRs of `split` (all if `None`) in evaluation batches, in order, with the
/// rows of `targets` (one per INR: `split.labels`, or edited images), standardised if `std` is
/// given, on `device`.
///
/// # Errors
/// A shard that cannot be decoded, named.
pub fn eval_batches(
    split: &InrSplit,
    targets: &Tensor,
    limit: Option<i64>,
    batch_size: i64,
    std: Option<&Standardization>,
    device: Device,
) -> Result<Vec<Batch>> {
    let n = limit.map_or(split.len(), |l| l.min(split.len()));
    (0..n)
        .step_by(batch_size as usize)
        .map(|start| {
            let end = (start + batch_size).min(n);
            let idx = Tensor::arange_start(start, end, (Kind::Int64, Device::Cpu));
            Ok(Batch {
                inputs: prepare(&split.features(&idx)?, std).to_device(device),
                targets: targets.index_select(0, &idx).to_device(device),
            })
        })
        .collect()
}

/// Training batches as a pure function of the step: epoch `e` visits the split in the order of a
/// permutation seeded with `(seed, e)`, dropping the last partial batch.
pub struct EpochBatches<'a> {
    split: &'a InrSplit,
    targets: &'a Tensor,
    std: Option<&'a Standardization>,
    batch_size: i64,
    seed: u64,
    device: Device,
    epoch: Option<(u64, Vec<i64>)>,
}

impl<'a> EpochBatches<'a> {
    /// Batches of `split` with the rows of `targets` (one per INR), standardised if `std` is given.
    pub fn new(
        split: &'a InrSplit,
        targets: &'a Tensor,
        std: Option<&'a Standardization>,
        batch_size: i64,
        seed: u64,
        device: Device,
    ) -> Self {
        EpochBatches { split, targets, std, batch_size, seed, device, epoch: None }
    }

    /// Full batches per epoch.
    pub fn per_epoch(&self) -> u64 {
        (self.split.len() / self.batch_size).max(1) as u64
    }

    /// The rows of the split that training step `step` draws (`nfn export-inrs` writes them, so
    /// that another program trains on the same batches in the same order).
    pub fn indices(&mut self, step: u64) -> &[i64] {
        let per_epoch = self.per_epoch();
        let (epoch, pos) = (step / per_epoch, step % per_epoch);
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut order: Vec<i64> = (0..self.split.len()).collect();
            order.shuffle(&mut StdRng::seed_from_u64(
                self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ));
            self.epoch = Some((epoch, order));
        }
        let order = &self.epoch.as_ref().expect("set above").1;
        let b = self.batch_size.min(self.split.len()) as usize;
        let start = pos as usize * b;
        &order[start..start + b]
    }
}

impl TrainData for EpochBatches<'_> {
    fn batch(&mut self, step: u64) -> nft_model::Result<Batch> {
        let idx = Tensor::from_slice(self.indices(step));
        let wsfeat = self.split.features(&idx).map_err(nft_model::Error::data)?;
        Ok(Batch {
            inputs: prepare(&wsfeat, self.std).to_device(self.device),
            targets: self.targets.index_select(0, &idx).to_device(self.device),
        })
    }
}
