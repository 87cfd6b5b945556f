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
    /// Random changes of each training SIREN's input coordinates (flips, shifts, rotations,
    /// scalings), folded exactly into its first layer: image augmentation without refitting.
    /// INR classification only; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<InputAugment>,
}

/// Image augmentation in weight space: each training SIREN is replaced by one that draws its
/// image mirrored, moved, rotated and scaled at random, by folding the change of coordinates into
/// its first layer ([`nfn_weightspace::transform_input`]; exact, no rendering or refitting). Drawn
/// anew for every batch, as a pure function of the seed and the step.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputAugment {
    /// Mirror left-right with probability 1/2 (clothes, photos; not digits).
    #[serde(default)]
    pub flip: bool,
    /// Largest shift per axis, in the SIREN's coordinates (`[-1, 1]` spans the image, so 0.1 is
    /// 1.35 pixels of a 28-pixel side).
    #[serde(default)]
    pub shift: f64,
    /// Largest rotation, in degrees either way.
    #[serde(default)]
    pub rotate: f64,
    /// Largest relative change of scale (0.1: zoom by a factor drawn from `[0.9, 1.1]`).
    #[serde(default)]
    pub scale: f64,
}

impl InputAugment {
    /// Refuse negative or out-of-range sizes.
    ///
    /// # Errors
    /// The first invalid field, named.
    pub fn check(&self) -> Result<()> {
        for (name, v, max) in
            [("shift", self.shift, 1.0), ("rotate", self.rotate, 180.0), ("scale", self.scale, 0.9)]
        {
            if !(0.0..=max).contains(&v) {
                bail!("data.augment.{name} must be in [0, {max}], got {v}");
            }
        }
        Ok(())
    }

    /// The coordinate maps of `n` networks, drawn from `rng`: `A` `[n, 2, 2]` and `t` `[n, 2]`
    /// (f32, CPU) such that network `i` is to be evaluated at `A_i x + t_i`. Coordinates are
    /// (row, column), so the mirror negates the column.
    pub fn draw(&self, n: i64, rng: &mut StdRng) -> (Tensor, Tensor) {
        use rand::Rng;
        let mut a = Vec::with_capacity(4 * n as usize);
        let mut t = Vec::with_capacity(2 * n as usize);
        for _ in 0..n {
            let mirror = if self.flip && rng.gen_bool(0.5) { -1.0 } else { 1.0 };
            let angle = self.rotate.to_radians() * rng.gen_range(-1.0..=1.0);
            let zoom = 1.0 + self.scale * rng.gen_range(-1.0..=1.0);
            let (c, s) = (angle.cos() * zoom, angle.sin() * zoom);
            // [[c, -s], [s, c]] · diag(1, mirror)
            a.extend([c, -s * mirror, s, c * mirror].map(|v| v as f32));
            t.extend([0, 1].map(|_| (self.shift * rng.gen_range(-1.0..=1.0)) as f32));
        }
        (Tensor::from_slice(&a).view([n, 2, 2]), Tensor::from_slice(&t).view([n, 2]))
    }

    /// `ws` with each network's coordinates changed by a fresh draw from `rng`.
    ///
    /// # Errors
    /// Features that are not 2-input SIRENs.
    pub fn apply(
        &self,
        ws: &nfn_weightspace::WeightSpaceFeatures,
        rng: &mut StdRng,
    ) -> nfn_weightspace::Result<nfn_weightspace::WeightSpaceFeatures> {
        let (a, t) = self.draw(ws.batch_size(), rng);
        let opts = (ws.kind(), ws.device());
        nfn_weightspace::transform_input(
            ws,
            &a.to_kind(opts.0).to(opts.1),
            &t.to_kind(opts.0).to(opts.1),
        )
    }
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
    augment: Option<InputAugment>,
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
        EpochBatches { split, targets, std, batch_size, seed, device, epoch: None, augment: None }
    }

    /// The same batches, each network's image changed by `augment` (drawn per step from the seed).
    pub fn with_augment(mut self, augment: Option<InputAugment>) -> Self {
        self.augment = augment;
        self
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
        let mut wsfeat = self.split.features(&idx).map_err(nft_model::Error::data)?;
        if let Some(aug) = &self.augment {
            let mut rng = StdRng::seed_from_u64(
                self.seed ^ 0xA076_1D64_78BD_642F ^ step.wrapping_mul(0xE703_7ED1_A0B4_28DB),
            );
            wsfeat = aug.apply(&wsfeat, &mut rng).map_err(nft_model::Error::data)?;
        }
        Ok(Batch {
            inputs: prepare(&wsfeat, self.std).to_device(self.device),
            targets: self.targets.index_select(0, &idx).to_device(self.device),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The draws are maps of the asked size: |det A| = zoom² within the scale range, the mirror's
    /// sign in det A half the time, shifts within bounds; and the same seed draws the same maps.
    #[test]
    fn augment_draws_bounded_maps() {
        let aug = InputAugment { flip: true, shift: 0.1, rotate: 10.0, scale: 0.2 };
        let (a, t) = aug.draw(400, &mut StdRng::seed_from_u64(3));
        assert_eq!((a.size(), t.size()), (vec![400, 2, 2], vec![400, 2]));
        let a64 = a.to_kind(Kind::Double).view([400, 4]);
        let det = a64.select(1, 0) * a64.select(1, 3) - a64.select(1, 1) * a64.select(1, 2);
        let zoom2: Vec<f64> = Vec::try_from(det.abs()).expect("f64");
        assert!(zoom2.iter().all(|z| (0.8 * 0.8 - 1e-5..=1.2 * 1.2 + 1e-5).contains(z)));
        let mirrored = det.lt(0.0).sum(Kind::Int64).int64_value(&[]);
        assert!((150..=250).contains(&mirrored), "{mirrored} of 400 mirrored");
        assert!(t.abs().max().double_value(&[]) <= 0.1 + 1e-7);
        let (a2, t2) = aug.draw(400, &mut StdRng::seed_from_u64(3));
        assert!(a.equal(&a2) && t.equal(&t2));
        // No augmentation asked: the identity.
        let (a, t) = InputAugment::default().draw(3, &mut StdRng::seed_from_u64(0));
        assert!(a.equal(&Tensor::eye(2, (Kind::Float, Device::Cpu)).expand([3, 2, 2], false)));
        assert_eq!(t.abs().sum(Kind::Double).double_value(&[]), 0.0);
    }

    #[test]
    fn augment_sizes_are_checked() {
        assert!(InputAugment { shift: 0.1, ..Default::default() }.check().is_ok());
        for bad in [
            InputAugment { shift: -0.1, ..Default::default() },
            InputAugment { rotate: 200.0, ..Default::default() },
            InputAugment { scale: 1.0, ..Default::default() },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    /// An augmented batch is the plain batch with each network's first layer moved, the rest equal,
    /// and a function of the step alone.
    #[test]
    fn augmented_batches_change_only_the_first_layer() {
        let spec = nfn_weightspace::NetworkSpec::siren(1);
        let ws = nfn_weightspace::siren_init(&spec, 8, 0);

        let zeros = || Tensor::zeros([8], (Kind::Int64, Device::Cpu));
        let split = InrSplit {
            spec,
            params: ws.flatten().squeeze_dim(1),
            labels: zeros(),
            image_index: zeros(),
            copy: zeros(),
            psnr: zeros().to_kind(Kind::Float),
        };
        let labels = split.labels.shallow_clone();
        let aug = InputAugment { flip: true, shift: 0.2, ..Default::default() };
        let mut plain = EpochBatches::new(&split, &labels, None, 4, 1, Device::Cpu);
        let mut moved =
            EpochBatches::new(&split, &labels, None, 4, 1, Device::Cpu).with_augment(Some(aug));
        let (p, m) = (plain.batch(5).expect("batch"), moved.batch(5).expect("batch"));
        assert!(!p.inputs.weight(0).equal(m.inputs.weight(0)));
        assert!(p.inputs.weight(1).equal(m.inputs.weight(1)));
        assert!(p.inputs.bias(2).equal(m.inputs.bias(2)));
        assert!(m.inputs.weight(0).equal(moved.batch(5).expect("batch").inputs.weight(0)));
    }
}
