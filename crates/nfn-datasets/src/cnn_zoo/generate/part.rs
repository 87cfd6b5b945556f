//! One part of a generated zoo: the trained networks of one group, with their checkpoints, in our
//! framed binary format (magic, length, CRC-32, bincode), written atomically under `parts/`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::hyper::ZooHyper;
use crate::error::{Error, Result};

/// The first bytes of every part file.
pub const PART_MAGIC: &[u8; 8] = b"NFNZOOP1";
/// The folder of part files inside a zoo folder.
pub const PARTS_DIR: &str = "parts";

/// One checkpoint of one network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Epoch of the checkpoint (0 = initialisation); the `step` column.
    pub epoch: usize,
    /// Accuracy on the evaluated test images.
    pub test_accuracy: f64,
    /// Mean cross-entropy on them plus the L2 term (as Keras reports `loss`).
    pub test_loss: f64,
    /// Accuracy on the evaluated training images (no dropout).
    pub train_accuracy: f64,
    /// Mean cross-entropy on them plus the L2 term.
    pub train_loss: f64,
    /// Parameters in the TensorFlow layout of `layout.csv`, 4970 values.
    pub weights: Vec<f32>,
}

/// One network's run: its hyperparameters and its finite checkpoints, in epoch order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRun {
    /// Hyperparameters (`hyper.index` is the network index).
    pub hyper: ZooHyper,
    /// The first checkpoint epoch at which its weights or metrics were no longer finite.
    pub diverged_at: Option<usize>,
    /// The checkpoints recorded before that (all of them if it never diverged).
    pub checkpoints: Vec<CheckpointRecord>,
}

/// A part file: group `group`, networks `first..first + networks.len()` in index order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Group index.
    pub group: usize,
    /// Index of its first network.
    pub first: usize,
    /// The networks, in index order.
    pub networks: Vec<NetworkRun>,
}

/// The file name of group `group`'s part.
pub fn part_file_name(group: usize) -> String {
    format!("part-{group:06}.bin")
}

/// The path of group `group`'s part inside the zoo folder `dir`.
pub fn part_path(dir: &Path, group: usize) -> PathBuf {
    dir.join(PARTS_DIR).join(part_file_name(group))
}

impl Part {
    /// Read and check a part file: it must be group `group` with networks `range`, each with
    /// 4970 weights per checkpoint.
    ///
    /// # Errors
    /// [`Error::File`] naming the file if it is missing, torn, corrupt or another group's.
    pub fn read(path: &Path, group: usize, range: std::ops::Range<usize>) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::file(path, format!("cannot read zoo part: {e}")))?;
        let part: Part = crate::framing::unframe(&bytes, PART_MAGIC, "a zoo part", path)?;
        let indices_ok = part.networks.iter().map(|n| n.hyper.index).eq(range.clone());
        if part.group != group || part.first != range.start || !indices_ok {
            return Err(Error::file(
                path,
                format!(
                    "holds group {} (networks from {}), expected group {group} ({range:?})",
                    part.group, part.first
                ),
            ));
        }
        let sizes_ok = part
            .networks
            .iter()
            .flat_map(|n| &n.checkpoints)
            .all(|c| c.weights.len() == crate::cnn_zoo::ZOO_NUM_PARAMS as usize);
        if !sizes_ok {
            return Err(Error::file(path, "a checkpoint does not hold 4970 weights"));
        }
        Ok(part)
    }

    /// Write the part to `path` atomically (temporary file, then rename).
    ///
    /// # Errors
    /// [`Error::File`] naming the file if it cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = crate::framing::frame(PART_MAGIC, self);
        nfn_weightspace::io::write_atomically(path, |out| {
            std::io::Write::write_all(out, &bytes).map_err(|e| e.to_string())
        })?;
        Ok(())
    }
}
