//! Latent extraction for a whole split and the batches the classifier trains on (design.md §5.5).
//!
//! A latent set is a folder: `meta.json` (count, chunk size, `M`, `D`) and one
//! `chunk_<i>.safetensors` per chunk holding `latents` `[n, M, D]` f32 and `labels` `[n]` i64.
//! Chunks are written to a temp file and renamed, and chunks already present are skipped, so an
//! interrupted extraction resumes.

use std::path::{Path, PathBuf};

use nfn_weightspace::{Shard, WeightSpaceFeatures};
use nft_model::{Batch, TrainData};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::encoder::Inr2ArrayEncoder;
use crate::error::{Error, Result};

/// What a latent folder holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatentMeta {
    /// Networks encoded.
    pub count: i64,
    /// Networks per chunk file (the last may hold fewer).
    pub chunk_size: i64,
    /// Latents per network `M`.
    pub num_latents: i64,
    /// Latent width `D`.
    pub latent_dim: i64,
}

impl LatentMeta {
    /// Number of chunk files.
    pub fn num_chunks(&self) -> i64 {
        (self.count + self.chunk_size - 1) / self.chunk_size
    }
}

fn chunk_path(dir: &Path, i: i64) -> PathBuf {
    dir.join(format!("chunk_{i:05}.safetensors"))
}

fn meta_path(dir: &Path) -> PathBuf {
    dir.join("meta.json")
}

/// Encode `count` networks into `dir` (eval mode, no gradients, `batch_size` at a time).
/// `fetch(start, len)` returns networks `start..start+len`; `labels` `[count]` are stored beside
/// them. `on_chunk(done, total)` is called after each chunk of this part.
///
/// `part` selects the chunks this process writes ([`Shard::takes`] on the chunk index;
/// [`Shard::ALL`] for all): `n` processes sharing `dir` with parts `0/n .. n-1/n` together write
/// the set one process writes, and [`missing_chunks`] tells when it is complete.
///
/// # Errors
/// [`Error::File`] if `dir` holds a latent set of another shape; data errors from `fetch`; I/O.
#[allow(clippy::too_many_arguments)]
pub fn extract_latents(
    encoder: &Inr2ArrayEncoder,
    count: i64,
    labels: &Tensor,
    dir: &Path,
    chunk_size: i64,
    batch_size: i64,
    part: Shard,
    fetch: &mut dyn FnMut(i64, i64) -> Result<WeightSpaceFeatures>,
    on_chunk: &mut dyn FnMut(i64, i64),
) -> Result<LatentMeta> {
    if chunk_size < 1 || batch_size < 1 || labels.size() != [count] {
        return Err(Error::Config(format!(
            "bad extraction sizes: chunk {chunk_size}, batch {batch_size}, {count} networks, labels {:?}",
            labels.size()
        )));
    }
    let cfg = encoder.config();
    let meta =
        LatentMeta { count, chunk_size, num_latents: cfg.num_latents, latent_dim: cfg.latent_dim };
    std::fs::create_dir_all(dir)?;
    let meta_file = meta_path(dir);
    if meta_file.exists() {
        let old: LatentMeta = serde_json::from_str(&std::fs::read_to_string(&meta_file)?)?;
        if old != meta {
            return Err(Error::file(
                dir,
                format!("holds latents {old:?}, not {meta:?}; remove the folder"),
            ));
        }
    } else {
        let json = serde_json::to_string_pretty(&meta)?;
        // Atomic: processes writing other parts may be reading it.
        nfn_weightspace::io::write_atomically(&meta_file, |out| {
            std::io::Write::write_all(out, json.as_bytes()).map_err(|e| e.to_string())
        })?;
    }
    let mine: Vec<i64> = (0..meta.num_chunks()).filter(|&i| part.takes(i as usize)).collect();
    let total = mine.len() as i64;
    for (done, i) in mine.into_iter().enumerate() {
        let path = chunk_path(dir, i);
        if !path.exists() {
            let start = i * chunk_size;
            let len = chunk_size.min(count - start);
            let parts = tch::no_grad(|| -> Result<Vec<Tensor>> {
                let mut parts = Vec::new();
                let mut at = start;
                while at < start + len {
                    let n = batch_size.min(start + len - at);
                    let wsfeat = fetch(at, n)?;
                    parts.push(
                        encoder.forward_t(&wsfeat, false).to_kind(Kind::Float).to(Device::Cpu),
                    );
                    at += n;
                }
                Ok(parts)
            })?;
            let latents = Tensor::cat(&parts, 0);
            let chunk_labels = labels.narrow(0, start, len).to_kind(Kind::Int64).to(Device::Cpu);
            nfn_weightspace::io::replace_atomically(&path, |tmp| {
                Tensor::write_safetensors(&[("latents", &latents), ("labels", &chunk_labels)], tmp)
                    .map_err(|e| e.to_string())
            })
            .map_err(|message| nfn_weightspace::Error::file(&path, message))?;
        }
        on_chunk(done as i64 + 1, total);
    }
    Ok(meta)
}

/// The latent set in `dir` and the indices of its chunks not written yet (empty: complete).
///
/// # Errors
/// [`Error::File`] naming `meta.json` if there is no latent set in `dir`.
pub fn missing_chunks(dir: &Path) -> Result<(LatentMeta, Vec<i64>)> {
    let meta_file = meta_path(dir);
    let text = std::fs::read_to_string(&meta_file)
        .map_err(|e| Error::file(&meta_file, format!("no latent set here ({e})")))?;
    let meta: LatentMeta = serde_json::from_str(&text)
        .map_err(|e| Error::file(&meta_file, format!("not a latent set description: {e}")))?;
    let missing = (0..meta.num_chunks()).filter(|&i| !chunk_path(dir, i).exists()).collect();
    Ok((meta, missing))
}

/// Read a complete latent set: `([count, M, D] f32, [count] i64)` on the CPU.
///
/// # Errors
/// [`Error::File`] for a missing or incomplete folder or a chunk of the wrong shape.
pub fn read_latents(dir: &Path) -> Result<(LatentMeta, Tensor, Tensor)> {
    let meta_file = meta_path(dir);
    let text = std::fs::read_to_string(&meta_file)
        .map_err(|e| Error::file(&meta_file, format!("no latent set here ({e})")))?;
    let meta: LatentMeta = serde_json::from_str(&text)?;
    let (mut latents, mut labels) = (Vec::new(), Vec::new());
    for i in 0..meta.num_chunks() {
        let path = chunk_path(dir, i);
        if !path.exists() {
            return Err(Error::file(&path, "missing chunk: rerun the extraction"));
        }
        let mut named = Tensor::read_safetensors(&path)?;
        named.sort_by(|a, b| a.0.cmp(&b.0));
        match named.as_slice() {
            [(l, ys), (z, zs)] if l == "labels" && z == "latents" => {
                labels.push(ys.shallow_clone());
                latents.push(zs.shallow_clone());
            }
            _ => return Err(Error::file(&path, "expected tensors `latents` and `labels`")),
        }
    }
    let (latents, labels) = (Tensor::cat(&latents, 0), Tensor::cat(&labels, 0));
    if latents.size() != [meta.count, meta.num_latents, meta.latent_dim]
        || labels.size() != [meta.count]
    {
        return Err(Error::file(
            dir,
            format!("chunks hold {:?} latents, meta says {meta:?}", latents.size()),
        ));
    }
    Ok((meta, latents, labels))
}

/// Evaluation batches of latents, in order.
pub fn latent_batches(
    latents: &Tensor,
    labels: &Tensor,
    batch_size: i64,
    device: Device,
) -> Vec<Batch<Tensor>> {
    let n = labels.size()[0];
    (0..n)
        .step_by(batch_size.max(1) as usize)
        .map(|start| {
            let len = batch_size.min(n - start);
            Batch {
                inputs: latents.narrow(0, start, len).to_device(device),
                targets: labels.narrow(0, start, len).to_device(device),
            }
        })
        .collect()
}

/// splitmix64: a tiny seeded generator for epoch orders.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Training batches of latents as a pure function of the step: epoch `e` visits the set in an order
/// seeded by `(seed, e)`, dropping the last partial batch (the reference's shuffle + drop_last).
#[derive(Debug)]
pub struct LatentBatches {
    latents: Tensor,
    labels: Tensor,
    batch_size: i64,
    seed: u64,
    device: Device,
    epoch: Option<(u64, Vec<i64>)>,
}

impl LatentBatches {
    /// Batches of `latents` `[n, M, D]` with `labels` `[n]`.
    pub fn new(
        latents: Tensor,
        labels: Tensor,
        batch_size: i64,
        seed: u64,
        device: Device,
    ) -> Self {
        LatentBatches { latents, labels, batch_size, seed, device, epoch: None }
    }

    /// Full batches per epoch.
    pub fn per_epoch(&self) -> u64 {
        (self.labels.size()[0] / self.batch_size).max(1) as u64
    }
}

impl TrainData<Tensor> for LatentBatches {
    fn batch(&mut self, step: u64) -> nft_model::Result<Batch<Tensor>> {
        let n = self.labels.size()[0];
        let per_epoch = self.per_epoch();
        let (epoch, pos) = (step / per_epoch, step % per_epoch);
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut state = self.seed ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03);
            let mut order: Vec<i64> = (0..n).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, (splitmix64(&mut state) % (i as u64 + 1)) as usize);
            }
            self.epoch = Some((epoch, order));
        }
        let order = &self.epoch.as_ref().expect("set above").1;
        let b = self.batch_size.min(n) as usize;
        let idx = Tensor::from_slice(&order[pos as usize * b..(pos as usize + 1) * b]);
        Ok(Batch {
            inputs: self.latents.index_select(0, &idx).to_device(self.device),
            targets: self.labels.index_select(0, &idx).to_device(self.device),
        })
    }
}
