//! `nfn predict --run <zoo run> --weights <zoo folder | weights.npy> --out predictions.csv`: the
//! test accuracy a trained CNN-generalisation model predicts for every network given, as CSV.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nfn_datasets::cnn_zoo::generate::zoo_layout;
use nfn_datasets::cnn_zoo::{read_layout, tf_to_wsfeat, ZOO_NUM_PARAMS};
use nft_model::{load_model, Run};
use tch::{Device, Kind, Tensor};

use crate::driver::{device, progress_bar};
use crate::experiments::zoo::{self, ZooConfig, ZooDataConfig};
use crate::experiments::ExperimentKind;

/// Options of `predict`.
#[derive(clap::Args)]
pub struct Args {
    /// A trained CNN generalisation run folder.
    #[arg(long)]
    pub run: PathBuf,
    /// A zoo folder (`weights.npy`, `metrics.csv.gz`, `layout.csv`: every network its split file
    /// keeps, with its true accuracy beside the prediction) or a `.npy` of flat weights `[n, 4970]`
    /// in the zoo's TensorFlow layout (`layout.csv` beside it, else the Small CNN Zoo's).
    #[arg(long)]
    pub weights: PathBuf,
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

/// Predict and write the CSV.
///
/// # Errors
/// Not a zoo run, unreadable weights, a missing checkpoint, an unwritable output, each named.
pub fn run(args: &Args) -> Result<()> {
    let run = Run::open(&args.run)?;
    if ExperimentKind::of_config(&run.config())? != ExperimentKind::Zoo {
        bail!("{:?} is not a CNN generalisation run; nfn predict reads zoo runs", args.run);
    }
    let cfg = ZooConfig::read(&run.config())?;
    let inputs = if args.weights.is_dir() {
        from_folder(&args.weights, args.split.clone(), &cfg.data)?
    } else {
        from_npy(&args.weights)?
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
    let tmp = args.out.with_extension("csv.tmp");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("creating {tmp:?}"))?,
    );
    let header = if inputs.truth.is_some() {
        "row,split,predicted,test_accuracy"
    } else {
        "row,split,predicted"
    };
    writeln!(file, "{header}")?;
    for (i, (label, p)) in inputs.labels.iter().zip(&preds).enumerate() {
        match &inputs.truth {
            Some(t) => writeln!(file, "{label},{p:.6},{:.6}", t[i])?,
            None => writeln!(file, "{label},{p:.6}")?,
        }
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &args.out).with_context(|| format!("writing {:?}", args.out))?;
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
