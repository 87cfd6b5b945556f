//! Merge a generated zoo's parts into the Small CNN Zoo files: `weights.npy` (`[rows, 4970]` f32,
//! TF layout, rows network-major in checkpoint order), `metrics.csv.gz` (the reference's columns,
//! one row per weight row), `layout.csv`, `split.csv` and `zoo.json`, each written atomically.
//!
//! Split rule: `split.csv` lists every row, network by network in a seeded shuffle of the network
//! indices. The loader keeps each network's final-step row only, so every network that reached
//! the final checkpoint lands in exactly one split (test = second half of that shuffled order,
//! the first half cut 80/20 after Python's `Random(0)` shuffle). The file has no header line.
//!
//! Metric columns as the reference (plus its unnamed pandas index column first): `step` is the
//! epoch, `laststep` is `True` on final-epoch rows, `config.b_init` is `zeros`,
//! `config.random_seed` is the zoo seed, `config.epochs_between_checkpoints` the gap between the
//! last two checkpoints, `modeldir` is `net-NNNNNN` (the network index).

use std::io::Write;
use std::path::Path;

use rand::seq::SliceRandom;
use serde::Serialize;

use super::config::{GenManifest, ZooDataInfo, ZooGenConfig};
use super::hyper::{stream_rng, Stream, ZooHyper};
use super::layout::write_layout;
use super::part::{part_path, CheckpointRecord, Part, PARTS_DIR};
use crate::cnn_zoo::ZOO_NUM_PARAMS;
use crate::error::{Error, Result};

/// The permutation file a merged zoo is loaded with.
pub const SPLIT_FILE: &str = "split.csv";
/// The description of a merged zoo.
pub const ZOO_JSON: &str = "zoo.json";

/// The `metrics.csv.gz` header: pandas' unnamed index column, then the reference's columns.
const METRIC_COLUMNS: [&str; 24] = [
    "",
    "config.activation",
    "config.b_init",
    "config.dataset",
    "config.dnn_architecture",
    "config.dropout",
    "config.epochs",
    "config.epochs_between_checkpoints",
    "config.init_std",
    "config.l2reg",
    "config.learning_rate",
    "config.num_layers",
    "config.num_units",
    "config.optimizer",
    "config.random_seed",
    "config.train_fraction",
    "config.w_init",
    "modeldir",
    "step",
    "test_accuracy",
    "test_loss",
    "train_accuracy",
    "train_loss",
    "laststep",
];

/// What [`merge_parts`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeReport {
    /// Networks in the zoo.
    pub networks: usize,
    /// Rows of `weights.npy` / `metrics.csv.gz`.
    pub rows: usize,
    /// Networks without a final-epoch row (diverged), which no split holds.
    pub diverged: Vec<usize>,
    /// Networks in the train split.
    pub train: usize,
    /// Networks in the validation split.
    pub val: usize,
    /// Networks in the test split.
    pub test: usize,
}

#[derive(Serialize)]
struct ZooJson<'a> {
    format: &'static str,
    conventions: [&'static str; 4],
    config: &'a ZooGenConfig,
    data: &'a ZooDataInfo,
    report: &'a MergeReport,
}

/// Read every part, or fail listing the missing ones.
fn check_parts(dir: &Path, cfg: &ZooGenConfig) -> Result<()> {
    let missing: Vec<String> = (0..cfg.groups())
        .filter(|&g| !part_path(dir, g).exists())
        .map(|g| format!("{} (networks {:?})", super::part::part_file_name(g), cfg.group_range(g)))
        .collect();
    if !missing.is_empty() {
        return Err(Error::file(
            dir.join(PARTS_DIR),
            format!("{} of {} parts missing: {}", missing.len(), cfg.groups(), missing.join(", ")),
        ));
    }
    Ok(())
}

fn read_part(dir: &Path, cfg: &ZooGenConfig, g: usize) -> Result<Part> {
    Part::read(&part_path(dir, g), g, cfg.group_range(g))
}

/// The `.npy` header of an f32 C-order `[rows, cols]` array (format 1.0, 64-byte aligned).
fn npy_header(rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let unpadded = 10 + dict.len() + 1;
    let mut header = dict.into_bytes();
    header.resize(header.len() + (64 - unpadded % 64) % 64, b' ');
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header);
    out
}

fn metric_row(
    cfg: &ZooGenConfig,
    hyper: &ZooHyper,
    row: usize,
    c: &CheckpointRecord,
) -> Vec<String> {
    let gap = match cfg.epochs.as_slice() {
        [.., a, b] => b - a,
        _ => cfg.final_epoch(),
    };
    vec![
        row.to_string(),
        hyper.activation.name().into(),
        "zeros".into(),
        cfg.dataset.clone(),
        "cnn".into(),
        hyper.dropout.to_string(),
        cfg.final_epoch().to_string(),
        gap.to_string(),
        hyper.init_std.to_string(),
        hyper.l2reg.to_string(),
        hyper.learning_rate.to_string(),
        "3".into(),
        "16".into(),
        hyper.optimizer.name().into(),
        cfg.seed.to_string(),
        hyper.train_fraction.to_string(),
        hyper.w_init.name().into(),
        format!("net-{:06}", hyper.index),
        c.epoch.to_string(),
        c.test_accuracy.to_string(),
        c.test_loss.to_string(),
        c.train_accuracy.to_string(),
        c.train_loss.to_string(),
        if c.epoch == cfg.final_epoch() { "True" } else { "False" }.into(),
    ]
}

/// Merge the parts in `dir/parts/` into the zoo files in `dir` (see the module docs).
///
/// # Errors
/// [`Error::File`] naming `dir/parts` and every missing part (with its networks) if any is
/// missing, naming a part that is torn or another zoo's, or naming an output that cannot be
/// written.
pub fn merge_parts(dir: &Path) -> Result<MergeReport> {
    let manifest = GenManifest::read(dir)?;
    let cfg = &manifest.config;
    check_parts(dir, cfg)?;
    // Pass 1: metrics and row numbers, without keeping the weights.
    let mut metrics: Vec<Vec<String>> = Vec::new();
    let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); cfg.networks];
    let mut diverged = Vec::new();
    for g in 0..cfg.groups() {
        for run in read_part(dir, cfg, g)?.networks {
            let i = run.hyper.index;
            if run.checkpoints.last().is_none_or(|c| c.epoch != cfg.final_epoch()) {
                diverged.push(i);
            }
            for c in &run.checkpoints {
                rows_of[i].push(metrics.len());
                metrics.push(metric_row(cfg, &run.hyper, metrics.len(), c));
            }
        }
    }
    let rows = metrics.len();
    // Pass 2: stream the weights.
    nfn_weightspace::io::write_atomically(&dir.join("weights.npy"), |out| {
        out.write_all(&npy_header(rows, ZOO_NUM_PARAMS as usize)).map_err(|e| e.to_string())?;
        for g in 0..cfg.groups() {
            let part = read_part(dir, cfg, g).map_err(|e| e.to_string())?;
            for c in part.networks.iter().flat_map(|n| &n.checkpoints) {
                let bytes: Vec<u8> = c.weights.iter().flat_map(|w| w.to_le_bytes()).collect();
                out.write_all(&bytes).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })?;
    nfn_weightspace::io::write_atomically(&dir.join("metrics.csv.gz"), |out| {
        let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        let mut writer = csv::Writer::from_writer(gz);
        writer.write_record(METRIC_COLUMNS).map_err(|e| e.to_string())?;
        for record in &metrics {
            writer.write_record(record).map_err(|e| e.to_string())?;
        }
        let gz = writer.into_inner().map_err(|e| e.to_string())?;
        gz.finish().map(|_| ()).map_err(|e| e.to_string())
    })?;
    write_layout(&dir.join("layout.csv"))?;
    // The split permutation: every row, networks in a seeded shuffled order.
    let mut order: Vec<usize> = (0..cfg.networks).collect();
    order.shuffle(&mut stream_rng(cfg.seed, 0, Stream::Split));
    let mut text = String::new();
    for &i in &order {
        for r in &rows_of[i] {
            text += &format!("{r}\n");
        }
    }
    nfn_weightspace::io::write_atomically(&dir.join(SPLIT_FILE), |out| {
        out.write_all(text.as_bytes()).map_err(|e| e.to_string())
    })?;
    let kept = cfg.networks - diverged.len();
    let half = kept / 2;
    let train = (0.8 * half as f64) as usize;
    let report = MergeReport {
        networks: cfg.networks,
        rows,
        diverged,
        train,
        val: half - train,
        test: kept - half,
    };
    let json = ZooJson {
        format: "Small CNN Zoo (Unterthiner et al. 2020), generated by nfn-datasets",
        conventions: [
            "conv: 3x3, stride 2, zero padding 1 on every side (nfn_weightspace::evaluate_cnn)",
            "inputs: greyscale [n, 1, h, w], pixel / 255 mapped to [-1, 1], channel mean",
            "losses: mean cross-entropy + l2reg * sum(kernel^2); metrics without dropout",
            "split.csv: every row, networks in a seeded shuffle; no header line",
        ],
        config: cfg,
        data: &manifest.data,
        report: &report,
    };
    let json = serde_json::to_string_pretty(&json).expect("the zoo description serialises");
    nfn_weightspace::io::write_atomically(&dir.join(ZOO_JSON), |out| {
        out.write_all(json.as_bytes()).map_err(|e| e.to_string())
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_parsable() {
        let h = npy_header(12, 4970);
        assert_eq!(h.len() % 64, 0);
        assert_eq!(h.last(), Some(&b'\n'));
        let text = String::from_utf8_lossy(&h[10..]);
        assert!(text.contains("'shape': (12, 4970)"));
    }
}
