//! INRs a user brings to a trained model (`nfn predict --inrs`, `nfn embed --inrs`): an INR set
//! folder (`fit-inrs`, `convert-inrs`), a reference `.pth` folder (`randinit_smaller_<d>s/net<i>.pth`,
//! the base fits), or a `.npz` of weight-space features; each INR with what is known about it.

use std::path::Path;

use anyhow::{bail, Context, Result};
use nfn_datasets::inr_set::MANIFEST_FILE;
use nfn_datasets::pth::{list_reference_inrs, read_reference_params};
use nfn_datasets::{InrSet, Split};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use rayon::prelude::*;
use tch::Tensor;

/// A loaded model as a function of raw INR features `[b, 1, ..]` (class logits, latents), with
/// its output on the CPU.
pub type InrFn<'a> = dyn Fn(&WeightSpaceFeatures) -> Tensor + 'a;

/// `f` over the INRs of `wsfeat`, `batch` at a time with a progress bar named `name`, the outputs
/// joined along the batch axis.
pub fn in_batches(wsfeat: &WeightSpaceFeatures, batch: i64, name: &str, f: &InrFn<'_>) -> Tensor {
    let (n, batch) = (wsfeat.batch_size(), batch.max(1));
    let bar = crate::driver::progress_bar(name, n as u64);
    let mut parts = Vec::new();
    for start in (0..n).step_by(batch as usize) {
        let len = batch.min(n - start);
        let idx = Tensor::arange_start(start, start + len, (tch::Kind::Int64, tch::Device::Cpu));
        parts.push(f(&wsfeat.index_batch(&idx)));
        bar.set_position((start + len) as u64);
    }
    bar.finish_and_clear();
    Tensor::cat(&parts, 0)
}

/// A trained model that classifies INRs: the direct classifiers and the Inr2Array encoder +
/// latent classifier, from a run or shipped.
pub trait InrClassifier: Send {
    /// The SIREN spec it reads.
    fn spec(&self) -> &NetworkSpec;
    /// The weight statistics of its training INRs, when known.
    fn trained_range(&self) -> Option<&StatRange>;
    /// Class logits `[b, classes]` (on the CPU) of raw INR features `[b, 1, ..]`.
    fn logits(&self, wsfeat: &WeightSpaceFeatures) -> Tensor;
    /// Inr2Array latent arrays `[b, M, D]` (on the CPU), for models with an Inr2Array encoder.
    fn latents(&self, _wsfeat: &WeightSpaceFeatures) -> Option<Tensor> {
        None
    }
}

/// What is known about one INR: its position in the input, and where the input says it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InrRow {
    /// Position in the input (the output's row order).
    pub index: i64,
    /// The split of an INR set; empty otherwise.
    pub split: String,
    /// The image index (INR sets and reference folders), else -1.
    pub image_index: i64,
    /// The class label, if the input records one.
    pub label: Option<i64>,
}

/// INRs read from one input: raw weight-space features (1 channel) and one row each.
pub struct InrInputs {
    /// `[n, 1, ..]` features of the INRs.
    pub wsfeat: WeightSpaceFeatures,
    /// One row per INR, in order.
    pub rows: Vec<InrRow>,
}

/// Read the INRs in `path` and check they are SIRENs of `spec` (the model's), naming the file.
/// `splits` selects the splits of an INR set (base fits only, no extra copies).
///
/// # Errors
/// A path of no known kind, an unreadable or truncated file, or INRs of another architecture, each
/// naming the path.
pub fn read_inrs(path: &Path, spec: &NetworkSpec, splits: &[Split]) -> Result<InrInputs> {
    let inputs = if path.extension().is_some_and(|e| e == "npz") {
        let wsfeat = WeightSpaceFeatures::read_npz(path)?;
        let rows = (0..wsfeat.batch_size())
            .map(|index| InrRow { index, split: String::new(), image_index: -1, label: None })
            .collect();
        InrInputs { wsfeat, rows }
    } else if path.join(MANIFEST_FILE).exists() {
        from_set(path, spec, splits)?
    } else if path.is_dir() {
        from_reference(path, spec)?
    } else {
        bail!(
            "{}: not an INR set folder (no {MANIFEST_FILE}), a reference .pth folder or a .npz file",
            path.display()
        );
    };
    let got = inputs.wsfeat.spec()?;
    if got != *spec || inputs.wsfeat.channels() != 1 {
        bail!(
            "{}: the INRs are {} with {} channel(s); the model reads {}",
            path.display(),
            describe(&got),
            inputs.wsfeat.channels(),
            describe(spec)
        );
    }
    if !bool::try_from(inputs.wsfeat.flatten().isfinite().all())? {
        bail!("{}: the INRs hold NaN or infinite weights", path.display());
    }
    Ok(inputs)
}

/// A spec in words: `networks of widths [2, 32, 32, 1]`.
pub fn describe(spec: &NetworkSpec) -> String {
    format!("networks of widths {:?}", spec.dims())
}

fn from_set(dir: &Path, spec: &NetworkSpec, splits: &[Split]) -> Result<InrInputs> {
    let set = InrSet::open(dir)?;
    if set.manifest.spec != *spec {
        bail!(
            "{}: the set holds {}; the model reads {}",
            dir.join(MANIFEST_FILE).display(),
            describe(&set.manifest.spec),
            describe(spec)
        );
    }
    let (mut parts, mut rows) = (Vec::new(), Vec::new());
    for &split in splits {
        let s = set.load(split, false)?;
        let labels = Vec::<i64>::try_from(&s.labels)?;
        let index = Vec::<i64>::try_from(&s.image_index)?;
        for (label, image_index) in labels.into_iter().zip(index) {
            let i = rows.len() as i64;
            rows.push(InrRow {
                index: i,
                split: split.name().into(),
                image_index,
                label: Some(label),
            });
        }
        parts.push(s.all_features()?);
    }
    if rows.is_empty() {
        bail!("{}: no INRs in the splits asked for", dir.display());
    }
    let wsfeat = WeightSpaceFeatures::cat_batch(&parts.iter().collect::<Vec<_>>())?;
    Ok(InrInputs { wsfeat, rows })
}

fn from_reference(root: &Path, spec: &NetworkSpec) -> Result<InrInputs> {
    let files = list_reference_inrs(root, None)?;
    if files.is_empty() {
        bail!(
            "{}: no reference SIRENs (randinit_smaller_<d>s/net<i>.pth) and no {MANIFEST_FILE}",
            root.display()
        );
    }
    let params: Vec<Vec<f32>> = files
        .par_iter()
        .map(|f| read_reference_params(&f.path, spec))
        .collect::<nfn_datasets::Result<_>>()?;
    let n = files.len() as i64;
    let flat = Tensor::from_slice(&params.concat()).view([n, 1, -1]);
    let wsfeat = WeightSpaceFeatures::unflatten(&flat, spec)
        .with_context(|| format!("reading the SIRENs under {}", root.display()))?;
    let rows = files
        .iter()
        .enumerate()
        .map(|(i, f)| InrRow {
            index: i as i64,
            split: String::new(),
            image_index: f.idx,
            label: Some(f.label),
        })
        .collect();
    Ok(InrInputs { wsfeat, rows })
}

/// The range of per-layer weight statistics a model was trained on: per weight layer `l`, the
/// 0.5% and 99.5% quantiles over its training INRs of each INR's mean |W_l|. INRs from another
/// fitter can fall outside it (the reference's recipe gives smaller first-layer weights), and a
/// model has never seen such inputs; `nfn predict` warns about them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatRange {
    /// Lower ends, one per weight layer.
    pub lo: Vec<f64>,
    /// Upper ends, one per weight layer.
    pub hi: Vec<f64>,
    /// Medians, one per weight layer.
    pub median: Vec<f64>,
}

/// Each INR's mean |W_l| per weight layer: `[n, L]` f64 on the CPU.
pub fn layer_stats(wsfeat: &WeightSpaceFeatures) -> Tensor {
    let cols: Vec<Tensor> = wsfeat
        .iter()
        .map(|(w, _)| w.abs().flatten(1, -1).mean_dim(1, false, tch::Kind::Double))
        .collect();
    Tensor::stack(&cols, 1).to_device(tch::Device::Cpu)
}

impl StatRange {
    /// The range of the INRs in `wsfeat` (at least one).
    pub fn of(wsfeat: &WeightSpaceFeatures) -> Self {
        let stats = layer_stats(wsfeat);
        let q = |p: f64| -> Vec<f64> {
            Vec::<f64>::try_from(stats.quantile_scalar(p, 0, false, "linear"))
                .expect("a [L] f64 tensor")
        };
        StatRange { lo: q(0.005), hi: q(0.995), median: q(0.5) }
    }

    /// A warning naming the layer whose statistic falls outside the range for the largest share of
    /// the INRs in `wsfeat`, if more than 5% of them are outside (1% are by construction).
    pub fn check(&self, wsfeat: &WeightSpaceFeatures) -> Option<String> {
        let stats = layer_stats(wsfeat);
        let n = stats.size()[0].max(1) as f64;
        let worst = (0..self.lo.len().min(stats.size()[1] as usize))
            .map(|l| {
                let col = stats.select(1, l as i64);
                let out = col.lt(self.lo[l]).logical_or(&col.gt(self.hi[l]));
                let share = out.sum(tch::Kind::Double).double_value(&[]) / n;
                let median = col.median().double_value(&[]);
                (l, share, median)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        let (l, share, median) = worst;
        (share > 0.05).then(|| {
            format!(
                "{:.0}% of the INRs have a mean |W{l}| outside [{:.4}, {:.4}], the range of the \
                 INRs the model was trained on (theirs: median {median:.4}, the model's {:.4}); \
                 expect worse predictions: were they fitted another way?",
                100.0 * share,
                self.lo[l],
                self.hi[l],
                self.median[l]
            )
        })
    }
}
