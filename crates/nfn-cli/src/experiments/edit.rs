//! INR editing (`task = "inr_editing"`; NFT paper, INR editing; design.md §6.2): an editor turns
//! each SIREN into one that renders the edited image (dilated, eroded, morphological gradient,
//! contrast-equalised); judged by the test MSE of the rendering against the edited image.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nfn_datasets::{fit_sirens, EditStyle, EditTargets, InrSet, InrSplit, SirenFitConfig, Split};
use nfn_weightspace::render_siren;
use nft_model::train::{BaselineRecord, DataRecord};
use nft_model::{
    Editing, EditorConfig, EvalSplits, Evaluation, Metric, PaperRef, Run, RunSummary, TrainerConfig,
};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::classify::dataset_name;
use crate::data::{eval_batches, open_set, original_images, DataConfig, Dataset, EpochBatches};
use crate::driver::{device, eval_run, param_count, progress_bar, train_run, Experiment};

/// The `task` of these configs.
pub const TASK: &str = "inr_editing";

/// An INR editing experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditConfig {
    /// Run name; outputs go to `<runs>/<name>/`.
    pub name: String,
    /// Always [`TASK`].
    pub task: String,
    /// The edit.
    pub style: EditStyle,
    /// The folder of the original images (default: the INR set's data set at its usual place).
    #[serde(default)]
    pub images: Option<PathBuf>,
    /// Data (`standardize` must stay off: the editor adds its change to the raw weights).
    pub data: DataConfig,
    /// The editor.
    pub model: EditorConfig,
    /// Trainer.
    pub trainer: TrainerConfig,
    /// The paper's test MSE, if any.
    #[serde(default)]
    pub paper: Option<PaperRef>,
}

impl EditConfig {
    /// Read and validate a TOML config.
    ///
    /// # Errors
    /// Unreadable files, unknown fields, invalid values, each naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        super::read_config(path, Self::validate)
    }

    /// Check every part.
    ///
    /// # Errors
    /// The first invalid value.
    pub fn validate(&self) -> Result<()> {
        super::check_common(&self.name, &self.task, TASK, &self.data)?;
        if self.data.standardize {
            bail!("data.standardize must be off for editing: the edit is added to the raw weights");
        }
        self.trainer.validate()?;
        Ok(())
    }
}

/// An INR split with the edited image of each of its INRs.
struct Edited {
    split: InrSplit,
    targets: Tensor,
}

/// The three splits with their targets (made from the original images and cached beside the set).
fn load(cfg: &EditConfig, set: &InrSet) -> Result<[Edited; 3]> {
    let dataset = Dataset::from_name(&set.manifest.dataset)?;
    let dir = match &cfg.images {
        Some(dir) => dir.clone(),
        None => dataset.default_dir()?,
    };
    let targets = EditTargets::build_or_load(set, &dataset.load(&dir)?, cfg.style)
        .with_context(|| format!("making the {} targets of {:?}", cfg.style.name(), set.dir()))?;
    let with = |split: Split, copies: bool| -> Result<Edited> {
        let split_inrs = set.load(split, copies)?;
        let t = targets.targets_for(split, &split_inrs.image_index)?;
        Ok(Edited { split: split_inrs, targets: t })
    };
    Ok([
        with(Split::Train, cfg.data.use_copies)?,
        with(Split::Val, false)?,
        with(Split::Test, false)?,
    ])
}

/// Steps of the per-image SIREN fit that measures how close a SIREN of this size gets to a target.
const FLOOR_FIT_STEPS: usize = 500;

/// The two reference points of an editing result, on the test split: the unedited INRs rendered
/// against the targets ("do nothing"), and SIRENs fitted to the targets themselves (how low an
/// MSE a SIREN of this size reaches: the floor for any editor).
fn baselines(test: &Edited, image_size: [i64; 2], chunk: i64) -> Result<Vec<BaselineRecord>> {
    let [h, w] = image_size;
    let n = test.split.len();
    let (mut unedited, mut fitted) = (0.0, 0.0);
    eprintln!(
        "nfn: baselines on {n} test INRs: the unedited INRs, and SIRENs fitted to the targets"
    );
    let fit_cfg =
        SirenFitConfig { steps: FLOOR_FIT_STEPS, target_psnr: None, ..Default::default() };
    let bar = progress_bar("baselines", n as u64);
    for start in (0..n).step_by(chunk as usize) {
        let len = chunk.min(n - start);
        let idx = Tensor::arange_start(start, start + len, (Kind::Int64, Device::Cpu));
        let targets = test.targets.index_select(0, &idx);
        let sirens = test.split.features(&idx)?;
        let rendered = tch::no_grad(|| render_siren(&sirens, h, w))?;
        unedited += sq_error(&rendered, &targets);
        let fit = fit_sirens(&targets, &fit_cfg, None)?;
        fitted += sq_error(&tch::no_grad(|| render_siren(&fit.wsfeat, h, w))?, &targets);
        bar.inc(len as u64);
    }
    bar.finish();
    let elements = test.targets.numel() as f64;
    let record = |name: &str, description: &str, sum: f64| BaselineRecord {
        name: name.into(),
        description: description.into(),
        metric: Metric::Mse,
        value: sum / elements,
    };
    Ok(vec![
        record("do-nothing MSE", "the unedited INRs rendered against the targets", unedited),
        record(
            "SIREN-fit MSE",
            "SIRENs fitted to the targets themselves (500 Adam steps): the floor for an editor",
            fitted,
        ),
    ])
}

/// The summed squared error of `a` against `b`.
fn sq_error(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).square().sum(Kind::Double).double_value(&[])
}

fn experiment(cfg: &EditConfig, vs: &VarStore, sets: &[Edited; 3]) -> Experiment {
    Experiment {
        name: cfg.name.clone(),
        kind: TASK,
        page: "inr_editing",
        model: format!("{} ({})", cfg.model.name(), cfg.style.name()),
        params: param_count(vs),
        data: DataRecord {
            path: cfg.data.inrs.clone(),
            name: dataset_name(&cfg.data.inrs),
            train: sets[0].split.len(),
            val: sets[1].split.len(),
            test: sets[2].split.len(),
        },
        batch_size: cfg.data.batch_size,
        headline: Metric::Mse,
        paper: cfg.paper.clone(),
        baselines: Vec::new(),
    }
}

/// The image size the SIRENs are rendered at.
fn image_size(set: &InrSet) -> [i64; 2] {
    let [_, h, w] = set.manifest.image_shape;
    [h, w]
}

/// Train the editor of `cfg` in `<runs>/<name>/`, resuming it if it holds a checkpoint.
pub fn train(cfg: &EditConfig, runs: &Path) -> Result<RunSummary> {
    let run = Run::claim(runs.join(&cfg.name), cfg)?;
    let device = device();
    let set = open_set(&cfg.data.inrs)?;
    let sets = load(cfg, &set)?;
    tch::manual_seed(cfg.trainer.seed as i64);
    let mut vs = VarStore::new(device);
    let model = cfg.model.build(&vs.root(), &set.manifest.spec)?;
    let mut exp = experiment(cfg, &vs, &sets);
    let [train, val, test] = &sets;
    exp.baselines = run.cached("baselines", || baselines(test, image_size(&set), 256))?;
    let eval_bs = cfg.data.eval_batch_size;
    let val = eval_batches(&val.split, &val.targets, None, eval_bs, None, device)?;
    let test = eval_batches(&test.split, &test.targets, None, eval_bs, None, device)?;
    let (bs, seed) = (cfg.data.batch_size, cfg.trainer.seed);
    let mut data = EpochBatches::new(&train.split, &train.targets, None, bs, seed, device);
    let task = Editing { model: model.as_ref(), image_size: image_size(&set) };
    let splits = EvalSplits { val: &val, test: &test };
    train_run(&run, &exp, &task, &mut vs, &cfg.trainer, &mut data, splits)
}

/// Evaluate the best editor of `run` on its test split.
pub fn eval(run: &Run) -> Result<Evaluation> {
    let cfg = EditConfig::read(&run.config())?;
    let device: Device = device();
    let set = open_set(&cfg.data.inrs)?;
    let [_, _, test] = load(&cfg, &set)?;
    let mut vs = VarStore::new(device);
    let model = cfg.model.build(&vs.root(), &set.manifest.spec)?;
    let test =
        eval_batches(&test.split, &test.targets, None, cfg.data.eval_batch_size, None, device)?;
    let task = Editing { model: model.as_ref(), image_size: image_size(&set) };
    eval_run(run, &task, &mut vs, &cfg.trainer, &test)
}

/// For the first `count` test INRs of `run`: the original images (if the image set can be read),
/// the targets, the input INRs rendered and the edited INRs rendered (rows of `[n, c, h, w]` in
/// `[-1, 1]`), and the edited rows' MSE to the targets.
pub fn show_rows(run: &Run, count: i64, images: Option<&Path>) -> Result<(Vec<Tensor>, f64)> {
    let editor = Editor::load(run.path())?;
    let [_, _, test] = load(&editor.cfg, &editor.set)?;
    let n = count.clamp(1, test.split.len().max(1));
    let idx = Tensor::arange(n, (Kind::Int64, Device::Cpu));
    let sirens = test.split.features(&idx)?;
    let [h, w] = editor.image_size();
    let input = tch::no_grad(|| render_siren(&sirens, h, w))?;
    let after = editor.apply(&sirens)?;
    let edited = tch::no_grad(|| render_siren(&after, h, w))?;
    let targets = test.targets.narrow(0, 0, n);
    let mse = sq_error(&edited, &targets) / targets.numel() as f64;
    let dir = images.map(Path::to_path_buf).or(editor.cfg.images.clone());
    let index = test.split.image_index.narrow(0, 0, n);
    let mut rows: Vec<Tensor> =
        original_images(&editor.set, &index, dir.as_deref()).into_iter().collect();
    rows.extend([targets, input, edited]);
    Ok((rows, mse))
}

/// A trained editor, ready to apply.
pub struct Editor {
    /// The run's config.
    pub cfg: EditConfig,
    /// The INR set it was trained on.
    pub set: InrSet,
    vs: VarStore,
    model: Box<dyn nfn_layers::WsModuleT>,
}

impl Editor {
    /// The best editor of the editing run in `dir`.
    ///
    /// # Errors
    /// Not an editing run, a missing INR set or checkpoint, naming them.
    pub fn load(dir: &Path) -> Result<Self> {
        let run = Run::open(dir)?;
        let cfg = EditConfig::read(&run.config())
            .with_context(|| format!("{dir:?} is not an INR editing run"))?;
        let set = open_set(&cfg.data.inrs)?;
        let mut vs = VarStore::new(device());
        let model = cfg.model.build(&vs.root(), &set.manifest.spec)?;
        let best = run.best();
        nft_model::load_model(&mut vs, &best).with_context(|| format!("loading {best:?}"))?;
        Ok(Editor { cfg, set, vs, model })
    }

    /// The SIREN spec it edits.
    pub fn spec(&self) -> &nfn_weightspace::NetworkSpec {
        &self.set.manifest.spec
    }

    /// The image size it renders.
    pub fn image_size(&self) -> [i64; 2] {
        image_size(&self.set)
    }

    /// The edited SIRENs (`θ + Δθ`), in eval mode, on the CPU.
    ///
    /// # Errors
    /// SIRENs of another spec than the editor's, naming both.
    pub fn apply(
        &self,
        sirens: &nfn_weightspace::WeightSpaceFeatures,
    ) -> Result<nfn_weightspace::WeightSpaceFeatures> {
        let spec = sirens.spec()?;
        if &spec != self.spec() {
            bail!(
                "the INRs are {:?} networks, the editor edits {:?}",
                spec.dims(),
                self.spec().dims()
            );
        }
        let device = self.vs.device();
        Ok(tch::no_grad(|| self.model.forward_t(&sirens.to_device(device), false))
            .to_device(Device::Cpu))
    }
}
