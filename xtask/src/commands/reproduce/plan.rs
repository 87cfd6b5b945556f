//! The plan of `cargo xtask reproduce`: the steps that take an experiment config from nothing to its
//! evaluated result. It reads configs and runs nothing, so tests can check every config's plan.
//!
//! A plan is: the encoder run's plan first (an `inr2array_classify` config's `encoder_run`), then
//! the steps that make the config's data (`data.inrs`, `data.zoo`, `data.split`, and the images
//! of an editing config; [`super::data`]), then `train <config>` and `eval data/runs/<name>`.
//! Every step is resumable, so the plan is the same whether or not its data is already there.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::config::{all_configs, norm, Config, CONFIGS_DIR, EDIT_TASK, PRETRAIN_TASK, RUNS_DIR};
use super::data::{edit_image_steps, inr_set_steps, zoo_steps};
use super::step::Step;
use crate::commands::setup::FASHION_MNIST_DIR;
use crate::util::root;

/// The IDX files an MNIST-style folder must hold (plain or gzipped).
const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// What a plan may know about the machine.
#[derive(Debug, Clone)]
pub struct PlanEnv {
    /// The workspace root: relative config paths and [`CONFIGS_DIR`] are read from here.
    pub root: PathBuf,
    /// Whether Debian's FashionMNIST folder ([`FASHION_MNIST_DIR`]) holds the images; if not, a
    /// plan that needs them downloads them.
    pub fashion_mnist_installed: bool,
}

impl PlanEnv {
    /// This machine: the workspace root, and whether Debian's FashionMNIST folder is complete.
    pub fn detect() -> Self {
        let dir = Path::new(FASHION_MNIST_DIR);
        let installed = IDX_FILES
            .iter()
            .all(|f| dir.join(f).is_file() || dir.join(format!("{f}.gz")).is_file());
        PlanEnv { root: root(), fashion_mnist_installed: installed }
    }
}

/// The steps that take the config at `config` (relative to `env.root` unless absolute) from
/// nothing to its evaluated result, in order, each command line once.
///
/// # Errors
/// An unreadable config (this one or one in [`CONFIGS_DIR`]), an encoder run without its
/// pretraining config, a data path the plan does not know how to make, or configs that disagree
/// on an INR set's augmentation copies.
pub fn plan(config: &Path, env: &PlanEnv) -> Result<Vec<Step>> {
    let configs = all_configs(&env.root)?;
    let cfg = Config::read(&env.root, config)?;
    let mut steps = Vec::new();
    plan_config(&cfg, &configs, env, &mut steps)?;
    let mut seen = Vec::new();
    steps.retain(|s| {
        let key = (s.runner, s.argv.clone());
        let first = !seen.contains(&key);
        seen.push(key);
        first
    });
    Ok(steps)
}

/// Append `cfg`'s plan (its encoder run's first) to `steps`.
fn plan_config(
    cfg: &Config,
    configs: &[Config],
    env: &PlanEnv,
    steps: &mut Vec<Step>,
) -> Result<()> {
    let in_cfg = || format!("planning {:?}", cfg.path);
    if let Some(run) = &cfg.view.encoder_run {
        let encoder = encoder_config(run, configs).with_context(in_cfg)?;
        plan_config(encoder, configs, env, steps)?;
    }
    let data = &cfg.view.data;
    if let Some(inrs) = cfg.inrs() {
        steps.extend(inr_set_steps(inrs, cfg, configs, env).with_context(in_cfg)?);
        if cfg.view.task.as_deref() == Some(EDIT_TASK) {
            steps.extend(
                edit_image_steps(inrs, cfg.view.images.as_deref(), env).with_context(in_cfg)?,
            );
        }
    }
    for extra in data.extra_train.iter().map(|p| norm(p)) {
        steps.extend(inr_set_steps(extra, cfg, configs, env).with_context(in_cfg)?);
    }
    if let Some(zoo) = data.zoo.as_deref().map(norm) {
        steps.extend(zoo_steps(zoo, data.split.as_deref().map(norm), env).with_context(in_cfg)?);
    }
    if data.inrs.is_none() && data.zoo.is_none() && cfg.view.encoder_run.is_none() {
        bail!("{:?} names no data (data.inrs, data.zoo or encoder_run)", cfg.path);
    }
    let name = &cfg.view.name;
    let run = format!("{RUNS_DIR}/{name}");
    steps.push(Step::xtask(
        format!("train {name} (resumes {run} if it holds a checkpoint)"),
        &["train", &cfg.path.display().to_string()],
    ));
    steps.push(Step::xtask(format!("evaluate {run} on its test split"), &["eval", &run]));
    Ok(())
}

/// The pretraining config of `encoder_run = "data/runs/<run>"`: the one in [`CONFIGS_DIR`] whose
/// `name` is `<run>`.
fn encoder_config<'a>(encoder_run: &str, configs: &'a [Config]) -> Result<&'a Config> {
    let Some(run) = norm(encoder_run).strip_prefix(RUNS_DIR).and_then(|r| r.strip_prefix('/'))
    else {
        bail!("encoder_run {encoder_run:?} is not a run folder {RUNS_DIR}/<run>");
    };
    let mut found = configs.iter().filter(|c| c.view.name == run);
    let Some(cfg) = found.next() else {
        bail!("encoder_run {encoder_run:?}: no config in {CONFIGS_DIR}/ has name = {run:?}");
    };
    if let Some(other) = found.next() {
        bail!(
            "encoder_run {encoder_run:?}: both {:?} and {:?} are named {run:?}",
            cfg.path,
            other.path
        );
    }
    if cfg.view.task.as_deref() != Some(PRETRAIN_TASK) {
        bail!("encoder_run {encoder_run:?}: {:?} is not an {PRETRAIN_TASK} config", cfg.path);
    }
    Ok(cfg)
}
