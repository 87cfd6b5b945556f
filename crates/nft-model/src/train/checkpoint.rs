//! Checkpoints: model variables, optimiser moments and trainer state in one safetensors file,
//! written to a temporary file and renamed, so a kill never leaves a half-written checkpoint.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Tensor};

use crate::error::{Error, Result};
use crate::optim::AdamW;

/// Where a run keeps its files.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// A run folder (created if missing).
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be created.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(RunDir { root })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The latest checkpoint (model + optimiser + state), for resuming.
    pub fn last(&self) -> PathBuf {
        self.root.join("last.safetensors")
    }

    /// The best-validation model weights.
    pub fn best(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }

    /// One JSON object per line: training and evaluation metrics.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// The trainer's progress (`state.json`).
    pub fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }
}

/// What the trainer needs to resume, besides tensors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Steps completed.
    pub step: u64,
    /// The best validation score so far (higher is better) and its step.
    pub best: Option<(f64, u64)>,
    /// Training wall time so far in seconds (over all resumed sessions).
    pub train_seconds: f64,
}

fn tmp_path(path: &Path) -> PathBuf {
    // VarStore-free safetensors writing needs the real extension; keep it and mark the name.
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".tmp-{}-{name}", std::process::id()))
}

fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let tmp = tmp_path(path);
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.detach().to_device(tch::Device::Cpu).contiguous()))
        .collect();
    Tensor::write_safetensors(&cpu, &tmp).map_err(|e| Error::checkpoint(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::checkpoint(path, e))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let tmp = tmp_path(path);
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::checkpoint(path, e))?;
    std::fs::write(&tmp, text).map_err(|e| Error::checkpoint(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::checkpoint(path, e))
}

/// Save the model's variables (only) to `path`, atomically.
///
/// # Errors
/// [`Error::Checkpoint`] naming the file.
pub fn save_model(vs: &VarStore, path: &Path) -> Result<()> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    write_tensors(path, &vars)
}

/// Load variables saved by [`save_model`] (or the `model.` part of a full checkpoint) into `vs`.
///
/// # Errors
/// [`Error::Checkpoint`] naming the file and the first missing or mis-shaped variable.
pub fn load_model(vs: &mut VarStore, path: &Path) -> Result<()> {
    let saved = Tensor::read_safetensors(path).map_err(|e| Error::checkpoint(path, e))?;
    let strip =
        |k: &str| k.strip_prefix("model.").map(str::to_string).unwrap_or_else(|| k.to_string());
    let saved: std::collections::HashMap<String, Tensor> = saved
        .into_iter()
        .filter(|(k, _)| !k.starts_with("optim."))
        .map(|(k, t)| (strip(&k), t))
        .collect();
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let src = saved
                .get(&name)
                .ok_or_else(|| Error::checkpoint(path, format!("variable {name} is missing")))?;
            if src.size() != var.size() {
                return Err(Error::checkpoint(
                    path,
                    format!(
                        "variable {name}: saved shape {:?}, model shape {:?}",
                        src.size(),
                        var.size()
                    ),
                ));
            }
            var.copy_(&src.to_kind(var.kind()).to_device(var.device()));
        }
        Ok(())
    })
}

/// Save a full checkpoint: `model.*` variables and `optim.*` moments to `run.last()`, then the state.
///
/// # Errors
/// [`Error::Checkpoint`] naming the file.
pub fn save_checkpoint(run: &RunDir, vs: &VarStore, opt: &AdamW, state: &TrainState) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(k, t)| (format!("model.{k}"), t)).collect();
    tensors.extend(opt.state().into_iter().map(|(k, t)| (format!("optim.{k}"), t)));
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    write_tensors(&run.last(), &tensors)?;
    write_json(&run.state(), state)
}

/// Restore a full checkpoint written by [`save_checkpoint`], if one exists.
///
/// # Errors
/// [`Error::Checkpoint`] if the files exist but are corrupt or do not fit the model.
pub fn load_checkpoint(
    run: &RunDir,
    vs: &mut VarStore,
    opt: &mut AdamW,
) -> Result<Option<TrainState>> {
    let (last, state_path) = (run.last(), run.state());
    if !last.exists() || !state_path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&state_path).map_err(|e| Error::checkpoint(&state_path, e))?;
    let state: TrainState =
        serde_json::from_str(&text).map_err(|e| Error::checkpoint(&state_path, e))?;
    load_model(vs, &last)?;
    let saved = Tensor::read_safetensors(&last).map_err(|e| Error::checkpoint(&last, e))?;
    let optim: Vec<(String, Tensor)> = saved
        .into_iter()
        .filter_map(|(k, t)| k.strip_prefix("optim.").map(|k| (k.to_string(), t)))
        .collect();
    opt.load_state(&optim).map_err(|e| Error::checkpoint(&last, e))?;
    Ok(Some(state))
}
