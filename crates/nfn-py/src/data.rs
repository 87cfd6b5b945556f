//! Data: image sets, the batched SIREN fitter, rendering, INR sets and CNN zoos.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tch::{Device, Kind, Tensor};

use nfn_cli::data::Dataset;
use nfn_datasets::siren_fit::{fit_sirens, FitProgress, SirenFitConfig};
use nfn_datasets::{InrSet, Split};
use nfn_weightspace::render_siren;

use crate::bridge::{borrow, export};
use crate::{borrow_ws, export_ws, must_exist, to_py, Capsules};

/// Images `[n, c, h, w]` (f32 in `[-1, 1]`, exactly as `nfn fit-inrs` fits them) and labels `[n]`
/// of an image data set (`fashion-mnist`, `mnist`, `cifar10`, `cifar10-subset`), all or `indices`.
#[pyfunction]
#[pyo3(signature = (dataset, indices=None, data_dir=None))]
fn load_images<'py>(
    py: Python<'py>,
    dataset: &str,
    indices: Option<Vec<i64>>,
    data_dir: Option<PathBuf>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, i64)> {
    let set = py
        .detach(|| -> anyhow::Result<_> {
            let dataset = Dataset::from_name(dataset)?;
            let dir = match data_dir {
                Some(d) => d,
                None => dataset.default_dir()?,
            };
            let set = dataset.load(&dir)?;
            let n = set.len();
            match indices {
                Some(idx) => {
                    if let Some(bad) = idx.iter().find(|&&i| i < 0 || i >= n) {
                        anyhow::bail!(
                            "image index {bad} is outside the {n} images of {}",
                            dataset.name()
                        );
                    }
                    let n_train = set.n_train;
                    Ok((set.select(&idx)?, n_train))
                }
                None => {
                    let n_train = set.n_train;
                    Ok((set, n_train))
                }
            }
        })
        .map_err(to_py)?;
    let (set, n_train) = set;
    Ok((export(py, set.images)?, export(py, set.labels)?, n_train))
}

/// Fit one SIREN per image with the batched fitter (`nfn fit-inrs`'s): `images` `[n, c, h, w]` in
/// `[-1, 1]`; returns `(weights, biases, psnr [n] f64, steps [n] i64)`.
#[pyfunction]
#[pyo3(signature = (images, recipe="fast", seed=0, steps=None, lr=None, target_psnr=None, progress=false))]
#[allow(clippy::too_many_arguments)]
fn fit_inrs<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    recipe: &str,
    seed: u64,
    steps: Option<usize>,
    lr: Option<f64>,
    target_psnr: Option<f64>,
    progress: bool,
) -> PyResult<(Capsules<'py>, Capsules<'py>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let base = match recipe {
        "fast" => SirenFitConfig::default(),
        "reference" => SirenFitConfig::reference(),
        other => {
            return Err(PyValueError::new_err(format!(
                "recipe {other:?}: expected \"fast\" or \"reference\""
            )))
        }
    };
    let cfg = SirenFitConfig {
        steps: steps.unwrap_or(base.steps),
        lr: lr.unwrap_or(base.lr),
        target_psnr: match target_psnr {
            Some(t) if t < 0.0 => None,
            Some(t) => Some(t),
            None => base.target_psnr,
        },
        seed,
        ..base
    };
    let images = borrow(images, "images")?;
    let size = images.tensor.size();
    if size.len() != 4 || size[2] < 1 || size[3] < 1 {
        return Err(PyValueError::new_err(format!(
            "images: expected [n, channels, height, width], got shape {size:?}"
        )));
    }
    if !images.tensor.is_floating_point() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "images: expected floating-point pixels in [-1, 1], got {:?}",
            images.tensor.kind()
        )));
    }
    let x = images.tensor.shallow_clone();
    let fit = py
        .detach(move || -> anyhow::Result<_> {
            cfg.validate()?;
            if !bool::try_from(x.isfinite().all())? {
                anyhow::bail!("images: NaN or infinite pixels");
            }
            let mut last = 0usize;
            let mut report = |p: &FitProgress| {
                if p.step >= last + 50 || p.active == 0 {
                    last = p.step;
                    eprintln!(
                        "nfn_rs.fit_inrs: step {} active {}/{} mean PSNR {:.2} dB",
                        p.step, p.active, p.total, p.mean_psnr
                    );
                }
            };
            let cb: Option<&mut dyn FnMut(&FitProgress)> =
                if progress { Some(&mut report) } else { None };
            Ok(fit_sirens(&x, &cfg, cb)?)
        })
        .map_err(to_py)?;
    drop(images);
    let psnr = Tensor::from_slice(&fit.psnr);
    let steps: Vec<i64> = fit.steps.iter().map(|&s| s as i64).collect();
    let (ws, bs) = export_ws(py, fit.wsfeat)?;
    Ok((ws, bs, export(py, psnr)?, export(py, Tensor::from_slice(&steps))?))
}

/// Render SIRENs (`weights`, `biases` of 2 → ... → c networks) on the `height x width` pixel grid
/// the fitter uses: images `[n, c, h, w]` in about `[-1, 1]`.
#[pyfunction]
fn render<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyList>,
    biases: &Bound<'py, PyList>,
    height: i64,
    width: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let (wsfeat, held) = borrow_ws(weights, biases)?;
    if wsfeat.channels() != 1 {
        return Err(PyValueError::new_err(format!(
            "render: expected 1 channel (raw SIREN weights), got {}",
            wsfeat.channels()
        )));
    }
    let img = py
        .detach(move || -> anyhow::Result<Tensor> {
            Ok(tch::no_grad(|| render_siren(&wsfeat.to_kind(Kind::Float)?, height, width))?)
        })
        .map_err(to_py)?;
    drop(held);
    export(py, img)
}

/// `train`, `val` or `test` names, as `nfn --splits` takes them.
fn parse_splits(names: &[String]) -> PyResult<Vec<Split>> {
    names
        .iter()
        .map(|s| nfn_cli::commands::predict::parse_split(s).map_err(PyValueError::new_err))
        .collect()
}

/// An INR set written by `nfn fit-inrs` or `nfn convert-inrs`: the base fits of `splits` (with
/// the augmentation copies of the training split if `copies`), as a dict.
#[pyfunction]
#[pyo3(signature = (path, splits=vec!["train".to_string(), "val".to_string(), "test".to_string()], copies=false))]
fn open_inr_set<'py>(
    py: Python<'py>,
    path: PathBuf,
    splits: Vec<String>,
    copies: bool,
) -> PyResult<Bound<'py, PyDict>> {
    must_exist(&path)?;
    let splits = parse_splits(&splits)?;
    let (set, parts) = py
        .detach(|| -> anyhow::Result<_> {
            let set = InrSet::open(&path)?;
            let mut parts = Vec::new();
            for &split in &splits {
                let s = set.load(split, copies && split == Split::Train)?;
                let wsfeat = s.all_features()?;
                parts.push((
                    split,
                    wsfeat,
                    s.labels.shallow_clone(),
                    s.image_index.shallow_clone(),
                ));
            }
            Ok((set, parts))
        })
        .map_err(to_py)?;
    let out = PyDict::new(py);
    out.set_item("dataset", &set.manifest.dataset)?;
    out.set_item("dims", set.manifest.spec.dims())?;
    out.set_item("image_shape", set.manifest.image_shape.to_vec())?;
    let per_split = PyDict::new(py);
    for (split, wsfeat, labels, image_index) in parts {
        let d = PyDict::new(py);
        let (ws, bs) = export_ws(py, wsfeat)?;
        d.set_item("weights", ws)?;
        d.set_item("biases", bs)?;
        d.set_item("labels", export(py, labels)?)?;
        d.set_item("image_index", export(py, image_index)?)?;
        per_split.set_item(split.name(), d)?;
    }
    out.set_item("splits", per_split)?;
    Ok(out)
}

/// INRs a user brings, as `nfn predict --inrs` reads them: an INR set folder (the base fits of
/// `splits`), a reference SIREN folder (`randinit_smaller_<d>s/net<i>.pth`) or a `.npz` of
/// `W<l>`/`b<l>` arrays (`nfn export-inrs`), all SIRENs 2 → 32 → 32 → `channels`. A dict with the
/// INRs and per INR its label (-1 where unknown), image index (-1 where unknown) and split ("" where
/// unknown).
#[pyfunction]
#[pyo3(signature = (path, splits=vec!["test".to_string()], channels=1))]
fn read_inrs<'py>(
    py: Python<'py>,
    path: PathBuf,
    splits: Vec<String>,
    channels: i64,
) -> PyResult<Bound<'py, PyDict>> {
    must_exist(&path)?;
    if channels < 1 {
        return Err(PyValueError::new_err(format!("channels {channels}: expected at least 1")));
    }
    let splits = parse_splits(&splits)?;
    let spec = nfn_weightspace::NetworkSpec::siren(channels);
    let inputs =
        py.detach(|| nfn_cli::inrs_input::read_inrs(&path, &spec, &splits)).map_err(to_py)?;
    let labels: Vec<i64> = inputs.rows.iter().map(|r| r.label.unwrap_or(-1)).collect();
    let image_index: Vec<i64> = inputs.rows.iter().map(|r| r.image_index).collect();
    let split: Vec<String> = inputs.rows.iter().map(|r| r.split.clone()).collect();
    let d = PyDict::new(py);
    let (ws, bs) = export_ws(py, inputs.wsfeat)?;
    d.set_item("weights", ws)?;
    d.set_item("biases", bs)?;
    d.set_item("labels", export(py, Tensor::from_slice(&labels))?)?;
    d.set_item("image_index", export(py, Tensor::from_slice(&image_index))?)?;
    d.set_item("split", split)?;
    Ok(d)
}

/// Train a zoo of Small CNN Zoo networks with `nfn make-zoo` into `out` (resumable) and read it
/// back: a dict with the CNNs' weights (`weights`, `biases`, in our layout), the flat TensorFlow
/// rows `flat [n, 4970]` and per row `step` and `test_accuracy`; `nfn make-zoo`'s progress lines
/// only with `progress`.
#[pyfunction]
#[pyo3(signature = (dataset, networks, out, seed=0, epochs=vec![0, 1, 2, 4], steps_per_epoch=None, eval_images=None, data_dir=None, progress=false))]
#[allow(clippy::too_many_arguments)]
fn make_zoo<'py>(
    py: Python<'py>,
    dataset: &str,
    networks: usize,
    out: PathBuf,
    seed: u64,
    epochs: Vec<usize>,
    steps_per_epoch: Option<usize>,
    eval_images: Option<usize>,
    data_dir: Option<PathBuf>,
    progress: bool,
) -> PyResult<Bound<'py, PyDict>> {
    use clap::ValueEnum as _;
    use nfn_cli::commands::make_zoo::{Args, ZooDataset};
    let zoo_dataset = ZooDataset::from_str(dataset, true).map_err(|_| {
        PyValueError::new_err(format!(
            "dataset {dataset:?}: expected fashion-mnist, mnist, cifar10-gs or svhn-gs"
        ))
    })?;
    let args = Args {
        dataset: zoo_dataset,
        data_dir,
        networks,
        out: Some(out.clone()),
        seed,
        group: nfn_datasets::cnn_zoo::generate::ZooGenConfig::default().group,
        epochs,
        steps_per_epoch,
        eval_images,
        train_eval_images: None,
        shard: None,
        merge_only: false,
    };
    let (flat, wsfeat, metrics) = py
        .detach(|| -> anyhow::Result<_> {
            // `nfn make-zoo`'s lines and bar only when asked for.
            nfn_cli::driver::set_quiet(!progress);
            let made = nfn_cli::commands::make_zoo::run(&args);
            nfn_cli::driver::set_quiet(false);
            made?;
            let flat = nfn_weightspace::io::read_npy(out.join("weights.npy"))?.to_kind(Kind::Float);
            let layout_path = out.join("layout.csv");
            let layout = nfn_datasets::cnn_zoo::read_layout(&layout_path)?;
            let wsfeat = nfn_datasets::cnn_zoo::tf_to_wsfeat(&flat, &layout, &layout_path)?;
            let metrics = nfn_datasets::cnn_zoo::read_metrics(out.join("metrics.csv.gz"))?;
            Ok((flat, wsfeat, metrics))
        })
        .map_err(to_py)?;
    let d = PyDict::new(py);
    let (ws, bs) = export_ws(py, wsfeat)?;
    d.set_item("weights", ws)?;
    d.set_item("biases", bs)?;
    d.set_item("flat", export(py, flat)?)?;
    d.set_item("step", export(py, Tensor::from_slice(&metrics.step))?)?;
    d.set_item("test_accuracy", export(py, Tensor::from_slice(&metrics.test_accuracy))?)?;
    Ok(d)
}

/// The device LibTorch computes on here: `cuda` when a GPU is visible, else `cpu`.
#[pyfunction]
fn default_device() -> String {
    match nfn_cli::driver::device() {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

/// Add this file's functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(load_images, m)?)?;
    m.add_function(wrap_pyfunction!(fit_inrs, m)?)?;
    m.add_function(wrap_pyfunction!(render, m)?)?;
    m.add_function(wrap_pyfunction!(open_inr_set, m)?)?;
    m.add_function(wrap_pyfunction!(read_inrs, m)?)?;
    m.add_function(wrap_pyfunction!(make_zoo, m)?)?;
    m.add_function(wrap_pyfunction!(default_device, m)?)?;
    Ok(())
}
