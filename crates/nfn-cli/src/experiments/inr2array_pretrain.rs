//! Inr2Array pretraining (`task = "inr2array_pretrain"`): the autoencoder learns to reconstruct each
//! SIREN's rendering from its latent array; judged by test reconstruction MSE (design.md §5.3-5.4).

use std::path::Path;

use anyhow::{bail, Context, Result};
use inr2array::{Inr2ArrayAutoencoder, PretrainConfig};
use nfn_datasets::{InrSet, InrSplit, Split};
use nfn_weightspace::render_siren;
use nft_model::train::{BaselineRecord, DataRecord};
use nft_model::{EvalSplits, Evaluation, Metric, Run, RunSummary};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::classify::dataset_name;
use crate::data::{eval_batches, open_set, with_extra_train, EpochBatches};
use crate::driver::{device, eval_run, param_count, train_run, Experiment};

/// The model name in the results tables.
pub const MODEL_NAME: &str = "Inr2Array (NFT)";

/// Build the autoencoder of a pretraining config for the spec of `set`.
fn build_autoencoder(
    cfg: &PretrainConfig,
    set: &InrSet,
    vs: &VarStore,
) -> Result<Inr2ArrayAutoencoder> {
    let [_, h, w] = set.manifest.image_shape;
    if [h, w] != cfg.model.image_size {
        bail!(
            "{:?} holds {h} x {w} images but the model renders {:?}",
            set.dir(),
            cfg.model.image_size
        );
    }
    Ok(Inr2ArrayAutoencoder::new(&vs.root(), &set.manifest.spec, &cfg.model)?)
}

/// Read a pretraining run's config, open its INR set and build its autoencoder with the best
/// weights.
///
/// # Errors
/// A run of another kind, a missing set or a missing checkpoint, named.
pub fn load_pretrained(
    run_dir: &Path,
    device: Device,
) -> Result<(PretrainConfig, InrSet, VarStore, Inr2ArrayAutoencoder)> {
    let cfg = PretrainConfig::read(&run_dir.join("config.toml"))
        .with_context(|| format!("{run_dir:?} is not an Inr2Array pretraining run"))?;
    let set = open_set(&cfg.data.inrs)?;
    let mut vs = VarStore::new(device);
    let model = build_autoencoder(&cfg, &set, &vs)?;
    let best = Run::open(run_dir)?.best();
    nft_model::load_model(&mut vs, &best)
        .with_context(|| format!("loading {best:?} (train the encoder run first)"))?;
    Ok((cfg, set, vs, model))
}

fn experiment(cfg: &PretrainConfig, vs: &VarStore, counts: [i64; 3]) -> Experiment {
    Experiment {
        name: cfg.name.clone(),
        kind: inr2array::PRETRAIN_TASK,
        page: "inr_reconstruction",
        model: MODEL_NAME.into(),
        params: param_count(vs),
        data: DataRecord {
            path: cfg.data.inrs.clone(),
            name: dataset_name(&cfg.data.inrs),
            train: counts[0],
            val: counts[1],
            test: counts[2],
        },
        batch_size: cfg.data.batch_size,
        headline: Metric::Mse,
        paper: cfg.paper.clone(),
        baselines: Vec::new(),
    }
}

/// `f` on the renderings of `split`, a chunk at a time (`[chunk, c, h, w]`).
fn for_each_rendering(
    split: &InrSplit,
    [h, w]: [i64; 2],
    mut f: impl FnMut(&Tensor),
) -> Result<()> {
    const CHUNK: i64 = 512;
    for start in (0..split.len()).step_by(CHUNK as usize) {
        let end = (start + CHUNK).min(split.len());
        let idx = Tensor::arange_start(start, end, (Kind::Int64, Device::Cpu));
        let sirens = split.features(&idx)?;
        f(&tch::no_grad(|| render_siren(&sirens, h, w))?);
    }
    Ok(())
}

/// The do-nothing reference of a reconstruction result: every test INR's rendering predicted by
/// the mean rendering of the training INRs (the best constant image), its MSE on the test split.
fn mean_image_baseline(
    train: &InrSplit,
    test: &InrSplit,
    size: [i64; 2],
) -> Result<Vec<BaselineRecord>> {
    eprintln!("nfn: baseline on {} test INRs: the mean training image", test.len());
    let mut sum: Option<Tensor> = None;
    for_each_rendering(train, size, |r| {
        let s = r.sum_dim_intlist(0, false, Kind::Double);
        sum = Some(sum.as_ref().map_or_else(|| s.shallow_clone(), |acc| acc + &s));
    })?;
    let mean = sum.context("no training INRs")? / train.len() as f64;
    let (mut sq, mut count) = (0.0, 0i64);
    for_each_rendering(test, size, |r| {
        sq += (r.to_kind(Kind::Double) - &mean).square().sum(Kind::Double).double_value(&[]);
        count += r.numel() as i64;
    })?;
    Ok(vec![BaselineRecord {
        name: "mean-image MSE".into(),
        description: "every test rendering predicted by the mean training rendering".into(),
        metric: Metric::Mse,
        value: sq / count as f64,
    }])
}

/// Pretrain the autoencoder of `cfg` in `<runs>/<name>/`, resuming it if it holds a checkpoint.
pub fn train(cfg: &PretrainConfig, runs: &Path) -> Result<RunSummary> {
    let run = Run::claim(runs.join(&cfg.name), cfg)?;
    let device = device();
    let set = open_set(&cfg.data.inrs)?;
    let train_split = set.load(Split::Train, cfg.data.use_copies)?;
    let train_split =
        with_extra_train(train_split, &cfg.data.inrs, &cfg.data.extra_train, cfg.data.use_copies)?;
    let (val_split, test_split) = (set.load(Split::Val, false)?, set.load(Split::Test, false)?);
    tch::manual_seed(cfg.trainer.seed as i64);
    let mut vs = VarStore::new(device);
    let model = build_autoencoder(cfg, &set, &vs)?;
    let eval_bs = cfg.data.eval_batch_size;
    let val =
        eval_batches(&val_split, &val_split.labels, cfg.data.val_limit, eval_bs, None, device)?;
    let test = eval_batches(&test_split, &test_split.labels, None, eval_bs, None, device)?;
    let val_count = val.iter().map(nft_model::Batch::len).sum();
    let mut exp = experiment(cfg, &vs, [train_split.len(), val_count, test_split.len()]);
    let size = cfg.model.image_size;
    exp.baselines =
        run.cached("baselines", || mean_image_baseline(&train_split, &test_split, size))?;
    let mut data = EpochBatches::new(
        &train_split,
        &train_split.labels,
        None,
        cfg.data.batch_size,
        cfg.trainer.seed,
        device,
    );
    let splits = EvalSplits { val: &val, test: &test };
    train_run(&run, &exp, &model, &mut vs, &cfg.trainer, &mut data, splits)
}

/// Evaluate the best autoencoder of `run` on its test split (reconstruction MSE).
pub fn eval(run: &Run) -> Result<Evaluation> {
    let cfg = PretrainConfig::read(&run.config())?;
    let set = open_set(&cfg.data.inrs)?;
    let mut vs = VarStore::new(device());
    let model = build_autoencoder(&cfg, &set, &vs)?;
    let test_split = set.load(Split::Test, false)?;
    let test = eval_batches(
        &test_split,
        &test_split.labels,
        None,
        cfg.data.eval_batch_size,
        None,
        vs.device(),
    )?;
    eval_run(run, &model, &mut vs, &cfg.trainer, &test)
}
