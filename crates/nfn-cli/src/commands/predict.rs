//! `nfn predict`: a trained model's output for networks a user brings, as CSV.
//!
//! - `--run <inr_classification | inr2array_classify run> --inrs <INR set | reference .pth folder |
//!   .npz>`: class probabilities and the predicted class of every INR (with its split, image index
//!   and label where the input records them, and the accuracy against those labels).
//! - `--run <cnn_generalization run> --weights <zoo folder | weights.npy>`: the test accuracy the
//!   model predicts for every CNN.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nfn_datasets::cnn_zoo::generate::zoo_layout;
use nfn_datasets::cnn_zoo::{read_layout, tf_to_wsfeat, ZOO_NUM_PARAMS};
use nfn_datasets::Split;
use nfn_weightspace::WeightSpaceFeatures;
use nft_model::{load_model, Run};
use tch::{Device, Kind, Tensor};

use crate::driver::{device, progress_bar};
use crate::experiments::classify::TrainedClassifier;
use crate::experiments::inr2array_classify::TrainedLatentClassifier;
use crate::experiments::zoo::{self, ZooConfig, ZooDataConfig};
use crate::experiments::ExperimentKind;
use crate::inrs_input::{in_batches, read_inrs, InrClassifier};
use crate::pretrained;

/// Options of `predict`.
#[derive(clap::Args)]
pub struct Args {
    /// A trained run folder: INR classification (with `--inrs`) or CNN generalisation (with
    /// `--weights`).
    #[arg(long, required_unless_present = "pretrained")]
    pub run: Option<PathBuf>,
    /// A pretrained model shipped with nfn instead of a run, by data set (`fashion-mnist`; see
    /// its `MODEL.md`).
    #[arg(long, conflicts_with_all = ["run", "weights"], requires = "inrs")]
    pub pretrained: Option<String>,
    /// Which shipped model: `inr2array` (the card's default) or `nft`.
    #[arg(long, requires = "pretrained")]
    pub model: Option<String>,
    /// For a CNN generalisation run: a zoo folder (`weights.npy`, `metrics.csv.gz`, `layout.csv`:
    /// every network its split file keeps, with its true accuracy beside the prediction) or a
    /// `.npy` of flat weights `[n, 4970]` in the zoo's TensorFlow layout (`layout.csv` beside it,
    /// else the Small CNN Zoo's).
    #[arg(long, conflicts_with = "inrs", required_unless_present = "inrs")]
    pub weights: Option<PathBuf>,
    /// For an INR classification run: an INR set folder (`fit-inrs`, `convert-inrs`), a reference
    /// SIREN folder (`randinit_smaller_<d>s/net<i>.pth`) or a `.npz` of weight-space features.
    #[arg(long)]
    pub inrs: Option<PathBuf>,
    /// The splits of an INR set to predict (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "test", value_parser = parse_split)]
    pub splits: Vec<Split>,
    /// The split file of a zoo folder (default: `<folder>/split.csv`).
    #[arg(long)]
    pub split: Option<PathBuf>,
    /// The CSV to write.
    #[arg(long, default_value = "predictions.csv")]
    pub out: PathBuf,
}

/// Networks to predict: features, and per network a label (row and split) and the true accuracy.
struct Inputs {
    wsfeat: nfn_weightspace::WeightSpaceFeatures,
    labels: Vec<String>,
    truth: Option<Vec<f32>>,
}

fn from_folder(dir: &Path, split: Option<PathBuf>, like: &ZooDataConfig) -> Result<Inputs> {
    let cfg = ZooDataConfig { zoo: dir.into(), split, standardize: false, ..like.clone() };
    let splits = zoo::load(&cfg)?;
    let (mut params, mut labels, mut truth) = (Vec::new(), Vec::new(), Vec::new());
    for (name, s) in [("train", &splits.train), ("val", &splits.val), ("test", &splits.test)] {
        params.push(s.split.params.shallow_clone());
        labels.extend(s.rows.iter().map(|r| format!("{r},{name}")));
        truth.extend(Vec::<f32>::try_from(&s.targets.view([-1]))?);
    }
    let flat = Tensor::cat(&params, 0).unsqueeze(1);
    let wsfeat = nfn_weightspace::WeightSpaceFeatures::unflatten(&flat, &splits.train.split.spec)?;
    Ok(Inputs { wsfeat, labels, truth: Some(truth) })
}

fn from_npy(path: &Path) -> Result<Inputs> {
    let flat = nfn_weightspace::io::read_npy(path)?.to_kind(Kind::Float);
    let size = flat.size();
    if size.len() != 2 || size[1] != ZOO_NUM_PARAMS {
        bail!("{path:?}: expected flat zoo weights [n, {ZOO_NUM_PARAMS}], found {size:?}");
    }
    if !bool::try_from(flat.isfinite().all())? {
        bail!("{path:?}: non-finite weights");
    }
    let beside = path.with_file_name("layout.csv");
    let (layout, layout_path) = if beside.exists() {
        (read_layout(&beside)?, beside)
    } else {
        (zoo_layout(), PathBuf::from("<the Small CNN Zoo layout>"))
    };
    let wsfeat = tf_to_wsfeat(&flat, &layout, &layout_path)?;
    Ok(Inputs { wsfeat, labels: (0..size[0]).map(|r| format!("{r},")).collect(), truth: None })
}

/// `train`, `val` or `test`.
pub fn parse_split(s: &str) -> std::result::Result<Split, String> {
    Split::ALL
        .into_iter()
        .find(|split| split.name() == s.trim())
        .ok_or_else(|| format!("{s:?}: expected train, val or test"))
}

/// Predict and write the CSV.
///
/// # Errors
/// A run of a kind that does not predict, inputs that do not fit it, unreadable weights, a missing
/// checkpoint, an unwritable output, each named.
pub fn run(args: &Args) -> Result<()> {
    if let (Some(name), Some(inrs)) = (&args.pretrained, &args.inrs) {
        let (model, card, which) = pretrained::load(name, args.model.as_deref())?;
        let record = &card.models[&which];
        let line = predict_inrs(args, model.as_ref(), inrs)?;
        println!(
            "{line}; the pretrained {name} {which} model's card: {:.1}% on its {} test INRs",
            record["test_accuracy"].as_f64().unwrap_or(f64::NAN),
            record["test_inrs"]
        );
        return Ok(());
    }
    let run_dir = args.run.as_ref().context("--run or --pretrained")?;
    let run = Run::open(run_dir)?;
    let kind = ExperimentKind::of_config(&run.config())?;
    let model: Box<dyn InrClassifier> = match (&args.inrs, &args.weights, kind) {
        (Some(_), _, ExperimentKind::Classify) => Box::new(TrainedClassifier::load(&run)?),
        (Some(_), _, ExperimentKind::Inr2ArrayClassify) => {
            Box::new(TrainedLatentClassifier::load(&run)?)
        }
        (_, Some(weights), ExperimentKind::Zoo) => return predict_zoo(args, &run, weights),
        (Some(_), _, _) => bail!(
            "{}: --inrs needs an INR classification run (task inr_classification or \
             inr2array_classify)",
            run_dir.display()
        ),
        _ => bail!(
            "{}: --weights needs a CNN generalisation run (task cnn_generalization)",
            run_dir.display()
        ),
    };
    let inrs = args.inrs.as_ref().context("--inrs")?;
    println!("{}", predict_inrs(args, model.as_ref(), inrs)?);
    Ok(())
}

/// Class probabilities of the INRs in `inrs` into the CSV; the line to print.
fn predict_inrs(args: &Args, model: &dyn InrClassifier, inrs: &Path) -> Result<String> {
    let inputs = read_inrs(inrs, model.spec(), &args.splits)?;
    if let Some(warning) = model.trained_range().and_then(|r| r.check(&inputs.wsfeat)) {
        eprintln!("nfn: warning: {}: {warning}", inrs.display());
    }
    let n = inputs.wsfeat.batch_size();
    let softmax = |x: &WeightSpaceFeatures| model.logits(x).softmax(-1, Kind::Float);
    let probs = in_batches(&inputs.wsfeat, PREDICT_BATCH, "predict", &softmax); // [n, classes]
    let classes = probs.size()[1];
    let predicted = Vec::<i64>::try_from(&probs.argmax(-1, false))?;
    let probs = Vec::<f32>::try_from(&probs.reshape([-1]))?;
    let header = std::iter::once("index,split,image_index,label,predicted".to_string())
        .chain((0..classes).map(|c| format!("p{c}")))
        .collect::<Vec<_>>()
        .join(",");
    let lines = inputs.rows.iter().zip(&predicted).enumerate().map(|(i, (row, p))| {
        let label = row.label.map_or(String::new(), |l| l.to_string());
        let ps = &probs[i * classes as usize..(i + 1) * classes as usize];
        let ps = ps.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>().join(",");
        format!("{},{},{},{label},{p},{ps}", row.index, row.split, row.image_index)
    });
    write_csv(&args.out, &header, lines)?;
    let labelled: Vec<(i64, i64)> =
        inputs.rows.iter().zip(&predicted).filter_map(|(r, &p)| r.label.map(|l| (l, p))).collect();
    let accuracy = (!labelled.is_empty()).then(|| {
        let right = labelled.iter().filter(|(l, p)| l == p).count();
        format!(
            "; accuracy {:.1}% against the {} labels the input records",
            100.0 * right as f64 / labelled.len() as f64,
            labelled.len()
        )
    });
    Ok(format!("predict: {n} INRs -> {}{}", args.out.display(), accuracy.unwrap_or_default()))
}

/// INRs scored per forward pass.
const PREDICT_BATCH: i64 = 256;

/// Write `header` and `lines` to `out` atomically.
fn write_csv(out: &Path, header: &str, lines: impl Iterator<Item = String>) -> Result<()> {
    nfn_weightspace::io::write_atomically(out, |file| {
        writeln!(file, "{header}").map_err(|e| e.to_string())?;
        for line in lines {
            writeln!(file, "{line}").map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Predicted test accuracies of the CNNs in `weights` from a CNN generalisation run.
fn predict_zoo(args: &Args, run: &Run, weights: &Path) -> Result<()> {
    let cfg = ZooConfig::read(&run.config())?;
    let inputs = if weights.is_dir() {
        from_folder(weights, args.split.clone(), &cfg.data)?
    } else {
        from_npy(weights)?
    };
    let device = device();
    // The model, and the run's standardisation (training statistics) where it uses one.
    let zoo::Prepared { splits, mut vs, model, .. } = zoo::prepare(&cfg, device)?;
    let best = run.best();
    load_model(&mut vs, &best)
        .with_context(|| format!("loading {best:?} (train the run first)"))?;
    let n = inputs.wsfeat.batch_size();
    let bar = progress_bar("predict", n as u64);
    let mut preds = Vec::with_capacity(n as usize);
    let bs = cfg.data.eval_batch_size;
    for start in (0..n).step_by(bs as usize) {
        let len = bs.min(n - start);
        let idx = Tensor::arange_start(start, start + len, (Kind::Int64, Device::Cpu));
        let batch = inputs.wsfeat.index_batch(&idx);
        let batch =
            splits.standardization.as_ref().map_or(batch.shallow_clone(), |s| s.apply(&batch));
        let out = tch::no_grad(|| model.forward_t(&batch.to_device(device), false));
        let p = cfg.trainer.objective.prediction(out).view([-1]).to_kind(Kind::Float);
        preds.extend(Vec::<f32>::try_from(&p.to_device(Device::Cpu))?);
        bar.set_position((start + len) as u64);
    }
    bar.finish();
    let header = if inputs.truth.is_some() {
        "row,split,predicted,test_accuracy"
    } else {
        "row,split,predicted"
    };
    let lines =
        inputs.labels.iter().zip(&preds).enumerate().map(|(i, (label, p))| match &inputs.truth {
            Some(t) => format!("{label},{p:.6},{:.6}", t[i]),
            None => format!("{label},{p:.6}"),
        });
    write_csv(&args.out, header, lines)?;
    let tau = inputs.truth.as_ref().map(|t| {
        let t: Vec<f64> = t.iter().map(|&v| f64::from(v)).collect();
        let p: Vec<f64> = preds.iter().map(|&v| f64::from(v)).collect();
        format!(
            "; Kendall tau against the recorded accuracies {:.4}",
            nft_model::train::kendall_tau_b(&t, &p)
        )
    });
    println!("predict: {n} networks -> {}{}", args.out.display(), tau.unwrap_or_default());
    Ok(())
}
