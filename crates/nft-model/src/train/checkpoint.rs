//! Checkpoints: model variables, optimiser moments and trainer state in one safetensors file,
//! written to a temporary file and renamed, so a kill never leaves a half-written checkpoint.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Tensor};

use super::metrics::Metric;
use super::optim::AdamW;
use super::run::{write_atomic, Run};
use crate::error::{Error, Result};

/// What the trainer needs to resume, besides tensors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Steps completed.
    pub step: u64,
    /// The best validation value so far of the selection metric, and its step.
    pub best: Option<Best>,
    /// Training wall time so far in seconds (over all resumed sessions).
    pub train_seconds: f64,
}

/// The best validation value of the selection metric so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// The selection metric.
    pub metric: Metric,
    /// Its value.
    pub value: f64,
    /// The step it was measured at.
    pub step: u64,
}

fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.detach().to_device(tch::Device::Cpu).contiguous()))
        .collect();
    nfn_weightspace::io::replace_atomically(path, |tmp| {
        Tensor::write_safetensors(&cpu, tmp).map_err(|e| e.to_string())
    })
    .map_err(|e| Error::checkpoint(path, e))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::checkpoint(path, e))?;
    write_atomic(path, text.as_bytes())
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
        .filter(|(k, _)| !k.starts_with("optim.") && k != STATE_TENSOR)
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

/// The tensor that carries the trainer state (JSON bytes) inside a full checkpoint, so that the
/// weights, the moments and the step they belong to are one file, renamed into place at once.
const STATE_TENSOR: &str = "trainer_state";

/// Save a full checkpoint: `model.*` variables, `optim.*` moments and the state to `run.last()`
/// in one atomic write; `state.json` is a readable copy of the state.
///
/// # Errors
/// [`Error::Checkpoint`] naming the file.
pub fn save_checkpoint(run: &Run, vs: &VarStore, opt: &AdamW, state: &TrainState) -> Result<()> {
    let json = serde_json::to_vec(state).map_err(|e| Error::checkpoint(run.last(), e))?;
    let mut tensors: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(k, t)| (format!("model.{k}"), t)).collect();
    tensors.extend(opt.state().into_iter().map(|(k, t)| (format!("optim.{k}"), t)));
    tensors.push((STATE_TENSOR.into(), Tensor::from_slice(&json)));
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    write_tensors(&run.last(), &tensors)?;
    write_json(&run.state(), state)
}

/// Restore a full checkpoint written by [`save_checkpoint`], if one exists.
///
/// # Errors
/// [`Error::Checkpoint`] if the file exists but is corrupt or does not fit the model.
pub fn load_checkpoint(
    run: &Run,
    vs: &mut VarStore,
    opt: &mut AdamW,
) -> Result<Option<TrainState>> {
    let last = run.last();
    if !last.exists() {
        return Ok(None);
    }
    let saved = Tensor::read_safetensors(&last).map_err(|e| Error::checkpoint(&last, e))?;
    let json = saved
        .iter()
        .find(|(k, _)| k == STATE_TENSOR)
        .map(|(_, t)| Vec::<u8>::try_from(t))
        .ok_or_else(|| Error::checkpoint(&last, "no trainer state in the checkpoint"))?
        .map_err(|e| Error::checkpoint(&last, e))?;
    let state: TrainState =
        serde_json::from_slice(&json).map_err(|e| Error::checkpoint(&last, e))?;
    load_model(vs, &last)?;
    let optim: Vec<(String, Tensor)> = saved
        .into_iter()
        .filter_map(|(k, t)| k.strip_prefix("optim.").map(|k| (k.to_string(), t)))
        .collect();
    opt.load_state(&optim).map_err(|e| Error::checkpoint(&last, e))?;
    Ok(Some(state))
}
