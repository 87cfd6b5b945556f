//! Inr2Array experiments: `nfn train` dispatches configs with `task = "inr2array_pretrain"` or
//! `task = "inr2array_classify"` here; `nfn show <run>` draws a pretraining run's reconstructions.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use inr2array::{
    extract_latents, latent_batches, read_latents, ClassifyConfig, Inr2ArrayAutoencoder,
    LatentBatches, LatentClassification, PaperMetric, PretrainConfig, TransformerClassifier,
};
use nfn_datasets::{ImageSet, InrSet, InrSplit, Split, DEFAULT_FASHION_MNIST_DIR};
use nfn_weightspace::WeightSpaceFeatures;
use nft_model::{load_model, train, Batch, EvalSplits, Progress, RunDir, TrainSummary};
use serde::Serialize;
use tch::{nn::VarStore, Device, Kind, Tensor};

use super::train::hardware;
use crate::experiment::EpochBatches;

/// The model name in the results tables.
const MODEL_NAME: &str = "Inr2Array (NFT)";

/// Write the resolved config into the run folder, refusing to mix two configs in one folder.
fn claim_run_folder<T>(
    cfg: &T,
    run: &RunDir,
    read: impl Fn(&Path) -> inr2array::Result<T>,
) -> Result<()>
where
    T: Serialize + PartialEq,
{
    let path = run.path().join("config.toml");
    if path.exists() && read(&path).map_or(true, |old| &old != cfg) {
        bail!(
            "{} holds a run of a different config; remove the folder or rename the experiment",
            run.path().display()
        );
    }
    std::fs::write(&path, toml::to_string_pretty(cfg)?).with_context(|| format!("writing {path:?}"))
}

fn open_set(inrs: &Path) -> Result<InrSet> {
    InrSet::open(inrs).with_context(|| {
        format!("opening the INR set {inrs:?} (make it with `cargo xtask fit-inrs`)")
    })
}

/// The first `limit` INRs of `split` (all if `None`) in evaluation batches on `device`.
fn feature_batches(
    split: &InrSplit,
    limit: Option<i64>,
    batch_size: i64,
    device: Device,
) -> Result<Vec<Batch>> {
    let n = limit.map_or(split.len(), |l| l.min(split.len()));
    (0..n)
        .step_by(batch_size as usize)
        .map(|start| {
            let idx = Tensor::arange_start(
                start,
                (start + batch_size).min(n),
                (Kind::Int64, Device::Cpu),
            );
            Ok(Batch {
                inputs: split.features(&idx)?.to_device(device),
                targets: split.labels.index_select(0, &idx).to_device(device),
            })
        })
        .collect()
}

fn progress_bar(name: &str, steps: u64) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed} < {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

fn param_count(vs: &VarStore) -> i64 {
    vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
}

/// The fields `cargo xtask tables` reads (the same as `nfn train` writes).
struct SummaryRecord<'a> {
    name: &'a str,
    task: &'a str,
    inrs: &'a Path,
    metric_name: &'a str,
    test_metric: f64,
    paper: Option<&'a PaperMetric>,
    counts: [i64; 3],
    batch_size: i64,
    params: i64,
    summary: &'a TrainSummary,
}

fn write_summary(run: &RunDir, r: &SummaryRecord<'_>) -> Result<()> {
    let record = serde_json::json!({
        "experiment": r.name, "task": r.task, "model": MODEL_NAME,
        "dataset": r.inrs.file_name().map(|n| n.to_string_lossy().into_owned()),
        "metric_name": r.metric_name, "test_metric": r.test_metric,
        "paper_metric": r.paper.map(|p| p.metric), "paper_source": r.paper.map(|p| p.source.clone()),
        "train_networks": r.counts[0], "val_networks": r.counts[1], "test_networks": r.counts[2],
        "steps": r.summary.steps, "batch_size": r.batch_size, "params": r.params,
        "train_seconds": r.summary.train_seconds, "best": r.summary.best, "hardware": hardware(),
        "finished": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    let path = run.path().join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("writing {path:?}"))
}

/// Build the autoencoder of a pretraining config for the spec of `set`.
fn build_autoencoder(
    cfg: &PretrainConfig,
    set: &InrSet,
    vs: &VarStore,
) -> Result<Inr2ArrayAutoencoder> {
    let manifest = &set.manifest;
    let [_, h, w] = manifest.image_shape;
    if [h, w] != cfg.model.image_size {
        bail!(
            "{:?} holds {h} x {w} images but the model renders {:?}",
            set.dir(),
            cfg.model.image_size
        );
    }
    Ok(Inr2ArrayAutoencoder::new(&vs.root(), &manifest.spec, &cfg.model)?)
}

/// Pretrain the Inr2Array autoencoder of `config`; returns the run folder.
pub fn pretrain(config: &Path, runs: &Path) -> Result<PathBuf> {
    let cfg = PretrainConfig::read(config)?;
    let run = RunDir::create(runs.join(&cfg.name))?;
    claim_run_folder(&cfg, &run, PretrainConfig::read)?;
    let device = Device::cuda_if_available();
    let set = open_set(&cfg.data.inrs)?;
    let train_split = set.load(Split::Train, cfg.data.use_copies)?;
    let val_split = set.load(Split::Val, false)?;
    let test_split = set.load(Split::Test, false)?;
    tch::manual_seed(cfg.trainer.seed as i64);
    let mut vs = VarStore::new(device);
    let model = build_autoencoder(&cfg, &set, &vs)?;
    let params = param_count(&vs);
    let eval_bs = cfg.data.eval_batch_size;
    let val = feature_batches(&val_split, cfg.data.val_limit, eval_bs, device)?;
    let test = feature_batches(&test_split, None, eval_bs, device)?;
    let mut data =
        EpochBatches::new(&train_split, None, cfg.data.batch_size, cfg.trainer.seed, device);
    eprintln!(
        "nfn: pretraining {} ({MODEL_NAME}, {:.2} M params) on {} / {} / {} INRs, {} steps x {}, on {device:?}",
        cfg.name,
        params as f64 / 1e6,
        train_split.len(),
        val.iter().map(Batch::len).sum::<i64>(),
        test_split.len(),
        cfg.trainer.steps,
        cfg.data.batch_size,
    );
    let bar = progress_bar(&cfg.name, cfg.trainer.steps);
    let summary = train(
        &model,
        &mut vs,
        &cfg.trainer,
        &run,
        &mut data,
        EvalSplits { val: &val, test: &test },
        &mut |p: &Progress| {
            bar.set_position(p.step);
            let val = p.val.map_or(String::new(), |v| format!(" val MSE {:.5}", v.loss));
            bar.set_message(format!("MSE {:.5}{val}, {:.1} INR/s", p.loss, p.networks_per_second));
        },
    )?;
    bar.finish();
    write_summary(
        &run,
        &SummaryRecord {
            name: &cfg.name,
            task: "inr2array_reconstruction",
            inrs: &cfg.data.inrs,
            metric_name: "test MSE",
            test_metric: summary.test.loss,
            paper: cfg.paper.as_ref(),
            counts: [train_split.len(), val.iter().map(Batch::len).sum(), test_split.len()],
            batch_size: cfg.data.batch_size,
            params,
            summary: &summary,
        },
    )?;
    println!(
        "{}: test reconstruction MSE {:.6} on {} INRs ({} steps, {:.1} min)",
        cfg.name,
        summary.test.loss,
        summary.test.count,
        summary.steps,
        summary.train_seconds / 60.0
    );
    Ok(run.path().to_path_buf())
}

/// Load a pretraining run's config, its INR set and its best autoencoder.
fn load_pretrained(
    run_dir: &Path,
    device: Device,
) -> Result<(PretrainConfig, InrSet, VarStore, Inr2ArrayAutoencoder)> {
    let cfg = PretrainConfig::read(&run_dir.join("config.toml"))
        .with_context(|| format!("{run_dir:?} is not an Inr2Array pretraining run"))?;
    let set = open_set(&cfg.data.inrs)?;
    let mut vs = VarStore::new(device);
    let model = build_autoencoder(&cfg, &set, &vs)?;
    let best = RunDir::create(run_dir)?.best();
    load_model(&mut vs, &best)
        .with_context(|| format!("loading {best:?} (train the encoder run first)"))?;
    Ok((cfg, set, vs, model))
}

/// Latents of `split` from the cache in `<encoder_run>/latents/<split>/`, extracting what is missing.
fn split_latents(
    model: &Inr2ArrayAutoencoder,
    set: &InrSet,
    split: Split,
    cfg: &ClassifyConfig,
    device: Device,
) -> Result<(Tensor, Tensor)> {
    let dir = cfg.encoder_run.join("latents").join(split.name());
    if let Ok((_, latents, labels)) = read_latents(&dir) {
        return Ok((latents, labels));
    }
    let inrs = set.load(split, false)?;
    let bar = progress_bar(&format!("encode {}", split.name()), 1);
    let mut fetch = |start: i64, len: i64| -> inr2array::Result<WeightSpaceFeatures> {
        let idx = Tensor::arange_start(start, start + len, (Kind::Int64, Device::Cpu));
        let wsfeat = inrs.features(&idx).map_err(|e| inr2array::Error::Config(e.to_string()))?;
        Ok(wsfeat.to_device(device))
    };
    extract_latents(
        model.encoder(),
        inrs.len(),
        &inrs.labels,
        &dir,
        cfg.data.chunk_size,
        cfg.data.extract_batch_size,
        &mut fetch,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish();
    let (_, latents, labels) = read_latents(&dir)?;
    Ok((latents, labels))
}

/// Extract latents with a pretrained encoder and train the latent classifier; returns the run folder.
pub fn classify(config: &Path, runs: &Path) -> Result<PathBuf> {
    let cfg = ClassifyConfig::read(config)?;
    let run = RunDir::create(runs.join(&cfg.name))?;
    claim_run_folder(&cfg, &run, ClassifyConfig::read)?;
    let device = Device::cuda_if_available();
    let (pre, set, _enc_vs, autoencoder) = load_pretrained(&cfg.encoder_run, device)?;
    if let Some(inrs) = &cfg.data.inrs {
        if inrs != &pre.data.inrs {
            bail!("data.inrs {inrs:?} differs from the encoder run's {:?}", pre.data.inrs);
        }
    }
    if pre.model.encoder.latent_dim != cfg.model.latent_dim {
        bail!(
            "the classifier reads latents of width {}, the encoder makes {}",
            cfg.model.latent_dim,
            pre.model.encoder.latent_dim
        );
    }
    let (train_z, train_y) = split_latents(&autoencoder, &set, Split::Train, &cfg, device)?;
    let (val_z, val_y) = split_latents(&autoencoder, &set, Split::Val, &cfg, device)?;
    let (test_z, test_y) = split_latents(&autoencoder, &set, Split::Test, &cfg, device)?;
    tch::manual_seed(cfg.trainer.seed as i64);
    let mut vs = VarStore::new(device);
    let model = TransformerClassifier::new(&vs.root(), &cfg.model)?;
    let params = param_count(&vs);
    let val = latent_batches(&val_z, &val_y, cfg.data.eval_batch_size, device);
    let test = latent_batches(&test_z, &test_y, cfg.data.eval_batch_size, device);
    let counts = [train_y.size()[0], val_y.size()[0], test_y.size()[0]];
    let mut data =
        LatentBatches::new(train_z, train_y, cfg.data.batch_size, cfg.trainer.seed, device);
    let trainer = cfg.trainer_for(data.per_epoch());
    eprintln!(
        "nfn: training {} (latent classifier, {:.2} M params) on {} / {} / {} latent arrays, {} steps x {}, on {device:?}",
        cfg.name,
        params as f64 / 1e6,
        counts[0],
        counts[1],
        counts[2],
        trainer.steps,
        cfg.data.batch_size
    );
    let bar = progress_bar(&cfg.name, trainer.steps);
    let summary = train(
        &LatentClassification { model: &model },
        &mut vs,
        &trainer,
        &run,
        &mut data,
        EvalSplits { val: &val, test: &test },
        &mut |p: &Progress| {
            bar.set_position(p.step);
            let val = p
                .val
                .and_then(|v| v.accuracy)
                .map_or(String::new(), |a| format!(" val acc {:.1}%", 100.0 * a));
            bar.set_message(format!("loss {:.3}{val}", p.loss));
        },
    )?;
    bar.finish();
    let metric = 100.0 * summary.test.accuracy.unwrap_or(f64::NAN);
    write_summary(
        &run,
        &SummaryRecord {
            name: &cfg.name,
            task: "inr_classification",
            inrs: &pre.data.inrs,
            metric_name: "accuracy %",
            test_metric: metric,
            paper: cfg.paper.as_ref(),
            counts,
            batch_size: cfg.data.batch_size,
            params,
            summary: &summary,
        },
    )?;
    println!(
        "{}: test accuracy {metric:.2}% on {} latent arrays ({} steps, {:.1} min)",
        cfg.name,
        summary.test.count,
        summary.steps,
        summary.train_seconds / 60.0
    );
    Ok(run.path().to_path_buf())
}

/// Options of `show`.
#[derive(clap::Args)]
pub struct ShowArgs {
    /// An Inr2Array pretraining run folder.
    pub run: PathBuf,
    /// The PNG to write (default `<run>/reconstructions.png`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How many test INRs to draw.
    #[arg(long, default_value_t = 8)]
    pub count: i64,
    /// The image data set folder for the top row (FashionMNIST IDX files).
    #[arg(long, default_value = DEFAULT_FASHION_MNIST_DIR)]
    pub images: PathBuf,
    /// Pixels per image pixel.
    #[arg(long, default_value_t = 4)]
    pub scale: u32,
}

/// The original images of the INRs at `image_index`, if the image set can be read.
fn original_images(set: &InrSet, image_index: &Tensor, dir: &Path) -> Option<Tensor> {
    if !set.manifest.dataset.contains("mnist") {
        return None;
    }
    let images = ImageSet::idx_dir(dir).ok()?;
    let idx: Vec<i64> = Vec::<i64>::try_from(image_index).ok()?;
    Some(images.select(&idx).ok()?.images)
}

/// Rows of `[n, c, h, w]` images in `[-1, 1]` as one RGB picture.
fn tile(rows: &[Tensor], scale: u32) -> Result<image::RgbImage> {
    let (n, c, h, w) = rows[0].size4()?;
    let gap = 2u32;
    let (th, tw) = (h as u32 * scale, w as u32 * scale);
    let width = n as u32 * (tw + gap) + gap;
    let height = rows.len() as u32 * (th + gap) + gap;
    let mut img = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    for (r, row) in rows.iter().enumerate() {
        let px = ((row.to_kind(Kind::Float).clamp(-1.0, 1.0) + 1.0) * 127.5)
            .round()
            .to_kind(Kind::Uint8);
        let px = px.to_device(Device::Cpu).contiguous();
        let data = Vec::<u8>::try_from(&px.view([-1]))?;
        for i in 0..n as u32 {
            for y in 0..th {
                for x in 0..tw {
                    let at = |ch: i64| {
                        let ch = ch.min(c - 1);
                        data[(((i as i64 * c + ch) * h + (y / scale) as i64) * w
                            + (x / scale) as i64) as usize]
                    };
                    let (ox, oy) = (gap + i * (tw + gap) + x, gap + r as u32 * (th + gap) + y);
                    img.put_pixel(ox, oy, image::Rgb([at(0), at(1), at(2)]));
                }
            }
        }
    }
    Ok(img)
}

/// `nfn show <run>`: a PNG with, per test INR, the original image (if available), the input
/// SIREN's rendering and the reconstruction.
pub fn show(args: &ShowArgs) -> Result<()> {
    let device = Device::cuda_if_available();
    let (cfg, set, _vs, model) = load_pretrained(&args.run, device)?;
    let test = set.load(Split::Test, false)?;
    let n = args.count.clamp(1, test.len().max(1));
    let idx = Tensor::arange(n, (Kind::Int64, Device::Cpu));
    let sirens = test.features(&idx)?.to_device(device);
    let (target, recon) = tch::no_grad(|| -> Result<_> {
        Ok((model.target(&sirens)?, model.reconstruct(&sirens, false)))
    })?;
    let mse = (&recon - &target).square().mean(Kind::Double).double_value(&[]);
    let mut rows = Vec::new();
    if let Some(images) = original_images(&set, &test.image_index.narrow(0, 0, n), &args.images) {
        rows.push(images);
    }
    rows.extend([target, recon]);
    let out = args.out.clone().unwrap_or_else(|| args.run.join("reconstructions.png"));
    tile(&rows, args.scale.max(1))?.save(&out).with_context(|| format!("writing {out:?}"))?;
    println!(
        "{}: wrote {} ({} rows x {n} test INRs; reconstruction MSE {mse:.6})",
        cfg.name,
        out.display(),
        rows.len()
    );
    Ok(())
}
