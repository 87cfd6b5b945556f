//! Generate new CNN zoos in the Small CNN Zoo format (design.md §6.3): the zoo architecture
//! (greyscale input, 3 conv layers 3×3 stride 2 with 16 filters, activation after each, global
//! average pooling, dense 16 → 10; 4970 parameters) trained with per-network hyperparameters drawn
//! from Unterthiner et al. 2020 (arXiv 2002.11448, Table 1; see [`HyperSpace`]).
//!
//! Conventions (what differs from the reference trainer `dnn_predict_accuracy/train_network.py`):
//! - **Padding**: zero padding `kh / 2 = 1` on every side, stride 2, exactly the forward pass of
//!   [`nfn_weightspace::evaluate_cnn`] (`evaluate_cnn(wsfeat, xs, act, 2)` reproduces the logits
//!   of a trained network). The reference's Keras `Conv2D` uses its default `padding="valid"`
//!   (no padding: 32 → 15 → 7 → 3); TF's `"same"` would pad asymmetrically (0 before, 1 after)
//!   for even sizes. Our symmetric padding gives 28 → 14 → 7 → 4 and 32 → 16 → 8 → 4.
//! - **Inputs**: greyscale `[n, 1, h, w]` f32 in `[-1, 1]`, i.e. `pixel / 255` mapped to
//!   `[-1, 1]`, colour images averaged over channels afterwards ([`greyscale`]) — the reference's
//!   preprocessing and [`ImageSet`](crate::ImageSet)'s scale.
//! - **Training subsets**: each network trains on its own `int(n_train * train_fraction)` images
//!   (its own permutation), reshuffled every epoch (batches drop the remainder, as the reference);
//!   the reference used one seed (42) for all networks.
//! - **Budget**: `steps_per_epoch` may cap the steps of an epoch (for CPU); checkpoints at
//!   `epochs` (the reference: 0, 1, 2, 3, 20, 40, 60, 80, 86).
//! - **Metrics**: `test_*` on the first `eval_images` test images, `train_*` on the first
//!   `train_eval_images` of the network's subset, dropout off; losses are the mean cross-entropy
//!   plus the L2 term (what Keras reports as `loss`).
//! - **Diverged networks**: a network whose weights turn non-finite is zeroed and masked off; its
//!   checkpoints from then on are not written (the reference zoo also lacks some rows).
//! - **Determinism**: hyperparameters, initial weights, data order and (on the CPU) dropout masks
//!   depend only on (zoo seed, network index), so a network trains the same in any group (up to
//!   the rounding of grouped convolutions) and a part is reproducible; on a GPU the masks come from
//!   LibTorch's generator on the device, reseeded per group. `parts/config.json` records the
//!   trainer version ([`ZOO_TRAINER_VERSION`]).
//!
//! Output: `parts/part-NNNNNN.bin` per group of `group` networks (written atomically, skipped when
//! present and readable; `shard = (i, n)` makes the groups `g % n == i`), then [`merge_parts`]
//! writes `weights.npy`, `metrics.csv.gz`, `layout.csv`, `split.csv` and `zoo.json`.

mod config;
mod driver;
mod hyper;
mod init;
mod layout;
mod merge;
mod part;
mod trainer;

pub use config::{GenManifest, ZooDataInfo, ZooGenConfig, GEN_MANIFEST, ZOO_TRAINER_VERSION};
pub use driver::{generate_parts, greyscale, parts_dir, GenReport, ZooProgress};
pub use hyper::{sample_hyper, HyperSpace, WeightInit, ZooActivation, ZooHyper, ZooOptimizer};
pub use layout::{write_layout, wsfeat_to_tf, zoo_layout};
pub use merge::{merge_parts, MergeReport, SPLIT_FILE, ZOO_JSON};
pub use part::{part_path, CheckpointRecord, NetworkRun, Part, PARTS_DIR, PART_MAGIC};
