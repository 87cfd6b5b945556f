//! Inr2Array latent classification (`task = "inr2array_classify"`): a pretrained encoder turns every
//! INR into a latent array (cached beside the encoder run), and a transformer classifies the arrays;
//! judged by test accuracy (design.md §5.5).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use inr2array::{
    extract_latents, latent_batches, read_latents, ClassifyConfig, Inr2ArrayAutoencoder,
    LatentBatches, PretrainConfig, TransformerClassifier,
};
use nfn_datasets::{InrSet, Split};
use nfn_weightspace::{Shard, WeightSpaceFeatures};
use nft_model::train::DataRecord;
use nft_model::{EvalSplits, Evaluation, Metric, Run, RunSummary, Supervised};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::classify::dataset_name;
use super::inr2array_pretrain::{load_pretrained, MODEL_NAME};
use crate::driver::{
    device, eval_run, majority_class_baseline, param_count, progress_bar, train_run, Experiment,
};
use crate::inrs_input::StatRange;

/// The cache folder of `split`'s latents: `<encoder_run>/latents/<split>/`, or `train-copies/` for
/// the training split with its augmentation copies (`data.use_copies`).
pub fn latent_dir(cfg: &ClassifyConfig, split: Split) -> PathBuf {
    let name = if with_copies(cfg, split) { "train-copies" } else { split.name() };
    cfg.encoder_run.join("latents").join(name)
}

/// Whether `split`'s latents include the augmentation copies.
fn with_copies(cfg: &ClassifyConfig, split: Split) -> bool {
    cfg.data.use_copies && split == Split::Train
}

/// The cache folder of the training latents of an extra set (`data.extra_train`).
fn extra_dir(cfg: &ClassifyConfig, set: &Path) -> PathBuf {
    let name = set.file_name().map_or_else(|| "set".into(), |n| n.to_string_lossy().into_owned());
    cfg.encoder_run.join("latents").join("extra").join(name).join(Split::Train.name())
}

/// Extract `part` of `split`'s latents of `set` into the cache `dir`, skipping chunks already there.
fn extract_split(
    model: &Inr2ArrayAutoencoder,
    (set, split, copies, dir): (&InrSet, Split, bool, &Path),
    cfg: &ClassifyConfig,
    device: Device,
    part: Shard,
) -> Result<()> {
    let inrs = set.load(split, copies)?;
    let bar = progress_bar(&format!("encode {}", split.name()), inrs.len() as u64);
    let mut fetch = |start: i64, len: i64| -> inr2array::Result<WeightSpaceFeatures> {
        let idx = Tensor::arange_start(start, start + len, (Kind::Int64, Device::Cpu));
        let wsfeat = inrs.features(&idx).map_err(nft_model::Error::data)?;
        Ok(wsfeat.to_device(device))
    };
    extract_latents(
        model.encoder(),
        inrs.len(),
        &inrs.labels,
        dir,
        cfg.data.chunk_size,
        cfg.data.extract_batch_size,
        part,
        &mut fetch,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish();
    Ok(())
}

/// Latents of `split` of `set` from the cache `dir`, extracting what is missing.
fn split_latents(
    model: &Inr2ArrayAutoencoder,
    (set, split, copies, dir): (&InrSet, Split, bool, &Path),
    cfg: &ClassifyConfig,
    device: Device,
) -> Result<(Tensor, Tensor)> {
    if let Ok((_, latents, labels)) = read_latents(dir) {
        return Ok((latents, labels));
    }
    extract_split(model, (set, split, copies, dir), cfg, device, Shard::ALL)?;
    let (_, latents, labels) = read_latents(dir)?;
    Ok((latents, labels))
}

/// The config's encoder run and INR set, checked against the classifier config.
fn encoder_for(
    cfg: &ClassifyConfig,
    device: Device,
) -> Result<(PretrainConfig, InrSet, VarStore, Inr2ArrayAutoencoder)> {
    let (pre, set, enc_vs, autoencoder) = load_pretrained(&cfg.encoder_run, device)?;
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
    Ok((pre, set, enc_vs, autoencoder))
}

/// Which checkpoint of an encoder run made a set of latents: the step of the run's selected
/// (best-validation) model. An encoder run trained on (a larger step budget) selects a later one,
/// and latents and classifiers of the earlier one must not be mixed with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EncoderStamp {
    /// The training step the encoder run's selected model comes from.
    pub best_step: u64,
}

impl EncoderStamp {
    /// The stamp of the encoder run's model now (read from its `state.json`).
    ///
    /// # Errors
    /// An encoder run that is not finished (its selected model may still change) or whose state
    /// cannot be read, naming the folder.
    pub fn of(encoder_run: &Path) -> Result<Self> {
        let run = Run::open(encoder_run)?;
        if !run.summary().exists() {
            bail!("{encoder_run:?}: the encoder run is not finished (no summary.json); train it to its step budget first");
        }
        let best = run.read_state()?.best;
        let best_step = best
            .with_context(|| format!("{:?}: no selected checkpoint recorded", run.state()))?
            .step;
        Ok(EncoderStamp { best_step })
    }

    /// Check `file` (a stamp written by an earlier extraction or training) against `self`, or
    /// write `self` there if there is none. `what` says what the file belongs to and `remedy` what
    /// to do about a mismatch, for the error.
    fn check(self, file: &Path, what: &str, remedy: &str) -> Result<()> {
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let old: EncoderStamp = serde_json::from_str(&text)
                    .with_context(|| format!("{file:?}: not an encoder stamp"))?;
                if old != self {
                    bail!(
                        "{what} was made with the encoder run's checkpoint of step {}; the run now \
                         selects step {} (it was trained on): {remedy}",
                        old.best_step,
                        self.best_step,
                    );
                }
                Ok(())
            }
            Err(_) => {
                let text = serde_json::to_string_pretty(&self)?;
                nfn_weightspace::io::write_atomically(file, |out| {
                    std::io::Write::write_all(out, text.as_bytes()).map_err(|e| e.to_string())
                })?;
                Ok(())
            }
        }
    }
}

/// Check the latent cache of `cfg`'s encoder run against `stamp`, the run's selected checkpoint (a
/// cache without a stamp is from before stamps and taken as the current one's).
fn check_cache(cfg: &ClassifyConfig, stamp: EncoderStamp) -> Result<()> {
    let cache = cfg.encoder_run.join("latents");
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {cache:?}"))?;
    let what = format!("the latent cache {cache:?}");
    let remedy = "move the folder aside and extract the latents again";
    stamp.check(&cache.join("encoder.json"), &what, remedy)
}

/// Check that the classifier `run` is (or will be) trained on `stamp`, its encoder run's selected
/// checkpoint now: the first training records it in `<run>/encoder.json`.
fn check_classifier(run: &Run, stamp: EncoderStamp) -> Result<()> {
    let what = format!("classifier {:?}", run.path());
    let remedy = "train a classifier under a new name";
    stamp.check(&run.path().join("encoder.json"), &what, remedy)
}

/// The latents of every split (train, val, test), extracted with the config's encoder run, whose
/// selected checkpoint is `stamp`.
fn all_latents(
    cfg: &ClassifyConfig,
    stamp: EncoderStamp,
    device: Device,
) -> Result<([(Tensor, Tensor); 3], String)> {
    let (pre, set, _enc_vs, autoencoder) = encoder_for(cfg, device)?;
    check_cache(cfg, stamp)?;
    let latents = [Split::Train, Split::Val, Split::Test].map(|split| {
        let copies = with_copies(cfg, split);
        split_latents(&autoencoder, (&set, split, copies, &latent_dir(cfg, split)), cfg, device)
    });
    let [train, val, test] = latents;
    let (mut train_z, mut train_y) = train?;
    for extra in &cfg.data.extra_train {
        let extra_set = crate::data::open_set(extra)?;
        if extra_set.manifest.spec != set.manifest.spec {
            bail!("{extra:?}: its SIRENs differ from those of the encoder run's set");
        }
        let dir = extra_dir(cfg, extra);
        let extra = (&extra_set, Split::Train, false, dir.as_path());
        let (z, y) = split_latents(&autoencoder, extra, cfg, device)?;
        train_z = Tensor::cat(&[train_z, z], 0);
        train_y = Tensor::cat(&[train_y, y], 0);
    }
    Ok(([(train_z, train_y), val?, test?], pre.data.inrs.display().to_string()))
}

/// Extract `part` of every split's latents into the encoder run's cache (for N processes sharing
/// it, `nfn latents --shard i/n`); training the classifier then finds them there.
pub fn extract_part(cfg: &ClassifyConfig, part: Shard) -> Result<()> {
    let device = device();
    let (_, set, _enc_vs, autoencoder) = encoder_for(cfg, device)?;
    check_cache(cfg, EncoderStamp::of(&cfg.encoder_run)?)?;
    for split in Split::ALL {
        let (copies, dir) = (with_copies(cfg, split), latent_dir(cfg, split));
        extract_split(&autoencoder, (&set, split, copies, &dir), cfg, device, part)?;
    }
    Ok(())
}

/// Train the latent classifier of `cfg` in `<runs>/<name>/`, resuming it if it holds a checkpoint.
pub fn train(cfg: &ClassifyConfig, runs: &Path) -> Result<RunSummary> {
    let run = Run::claim(runs.join(&cfg.name), cfg)?;
    let stamp = EncoderStamp::of(&cfg.encoder_run)?;
    check_classifier(&run, stamp)?;
    let device = device();
    let ([(train_z, train_y), (val_z, val_y), (test_z, test_y)], inrs) =
        all_latents(cfg, stamp, device)?;
    tch::manual_seed(cfg.trainer.seed as i64);
    let mut vs = VarStore::new(device);
    let model = TransformerClassifier::new(&vs.root(), &cfg.model)?;
    let val = latent_batches(&val_z, &val_y, cfg.data.eval_batch_size, device);
    let test = latent_batches(&test_z, &test_y, cfg.data.eval_batch_size, device);
    let exp = Experiment {
        name: cfg.name.clone(),
        kind: inr2array::CLASSIFY_TASK,
        page: "inr_classification",
        model: MODEL_NAME.into(),
        params: param_count(&vs),
        data: DataRecord {
            name: dataset_name(Path::new(&inrs)),
            path: inrs.into(),
            train: train_y.size()[0],
            val: val_y.size()[0],
            test: test_y.size()[0],
        },
        batch_size: cfg.data.batch_size,
        headline: Metric::Accuracy,
        paper: cfg.paper.clone(),
        baselines: vec![majority_class_baseline(&train_y, &test_y)],
    };
    let mut data =
        LatentBatches::new(train_z, train_y, cfg.data.batch_size, cfg.trainer.seed, device);
    let trainer = cfg.trainer_for(data.per_epoch());
    let task = Supervised::new(&model, cfg.trainer.objective);
    let splits = EvalSplits { val: &val, test: &test };
    train_run(&run, &exp, &task, &mut vs, &trainer, &mut data, splits)
}

/// Evaluate the best classifier of `run` on the test latents.
pub fn eval(run: &Run) -> Result<Evaluation> {
    let cfg = ClassifyConfig::read(&run.config())?;
    let stamp = EncoderStamp::of(&cfg.encoder_run)?;
    check_classifier(run, stamp)?;
    let device = device();
    let ([_, _, (test_z, test_y)], _) = all_latents(&cfg, stamp, device)?;
    let mut vs = VarStore::new(device);
    let model = TransformerClassifier::new(&vs.root(), &cfg.model)?;
    let test = latent_batches(&test_z, &test_y, cfg.data.eval_batch_size, device);
    let task = Supervised::new(&model, cfg.trainer.objective);
    eval_run(run, &task, &mut vs, &cfg.trainer, &test)
}

/// The best latent classifier of a finished `inr2array_classify` run and its encoder, ready to
/// score other INRs (only the encoder run's manifest is read, not its INRs).
pub struct TrainedLatentClassifier {
    /// The SIREN spec the encoder reads.
    pub spec: nfn_weightspace::NetworkSpec,
    /// The weight statistics of its training INRs, when known.
    pub trained_range: Option<StatRange>,
    _vs: (VarStore, VarStore),
    autoencoder: Inr2ArrayAutoencoder,
    classifier: TransformerClassifier,
    device: Device,
}

impl TrainedLatentClassifier {
    /// Load the run's best classifier and its encoder run's best autoencoder.
    ///
    /// # Errors
    /// An unreadable config, a missing encoder run or checkpoint, each named.
    pub fn load(run: &Run) -> Result<Self> {
        let cfg = ClassifyConfig::read(&run.config())?;
        check_classifier(run, EncoderStamp::of(&cfg.encoder_run)?)?;
        let device = device();
        let (_, set, enc_vs, autoencoder) = encoder_for(&cfg, device)?;
        let mut vs = VarStore::new(device);
        let classifier = TransformerClassifier::new(&vs.root(), &cfg.model)?;
        let best = run.best();
        nft_model::load_model(&mut vs, &best)
            .with_context(|| format!("loading {best:?} (train the run first)"))?;
        // Over every training set: the encoder run's and any `data.extra_train`.
        let mut train = vec![set.load(Split::Train, false)?];
        for extra in &cfg.data.extra_train {
            train.push(crate::data::open_set(extra)?.load(Split::Train, false)?);
        }
        let train = nfn_datasets::loader::InrSplit::concat(&train)?;
        let trained_range = Some(StatRange::of(&train.all_features()?));
        Ok(TrainedLatentClassifier {
            spec: set.manifest.spec.clone(),
            trained_range,
            _vs: (enc_vs, vs),
            autoencoder,
            classifier,
            device,
        })
    }

    /// A latent classifier and its encoder from their configs and weights alone (a shipped model:
    /// no runs or INR sets needed), for SIRENs of `spec`.
    ///
    /// # Errors
    /// An unreadable config or weights file, or configs that do not fit together, each named.
    pub fn from_files(
        [encoder_config, encoder_weights]: [&Path; 2],
        [config, weights]: [&Path; 2],
        spec: &nfn_weightspace::NetworkSpec,
    ) -> Result<Self> {
        let pre = PretrainConfig::read(encoder_config)?;
        let cfg = ClassifyConfig::read(config)?;
        if pre.model.encoder.latent_dim != cfg.model.latent_dim {
            bail!("{config:?}: the classifier's latent width differs from the encoder's");
        }
        let device = device();
        let mut enc_vs = VarStore::new(device);
        let autoencoder = Inr2ArrayAutoencoder::new(&enc_vs.root(), spec, &pre.model)?;
        nft_model::load_model(&mut enc_vs, encoder_weights)?;
        let mut vs = VarStore::new(device);
        let classifier = TransformerClassifier::new(&vs.root(), &cfg.model)?;
        nft_model::load_model(&mut vs, weights)?;
        Ok(TrainedLatentClassifier {
            spec: spec.clone(),
            trained_range: None,
            _vs: (enc_vs, vs),
            autoencoder,
            classifier,
            device,
        })
    }

    /// Latent arrays `[b, M, D]` (f32, on the CPU) of raw INR features `[b, 1, ..]`.
    pub fn latents(&self, wsfeat: &WeightSpaceFeatures) -> Tensor {
        tch::no_grad(|| self.autoencoder.encoder().forward_t(&wsfeat.to_device(self.device), false))
            .to_kind(Kind::Float)
            .to_device(Device::Cpu)
    }
}

impl crate::inrs_input::InrClassifier for TrainedLatentClassifier {
    fn spec(&self) -> &nfn_weightspace::NetworkSpec {
        &self.spec
    }

    fn trained_range(&self) -> Option<&StatRange> {
        self.trained_range.as_ref()
    }

    fn latents(&self, wsfeat: &WeightSpaceFeatures) -> Option<Tensor> {
        Some(TrainedLatentClassifier::latents(self, wsfeat))
    }

    fn logits(&self, wsfeat: &WeightSpaceFeatures) -> Tensor {
        tch::no_grad(|| {
            let z = self.autoencoder.encoder().forward_t(&wsfeat.to_device(self.device), false);
            self.classifier.forward_t(&z, false)
        })
        .to_device(Device::Cpu)
    }
}
