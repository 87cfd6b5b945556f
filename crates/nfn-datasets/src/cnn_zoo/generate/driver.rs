//! The driver: train this shard's groups and write their parts, skipping parts already there.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::{Device, Kind, Tensor};

use super::config::{GenManifest, ZooDataInfo, ZooGenConfig, ZOO_TRAINER_VERSION};
use super::hyper::{stream_seed, Stream, ZooHyper};
use super::part::{part_path, CheckpointRecord, NetworkRun, Part, PARTS_DIR};
use super::trainer::{DeviceData, GroupTrainer, TrainSettings};
use crate::error::{Error, Result};

/// Progress of [`generate_parts`], reported after every optimizer step and every part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZooProgress {
    /// The group being trained (or skipped).
    pub group: usize,
    /// Networks of this shard finished (trained or found on disk).
    pub networks_done: usize,
    /// Networks of this shard.
    pub networks_total: usize,
    /// Optimizer steps done in this group.
    pub step: usize,
    /// Optimizer steps of this group.
    pub steps_total: usize,
}

/// What [`generate_parts`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct GenReport {
    /// Groups trained and written.
    pub groups_written: Vec<usize>,
    /// Groups already on disk.
    pub groups_skipped: Vec<usize>,
    /// Networks trained.
    pub networks_trained: usize,
    /// Networks among them that diverged (non-finite weights or metrics) before the end.
    pub networks_diverged: usize,
    /// Optimizer steps run (each updates a whole group).
    pub steps: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Average colour images over channels: `[n, c, h, w]` → `[n, 1, h, w]` (the reference's
/// greyscale conversion, after scaling to `[-1, 1]`).
///
/// # Errors
/// [`Error::InvalidArgument`] for a tensor that is not `[n, c, h, w]` floating point.
pub fn greyscale(images: &Tensor) -> Result<Tensor> {
    if images.dim() != 4 || !images.is_floating_point() {
        return Err(Error::InvalidArgument(format!(
            "images must be [n, c, h, w] floating point, got {:?} {:?}",
            images.size(),
            images.kind()
        )));
    }
    Ok(images.f_mean_dim([1].as_slice(), true, Kind::Float)?)
}

fn check_images(what: &str, images: &Tensor, labels: &Tensor) -> Result<(i64, i64, i64)> {
    let size = images.size();
    let ok = size.len() == 4 && size[1] == 1 && size[0] > 0 && size[2] > 0 && size[3] > 0;
    if !ok || images.kind() != Kind::Float {
        return Err(Error::InvalidArgument(format!(
            "{what} images must be greyscale [n, 1, h, w] f32, got {size:?} {:?}",
            images.kind()
        )));
    }
    if labels.size() != [size[0]] || labels.kind() != Kind::Int64 {
        return Err(Error::InvalidArgument(format!(
            "{what} labels must be [{}] i64, got {:?} {:?}",
            size[0],
            labels.size(),
            labels.kind()
        )));
    }
    let (lo, hi) = (labels.f_min()?.int64_value(&[]), labels.f_max()?.int64_value(&[]));
    if lo < 0 || hi > 9 {
        return Err(Error::InvalidArgument(format!(
            "{what} labels must lie in 0..=9, found {lo}..={hi}"
        )));
    }
    Ok((size[0], size[2], size[3]))
}

fn labels_crc(labels: &Tensor) -> Result<u32> {
    let bytes: Vec<u8> =
        Vec::<i64>::try_from(labels.f_to_device(Device::Cpu)?)?.iter().map(|&l| l as u8).collect();
    Ok(crate::framing::crc32(&bytes))
}

/// Train and write the parts of this shard into `out_dir/parts/` (see the module docs), skipping
/// parts already there. `train_*` and `test_*` are greyscale `[n, 1, h, w]` f32 images (in
/// `[-1, 1]`, see [`greyscale`]) and `[n]` i64 labels in `0..10`.
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad config, shard, or images (including a training set too
/// small for one batch at the smallest train fraction); [`Error::Mismatch`] if `out_dir` holds
/// parts of another zoo; LibTorch and I/O errors naming the file.
///
/// On a GPU, reseeds LibTorch's global generator (per group, for the dropout masks drawn there).
#[allow(clippy::too_many_arguments)]
pub fn generate_parts(
    train_images: &Tensor,
    train_labels: &Tensor,
    test_images: &Tensor,
    test_labels: &Tensor,
    cfg: &ZooGenConfig,
    out_dir: &Path,
    shard: Option<(usize, usize)>,
    progress: &mut dyn FnMut(ZooProgress),
) -> Result<GenReport> {
    let start_time = Instant::now();
    cfg.validate()?;
    let (n_train, h, w) = check_images("training", train_images, train_labels)?;
    let (n_test, th, tw) = check_images("test", test_images, test_labels)?;
    if (th, tw) != (h, w) {
        return Err(Error::InvalidArgument(format!("test images are {th}x{tw}, training {h}x{w}")));
    }
    let min_frac = cfg.space.train_fractions.iter().copied().fold(1.0, f64::min);
    if ((n_train as f64 * min_frac) as i64) < cfg.batch_size {
        return Err(Error::InvalidArgument(format!(
            "{n_train} training images give fewer than one batch of {} at train fraction {min_frac}",
            cfg.batch_size
        )));
    }
    let (shard_i, shard_n) = shard.unwrap_or((0, 1));
    if shard_n == 0 || shard_i >= shard_n {
        return Err(Error::InvalidArgument(format!("shard {shard_i} of {shard_n} does not exist")));
    }
    let n_eval = cfg.eval_images.map_or(n_test, |e| (e as i64).min(n_test));
    let device = cfg.device;
    let data = DeviceData {
        train_images: train_images.f_to_device(device)?,
        train_labels: train_labels.f_to_device(device)?,
        test_images: test_images.f_narrow(0, 0, n_eval)?.f_to_device(device)?,
        test_labels: test_labels.f_narrow(0, 0, n_eval)?.f_to_device(device)?,
    };
    let manifest = GenManifest {
        config: ZooGenConfig { device: Device::Cpu, ..cfg.clone() },
        data: ZooDataInfo {
            n_train: n_train as usize,
            n_eval: n_eval as usize,
            height: h,
            width: w,
            train_labels_crc: labels_crc(train_labels)?,
            test_labels_crc: labels_crc(&data.test_labels)?,
        },
        trainer: ZOO_TRAINER_VERSION,
    };
    manifest.create_or_check(out_dir)?;
    let groups: Vec<usize> = (0..cfg.groups()).filter(|g| g % shard_n == shard_i).collect();
    let networks_total = groups.iter().map(|&g| cfg.group_range(g).len()).sum();
    let mut report = GenReport {
        groups_written: Vec::new(),
        groups_skipped: Vec::new(),
        networks_trained: 0,
        networks_diverged: 0,
        steps: 0,
        seconds: 0.0,
    };
    let mut networks_done = 0;
    for g in groups {
        let range = cfg.group_range(g);
        let path = part_path(out_dir, g);
        let mut tick = |step, steps_total, done| {
            progress(ZooProgress {
                group: g,
                networks_done: done,
                networks_total,
                step,
                steps_total,
            })
        };
        if Part::read(&path, g, range.clone()).is_ok() {
            networks_done += range.len();
            tick(0, 0, networks_done);
            report.groups_skipped.push(g);
            continue;
        }
        let (part, steps) =
            train_group(&data, cfg, g, n_train as usize, &mut |s, t| tick(s, t, networks_done))?;
        part.write(&path)?;
        networks_done += range.len();
        report.networks_trained += range.len();
        report.networks_diverged +=
            part.networks.iter().filter(|n| n.diverged_at.is_some()).count();
        report.steps += steps;
        report.groups_written.push(g);
        tick(steps, steps, networks_done);
    }
    report.seconds = start_time.elapsed().as_secs_f64();
    Ok(report)
}

/// Train group `g` and collect its part; returns it and the optimizer steps taken.
fn train_group(
    data: &DeviceData,
    cfg: &ZooGenConfig,
    g: usize,
    n_train: usize,
    tick: &mut dyn FnMut(usize, usize),
) -> Result<(Part, usize)> {
    let range = cfg.group_range(g);
    let hypers: Vec<ZooHyper> = range.clone().map(|i| cfg.space.sample(cfg.seed, i)).collect();
    if cfg.device != Device::Cpu {
        tch::manual_seed(stream_seed(cfg.seed, g, Stream::Dropout) as i64);
    }
    let settings = TrainSettings {
        seed: cfg.seed,
        batch_size: cfg.batch_size,
        steps_cap: cfg.steps_per_epoch,
        train_eval_cap: cfg.train_eval_images,
        eval_batch: cfg.eval_batch,
        device: cfg.device,
    };
    let mut trainer = GroupTrainer::new(&hypers, n_train, settings)?;
    let mut runs: Vec<NetworkRun> = hypers
        .into_iter()
        .map(|hyper| NetworkRun { hyper, diverged_at: None, checkpoints: Vec::new() })
        .collect();
    let mut record = |trainer: &GroupTrainer, epoch: usize| -> Result<()> {
        for (run, c) in runs.iter_mut().zip(trainer.checkpoint(data)?) {
            debug_assert_eq!(run.hyper.index, c.index);
            if run.diverged_at.is_some() {
                continue;
            }
            if !c.finite {
                run.diverged_at = Some(epoch);
                continue;
            }
            run.checkpoints.push(CheckpointRecord {
                epoch,
                test_accuracy: c.test_accuracy,
                test_loss: c.test_loss,
                train_accuracy: c.train_accuracy,
                train_loss: c.train_loss,
                weights: c.weights,
            });
        }
        Ok(())
    };
    if cfg.epochs.first() == Some(&0) {
        record(&trainer, 0)?;
    }
    let per_epoch = trainer.steps_per_epoch();
    let steps_total = per_epoch * cfg.final_epoch();
    let mut done = 0;
    for epoch in 1..=cfg.final_epoch() {
        trainer.begin_epoch();
        for s in 0..per_epoch {
            trainer.step(data, s)?;
            done += 1;
            tick(done, steps_total);
        }
        if cfg.epochs.contains(&epoch) {
            record(&trainer, epoch)?;
        }
    }
    Ok((Part { group: g, first: range.start, networks: runs }, done))
}

/// `out_dir/parts`.
pub fn parts_dir(out_dir: &Path) -> PathBuf {
    out_dir.join(PARTS_DIR)
}
