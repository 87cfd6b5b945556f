//! `nfn make-zoo --dataset fashion-mnist --networks N --out data/zoo/<name>`: train a zoo of the
//! Small CNN Zoo architecture with the published hyperparameter distributions, many networks at
//! once, and write it in the Small CNN Zoo format (`weights.npy`, `metrics.csv.gz`, `layout.csv`)
//! with its split file, so the zoo loader and `task = "cnn_generalization"` read it as they read
//! the downloaded zoos. Resumable (finished groups are kept); `--shard i/n` makes one machine's part
//! of a zoo in a shared folder, and the last shard (or `--merge-only`) writes the files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nfn_datasets::cnn_zoo::generate::{
    generate_parts, greyscale, merge_parts, ZooGenConfig, ZooProgress,
};
use nfn_weightspace::Shard;
use tch::{Kind, Tensor};

use crate::data::Dataset;
use crate::driver::{device, progress_bar};

/// The image sets a zoo can be trained on (greyscale, as the Small CNN Zoo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ZooDataset {
    /// FashionMNIST, 28 x 28.
    FashionMnist,
    /// MNIST, 28 x 28.
    Mnist,
    /// CIFAR-10 in greyscale (the zoo's CIFAR-10-GS), 32 x 32.
    Cifar10Gs,
    /// SVHN's cropped digits in greyscale (the zoo's SVHN-GS), 32 x 32: `train_32x32.mat` and
    /// `test_32x32.mat` (`cargo xtask download svhn`, into `data/svhn`).
    SvhnGs,
}

/// Where `cargo xtask download svhn` puts SVHN.
const SVHN_DIR: &str = "data/svhn";

impl ZooDataset {
    /// The images (train then test), from `data_dir` or the data set's usual place.
    fn load(self, data_dir: Option<&Path>) -> Result<nfn_datasets::ImageSet> {
        let dataset = match self {
            ZooDataset::FashionMnist => Dataset::FashionMnist,
            ZooDataset::Mnist => Dataset::Mnist,
            ZooDataset::Cifar10Gs => Dataset::Cifar10,
            ZooDataset::SvhnGs => {
                let dir = data_dir.map_or_else(|| PathBuf::from(SVHN_DIR), Path::to_path_buf);
                return nfn_datasets::ImageSet::svhn(&dir).with_context(|| {
                    format!("SVHN in {} (get it with `cargo xtask download svhn`)", dir.display())
                });
            }
        };
        let dir = match data_dir {
            Some(dir) => dir.to_path_buf(),
            None => dataset.default_dir()?,
        };
        dataset.load(&dir)
    }

    fn name(self) -> &'static str {
        match self {
            ZooDataset::FashionMnist => "fashion_mnist",
            ZooDataset::Mnist => "mnist",
            ZooDataset::Cifar10Gs => "cifar10",
            ZooDataset::SvhnGs => "svhn_cropped",
        }
    }
}

/// Options of `make-zoo`.
#[derive(clap::Args)]
pub struct Args {
    /// The images the CNNs learn.
    #[arg(long, value_enum, default_value = "fashion-mnist")]
    pub dataset: ZooDataset,
    /// Folder of the image files (default: the data set's usual place).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Number of networks.
    #[arg(long, default_value_t = 1000)]
    pub networks: usize,
    /// The zoo folder (default `data/zoo/<dataset>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Zoo seed (with a network's index it fixes its hyperparameters, weights and data order).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Networks trained together as one batched computation (one part file each).
    #[arg(long, default_value_t = ZooGenConfig::default().group)]
    pub group: usize,
    /// Checkpoint epochs, increasing; the last is the final one (the zoo's: 0,1,2,3,20,40,60,80,86).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,4")]
    pub epochs: Vec<usize>,
    /// Cap on optimizer steps per epoch (default: one pass over each network's training subset).
    #[arg(long)]
    pub steps_per_epoch: Option<usize>,
    /// Test images evaluated at each checkpoint (default: all).
    #[arg(long)]
    pub eval_images: Option<usize>,
    /// Training images evaluated per network at each checkpoint (the first of its subset; default
    /// 10 000).
    #[arg(long)]
    pub train_eval_images: Option<usize>,
    /// Make only groups `g` with `g % n == i` (`i/n`), for N machines sharing the output folder.
    #[arg(long, value_parser = crate::driver::parse_shard)]
    pub shard: Option<Shard>,
    /// Only merge the parts already made (after all shards have finished).
    #[arg(long)]
    pub merge_only: bool,
}

/// Make (or resume) the zoo, then merge it when every part is there.
pub fn run(args: &Args) -> Result<()> {
    let out =
        args.out.clone().unwrap_or_else(|| PathBuf::from("data/zoo").join(args.dataset.name()));
    if args.merge_only {
        return merge(&out);
    }
    let set = args.dataset.load(args.data_dir.as_deref())?;
    let n_train = set.n_train;
    let n = set.labels.size()[0];
    let grey = greyscale(&set.images)?;
    let (train_x, test_x) = (grey.narrow(0, 0, n_train), grey.narrow(0, n_train, n - n_train));
    let (train_y, test_y) =
        (set.labels.narrow(0, 0, n_train), set.labels.narrow(0, n_train, n - n_train));
    let cfg = ZooGenConfig {
        dataset: args.dataset.name().into(),
        networks: args.networks,
        seed: args.seed,
        group: args.group,
        epochs: args.epochs.clone(),
        steps_per_epoch: args.steps_per_epoch,
        eval_images: args.eval_images,
        device: device(),
        ..ZooGenConfig::default()
    };
    let cfg =
        ZooGenConfig { train_eval_images: args.train_eval_images.or(cfg.train_eval_images), ..cfg };
    cfg.validate()?;
    let shard = args.shard.map_or(String::new(), |s| format!(", shard {s}"));
    crate::note!(
        "nfn: making a zoo of {} CNNs (3 conv 3x3/2 x 16, GAP, dense 10; 4970 params) on {} \
         {}x{} greyscale images ({} train, {} test), {} at once, checkpoints at epochs {:?}{}{shard}, \
         on {}, into {}",
        cfg.networks,
        args.dataset.name(),
        train_x.size()[2],
        train_x.size()[3],
        n_train,
        n - n_train,
        cfg.group,
        cfg.epochs,
        cfg.steps_per_epoch.map_or(String::new(), |s| format!(" (at most {s} steps each)")),
        crate::driver::device_name(cfg.device),
        out.display()
    );
    let bar = progress_bar("make-zoo", cfg.networks as u64);
    let started = std::time::Instant::now();
    let mut done = 0;
    let mut on_progress = |p: ZooProgress| {
        bar.set_length(p.networks_total as u64);
        bar.set_position(p.networks_done as u64);
        bar.set_message(format!("group {}: step {}/{}", p.group, p.step, p.steps_total));
        if p.networks_done > done {
            // one line per finished group, also when stderr is not a terminal (logs, clusters)
            done = p.networks_done;
            let secs = started.elapsed().as_secs_f64();
            bar.suspend(|| {
                crate::note!(
                    "nfn: group {} done: {done}/{} networks, {secs:.0} s",
                    p.group,
                    p.networks_total
                )
            });
        }
    };
    let report = generate_parts(
        &train_x.to_kind(Kind::Float),
        &train_y,
        &test_x.to_kind(Kind::Float),
        &test_y,
        &cfg,
        &out,
        args.shard.map(|s| (s.index, s.count)),
        &mut on_progress,
    )?;
    bar.finish();
    crate::note!(
        "nfn: trained {} networks in {} groups ({} groups already there), {} diverged, {:.1} s \
         ({:.2} CNNs/s)",
        report.networks_trained,
        report.groups_written.len(),
        report.groups_skipped.len(),
        report.networks_diverged,
        report.seconds,
        report.networks_trained as f64 / report.seconds.max(1e-9)
    );
    match merge(&out) {
        Ok(()) => Ok(()),
        Err(e) if args.shard.is_some() => {
            crate::note!(
                "nfn: not merged yet ({e:#}); run with --merge-only once every shard is done"
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Merge the parts of the zoo in `out` and report the spread of final accuracies.
pub fn merge(out: &Path) -> Result<()> {
    let report = merge_parts(out).with_context(|| format!("merging the zoo in {out:?}"))?;
    crate::note!("nfn: {report:?}");
    let png = out.join("accuracy.png");
    let line = accuracy_histogram(out, &png)?;
    if !crate::driver::quiet() {
        println!("make-zoo: {line}");
    }
    Ok(())
}

/// Draw the histogram of the final-epoch test accuracies of the zoo in `dir` (a generated zoo, or
/// a downloaded one) into `png`; a one-line summary of the spread.
///
/// # Errors
/// Unreadable metrics, an unwritable PNG, named.
pub fn accuracy_histogram(dir: &Path, png: &Path) -> Result<String> {
    let metrics = nfn_datasets::cnn_zoo::read_metrics(dir.join("metrics.csv.gz"))?;
    let last = metrics.step.iter().copied().max().unwrap_or(0);
    let finals: Vec<f64> = metrics
        .step
        .iter()
        .zip(&metrics.test_accuracy)
        .filter(|(s, _)| **s == last)
        .map(|(_, &a)| f64::from(a))
        .collect();
    if finals.is_empty() {
        bail!("{:?}: no networks in metrics.csv.gz", dir.join("metrics.csv.gz"));
    }
    let name = dir.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let title = format!("{name}: {} CNNs, epoch {last}", finals.len());
    crate::plot::histogram(&title, "test accuracy", &finals, 40)
        .save(png)
        .with_context(|| format!("writing {png:?}"))?;
    let acc = Tensor::from_slice(&finals);
    Ok(format!(
        "{} networks at the final epoch in {}: test accuracy mean {:.3}, min {:.3}, median {:.3}, \
         max {:.3}; histogram {}",
        finals.len(),
        dir.display(),
        acc.mean(Kind::Double).double_value(&[]),
        acc.min().double_value(&[]),
        acc.median().double_value(&[]),
        acc.max().double_value(&[]),
        png.display()
    ))
}
