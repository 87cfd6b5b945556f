//! The data of a `cargo xtask reproduce` plan: which steps make an INR set (download and convert
//! the reference SIRENs, or download the images and fit), a CNN zoo (download, or `nfn make-zoo`)
//! and an editing config's images, and with how many augmentation copies an INR set is made.

use std::path::Path;

use anyhow::{bail, Result};

use super::config::{norm, Config, PRETRAIN_TASK};
use super::plan::PlanEnv;
use super::step::Step;
use crate::commands::demo::DEMO_LIMIT;
use crate::commands::download::dataset;
use crate::commands::setup::{FASHION_MNIST_DIR, FASHION_MNIST_DOWNLOAD_DIR};

/// Where INR sets go.
const INRS_DIR: &str = "data/inrs";
/// Augmentation copies of the Inr2Array experiments (design.md §6.1: `extra_aug = 10`).
const INR2ARRAY_COPIES: u32 = 10;
/// The generated zoo of the `zoo_fmnist2k_*` configs.
const FMNIST_2K_ZOO: &str = "data/zoo/fashion-mnist-2k";
/// The `nfn make-zoo` options that made [`FMNIST_2K_ZOO`], as those configs' headers record them.
const FMNIST_2K_ZOO_ARGS: [&str; 13] = [
    "make-zoo",
    "--dataset",
    "fashion-mnist",
    "--networks",
    "2000",
    "--epochs",
    "0,1,2,4",
    "--steps-per-epoch",
    "100",
    "--eval-images",
    "2000",
    "--train-eval-images",
    "500",
];
/// The downloadable Small CNN Zoo sets (`cargo xtask download` names).
const ZOO_DOWNLOADS: [&str; 4] =
    ["cnn-zoo-cifar10", "cnn-zoo-svhn", "cnn-zoo-mnist", "cnn-zoo-fashion-mnist"];
/// The reference's zoo split files (`data/cnn_zoo/splits/`).
const ZOO_SPLITS: &str = "cnn-zoo-splits";

/// The image sets INR sets are made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Images {
    /// MNIST.
    Mnist,
    /// FashionMNIST.
    FashionMnist,
    /// CIFAR-10.
    Cifar10,
    /// The real CIFAR-10 subset (`cifar10-subset`, a local copy only).
    Cifar10Subset,
}

impl Images {
    /// Every image set (the subset before CIFAR-10, whose name is a prefix of its).
    const ALL: [Images; 4] =
        [Images::Mnist, Images::FashionMnist, Images::Cifar10Subset, Images::Cifar10];

    /// The name of `nfn --dataset`, `cargo xtask download` and INR set folders.
    fn name(self) -> &'static str {
        match self {
            Images::Mnist => "mnist",
            Images::FashionMnist => "fashion-mnist",
            Images::Cifar10 => "cifar10",
            Images::Cifar10Subset => "cifar10-subset",
        }
    }

    /// The name in prose.
    fn title(self) -> &'static str {
        match self {
            Images::Mnist => "MNIST",
            Images::FashionMnist => "FashionMNIST",
            Images::Cifar10 => "CIFAR-10",
            Images::Cifar10Subset => "CIFAR-10 subset",
        }
    }

    /// The `cargo xtask download` name of the reference SIRENs.
    fn siren(self) -> &'static str {
        match self {
            Images::Mnist => "siren-mnist",
            Images::FashionMnist => "siren-fashion",
            // the reference's SIRENs cover the full set; a `-reference` subset is refused
            Images::Cifar10 | Images::Cifar10Subset => "siren-cifar",
        }
    }

    /// The folder `nfn` reads the images from by default, after Debian's for FashionMNIST.
    fn download_dir(self) -> &'static str {
        match self {
            Images::Mnist => "data/mnist",
            Images::FashionMnist => FASHION_MNIST_DOWNLOAD_DIR,
            Images::Cifar10 => "data/cifar10/cifar-10-batches-bin",
            Images::Cifar10Subset => "data/cifar10-subset/cifar-10-batches-bin",
        }
    }

    /// Augmentation copies of NFN classification (design.md §6.1: 10 for MNIST and FashionMNIST,
    /// 20 for CIFAR-10).
    fn classify_copies(self) -> u32 {
        match self {
            Images::Mnist | Images::FashionMnist => 10,
            Images::Cifar10 | Images::Cifar10Subset => 20,
        }
    }
}

/// The augmentation copies `cfg` asks of its INR set of `images`: none without
/// `use_copies`, else design.md §6.1's count for its task.
fn copies_wanted(cfg: &Config, images: Images) -> u32 {
    match (cfg.view.data.use_copies, cfg.view.task.as_deref()) {
        (false, _) => 0,
        (true, Some(PRETRAIN_TASK)) => INR2ARRAY_COPIES,
        (true, _) => images.classify_copies(),
    }
}

/// The error for a data path the plan cannot make.
fn unknown(what: &str, path: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "the plan does not know how to make the {what} {path:?} (it knows \
         {INRS_DIR}/<mnist|fashion-mnist|cifar10>[-reference|-demo|-<n>k][-ref][-aug<k>], \
         data/cnn_zoo/<downloaded zoo>, {FMNIST_2K_ZOO}, data/cnn_zoo/splits/*); \
         teach it in xtask/src/commands/reproduce/data.rs"
    )
}

/// How an INR set is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Converted from the reference SIRENs (`<ds>-reference`).
    Reference,
    /// Fitted here, to the first `limit` training images (`None`: all of them).
    Fit {
        /// `--limit` of `fit-inrs`.
        limit: Option<i64>,
    },
}

/// An INR set path, understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InrSetName {
    /// The images its SIRENs encode.
    images: Images,
    /// How it is made.
    source: Source,
    /// The augmentation copies an `-aug<k>` name fixes.
    aug: Option<u32>,
    /// Fitted with the reference's recipe (a `-ref` name: `fit-inrs --recipe reference`).
    reference_recipe: bool,
}

/// Read `data/inrs/<ds>[-reference|-demo|-<n>k][-ref][-aug<k>]`.
fn parse_inr_set(path: &str) -> Option<InrSetName> {
    let name = path.strip_prefix(INRS_DIR)?.strip_prefix('/')?;
    let (name, aug) = match name.rsplit_once("-aug") {
        Some((base, k)) => (base, Some(k.parse::<u32>().ok().filter(|&k| k > 0)?)),
        None => (name, None),
    };
    let (name, reference_recipe) = match name.strip_suffix("-ref") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let images = Images::ALL.into_iter().find(|i| {
        name.strip_prefix(i.name()).is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
    })?;
    let source = match &name[images.name().len()..] {
        "" => Source::Fit { limit: None },
        "-reference" => Source::Reference,
        "-demo" => Source::Fit { limit: Some(DEMO_LIMIT) },
        rest => {
            let thousands = rest.strip_prefix('-')?.strip_suffix('k')?.parse::<i64>().ok()?;
            Source::Fit { limit: Some(thousands.checked_mul(1000).filter(|&n| n > 0)?) }
        }
    };
    if reference_recipe && source == Source::Reference {
        return None; // converted sets are not fitted here
    }
    if images == Images::Cifar10Subset && source == Source::Reference {
        return None; // the reference's SIRENs are of the full set
    }
    Some(InrSetName { images, source, aug, reference_recipe })
}

/// The augmentation copies the set at `path` is made with: those an `-aug<k>` name fixes (configs
/// reading it with `use_copies` then read its k copies, whatever their protocol's count: the name
/// is how a budget asks for fewer), else those the configs reading it with `use_copies` ask for
/// (none if none does), on which they must agree, since they share the set.
fn set_copies(path: &str, set: &InrSetName, cfg: &Config, configs: &[Config]) -> Result<u32> {
    if let Some(k) = set.aug {
        return Ok(k);
    }
    let wanted: Vec<(u32, &Path)> = configs
        .iter()
        .chain(std::iter::once(cfg))
        .filter(|c| c.inrs() == Some(path))
        .map(|c| (copies_wanted(c, set.images), c.path.as_path()))
        .filter(|&(k, _)| k > 0)
        .collect();
    let (copies, why) = match wanted.first() {
        Some(&(k, first)) => (k, format!("{first:?} reads it with use_copies")),
        None => (0, String::new()),
    };
    if let Some((k, other)) = wanted.iter().find(|&&(k, _)| k != copies) {
        bail!(
            "{path:?} is made with {copies} augmentation copies ({why}), but {other:?} reads it \
             with use_copies and wants {k} (design.md §6.1); give one of them a set of its own, \
             e.g. {path}-aug{k}"
        );
    }
    Ok(copies)
}

/// ` (K augmentation copies ...)`, or nothing for none; says so when `cfg` itself does not read
/// them (the set is shared with configs that do).
fn copies_note(copies: u32, cfg: &Config, images: Images) -> String {
    match (copies, copies_wanted(cfg, images)) {
        (0, _) => String::new(),
        (k, 0) => format!(
            " ({k} augmentation copies of the training images, which {} does not read but the \
             configs sharing the set do)",
            cfg.view.name
        ),
        (k, _) => format!(" ({k} augmentation copies of the training images)"),
    }
}

/// The steps that make the INR set at `path`.
pub fn inr_set_steps(
    path: &str,
    cfg: &Config,
    configs: &[Config],
    env: &PlanEnv,
) -> Result<Vec<Step>> {
    let set = parse_inr_set(path).ok_or_else(|| unknown("INR set", path))?;
    let copies = set_copies(path, &set, cfg, configs)?;
    let images = set.images;
    let ds = images.name();
    let copies_arg = copies.to_string();
    let mut steps = Vec::new();
    match set.source {
        Source::Reference => {
            let siren = dataset(images.siren())?;
            let from = format!("data/{}/{}", siren.subdir, siren.ready);
            steps.push(Step::xtask(
                format!(
                    "the reference {} SIRENs into {from} (a manual download; without it the \
                     command says how)",
                    images.title()
                ),
                &["download", siren.name],
            ));
            let mut argv = vec!["convert-inrs", "--from", &from, "--dataset", ds];
            if copies > 0 {
                argv.extend(["--copies", &copies_arg]);
            }
            let default_out = format!("{INRS_DIR}/{ds}-reference");
            if path != default_out {
                argv.extend(["--out", path]);
            }
            steps.push(Step::xtask(
                format!("convert them into the INR set {path}{}", copies_note(copies, cfg, images)),
                &argv,
            ));
        }
        Source::Fit { limit } => {
            steps.extend(image_steps(images, env));
            let limit_arg = limit.map(|n| n.to_string());
            let mut argv = vec!["fit-inrs", "--dataset", ds];
            if let Some(limit) = &limit_arg {
                argv.extend(["--limit", limit]);
            }
            if copies > 0 {
                argv.extend(["--copies", &copies_arg]);
            }
            if set.reference_recipe {
                argv.extend(["--recipe", "reference"]);
            }
            argv.extend(["--out", path]);
            let which = match limit {
                Some(n) => format!("the first {n} training images of {}", images.title()),
                None => format!("every {} image", images.title()),
            };
            let which = if set.reference_recipe {
                format!("{which} with the reference's recipe")
            } else {
                which
            };
            steps.push(Step::xtask(
                format!(
                    "fit SIRENs to {which} into the INR set {path}{}",
                    copies_note(copies, cfg, images)
                ),
                &argv,
            ));
        }
    }
    Ok(steps)
}

/// The download of `images`, unless `nfn` already finds them (FashionMNIST in Debian's folder).
fn image_steps(images: Images, env: &PlanEnv) -> Vec<Step> {
    if images == Images::FashionMnist && env.fashion_mnist_installed {
        return Vec::new();
    }
    let what = format!("the {} images into {}", images.title(), images.download_dir());
    vec![Step::xtask(what, &["download", images.name()])]
}

/// The images an editing config's targets are made from: its `images` folder when one of the
/// folders the downloads fill (or Debian's FashionMNIST), else those of its INR set `inrs`.
pub fn edit_image_steps(inrs: &str, dir: Option<&str>, env: &PlanEnv) -> Result<Vec<Step>> {
    let images = parse_inr_set(inrs).ok_or_else(|| unknown("INR set", inrs))?.images;
    let Some(dir) = dir.map(norm) else {
        return Ok(image_steps(images, env));
    };
    if dir == FASHION_MNIST_DIR {
        // `cargo xtask setup` installs it (every `nfn` step runs the set-up first).
        return Ok(Vec::new());
    }
    match Images::ALL.into_iter().find(|i| i.download_dir() == dir) {
        Some(found) => {
            let what = format!("the {} images into {dir}", found.title());
            Ok(vec![Step::xtask(what, &["download", found.name()])])
        }
        None => Err(unknown("images folder", dir)),
    }
}

/// The steps that make the zoo at `path` and its split file.
pub fn zoo_steps(path: &str, split: Option<&str>, env: &PlanEnv) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    if path == FMNIST_2K_ZOO {
        steps.extend(image_steps(Images::FashionMnist, env));
        let mut argv = FMNIST_2K_ZOO_ARGS.to_vec();
        argv.extend(["--out", path]);
        steps.push(Step::nfn(
            format!("train 2000 small FashionMNIST CNNs into the zoo {path} (resumable)"),
            &argv,
        ));
    } else {
        let mut found = None;
        for name in ZOO_DOWNLOADS {
            let set = dataset(name)?;
            let folder = Path::new("data").join(set.subdir).join(set.ready);
            if folder.parent() == Some(Path::new(path)) {
                found = Some(set);
            }
        }
        let set = found.ok_or_else(|| unknown("CNN zoo", path))?;
        steps.push(Step::xtask(format!("the Small CNN Zoo {path}"), &["download", set.name]));
        steps.push(zoo_splits_step()?);
    }
    match split {
        None => {}
        Some(split) if split == format!("{path}/split.csv") => {}
        Some(split) => {
            let dir = Path::new("data").join(dataset(ZOO_SPLITS)?.subdir);
            if Path::new(split).parent() != Some(dir.as_path()) {
                return Err(unknown("zoo split file", split));
            }
            steps.push(zoo_splits_step()?);
        }
    }
    Ok(steps)
}

/// The download of the reference's zoo split files.
fn zoo_splits_step() -> Result<Step> {
    let set = dataset(ZOO_SPLITS)?;
    let what = format!("the reference's zoo split files into data/{}", set.subdir);
    Ok(Step::xtask(what, &["download", set.name]))
}
