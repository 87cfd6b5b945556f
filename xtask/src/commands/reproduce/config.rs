//! The fields of an experiment config that a `cargo xtask reproduce` plan reads, and where configs
//! are found.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// The experiment configs, relative to the workspace root.
pub const CONFIGS_DIR: &str = "xtask/configs";
/// Where runs go (the default `--runs` of `cargo xtask train`), relative to the workspace root.
pub const RUNS_DIR: &str = "data/runs";
/// The `task` of Inr2Array pretraining configs.
pub const PRETRAIN_TASK: &str = "inr2array_pretrain";
/// The `task` of INR editing configs.
pub const EDIT_TASK: &str = "inr_editing";

/// The config an argument names: a bare name (no `/`) is `xtask/configs/<name>.toml`, anything
/// else a path (relative to the workspace root, as `cargo xtask train` reads it).
pub fn config_path(arg: &str) -> PathBuf {
    if arg.contains('/') {
        PathBuf::from(arg)
    } else {
        let stem = arg.strip_suffix(".toml").unwrap_or(arg);
        Path::new(CONFIGS_DIR).join(format!("{stem}.toml"))
    }
}

/// The fields of an experiment config a plan reads (the rest is `nfn`'s business).
#[derive(Debug, Deserialize)]
pub struct ConfigView {
    /// Run name: the run folder is `data/runs/<name>`.
    pub name: String,
    /// The experiment kind (`None`: INR classification).
    pub task: Option<String>,
    /// The pretraining run an `inr2array_classify` config encodes with.
    pub encoder_run: Option<String>,
    /// The original images of an editing config (default: the INR set's data set).
    pub images: Option<String>,
    /// The data section.
    #[serde(default)]
    pub data: DataView,
}

/// The fields of a config's `[data]` a plan reads.
#[derive(Debug, Default, Deserialize)]
pub struct DataView {
    /// An INR set folder.
    pub inrs: Option<String>,
    /// A CNN zoo folder.
    pub zoo: Option<String>,
    /// A zoo's split file.
    pub split: Option<String>,
    /// Whether training reads the set's augmentation copies.
    #[serde(default)]
    pub use_copies: bool,
    /// More INR sets whose training INRs join the training split.
    #[serde(default)]
    pub extra_train: Vec<String>,
}

/// A config read from disk, with its path as command lines name it.
#[derive(Debug)]
pub struct Config {
    /// The path relative to the workspace root (or absolute, as given).
    pub path: PathBuf,
    /// Its fields.
    pub view: ConfigView,
}

impl Config {
    /// Read `path` (relative to `root` unless absolute).
    pub fn read(root: &Path, path: &Path) -> Result<Self> {
        let file = root.join(path);
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {file:?}"))?;
        let view = toml::from_str(&text).with_context(|| format!("parsing {file:?}"))?;
        Ok(Config { path: path.to_path_buf(), view })
    }

    /// The config's INR set, normalised (see [`norm`]).
    pub fn inrs(&self) -> Option<&str> {
        self.view.data.inrs.as_deref().map(norm)
    }
}

/// A data path without a leading `./` or trailing `/`, as the plan compares them.
pub fn norm(path: &str) -> &str {
    path.strip_prefix("./").unwrap_or(path).trim_end_matches('/')
}

/// Every config in [`CONFIGS_DIR`], by path.
pub fn all_configs(root: &Path) -> Result<Vec<Config>> {
    let dir = root.join(CONFIGS_DIR);
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {dir:?}"))? {
        let name = entry.with_context(|| format!("listing {dir:?}"))?.file_name();
        if Path::new(&name).extension().is_some_and(|e| e == "toml") {
            paths.push(Path::new(CONFIGS_DIR).join(name));
        }
    }
    paths.sort();
    paths.iter().map(|p| Config::read(root, p)).collect()
}
