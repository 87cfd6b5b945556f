//! Time the batched zoo trainer on 28x28 FashionMNIST: one group of `group` CNNs, `steps`
//! optimizer steps at batch `batch`, then one small checkpoint. Prints one JSON line: CNNs per
//! second (networks finishing `steps` steps per wall second of training), CNN-steps per second,
//! and the settings.
//!
//! `cargo run --release -p nfn-datasets --example zoo_gen_bench -- [group=256] [steps=100]
//!  [batch=32] [threads=2] [max_dropout=0.7] [act=relu]`
//! Needs FashionMNIST in /usr/share/datasets/fashion-mnist (`cargo xtask setup`).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use nfn_datasets::cnn_zoo::generate::{generate_parts, HyperSpace, ZooActivation, ZooGenConfig};
use nfn_datasets::{ImageSet, DEFAULT_FASHION_MNIST_DIR};

fn main() -> Result<()> {
    // the allocator `nfn make-zoo` runs under (jemalloc, purging off, where installed)
    nfn_weightspace::runtime::reexec_with_tuned_malloc();
    let (mut group, mut steps, mut batch, mut threads) = (256usize, 100usize, 32i64, 2i32);
    let mut space = HyperSpace::default();
    for arg in std::env::args().skip(1) {
        let (key, value) = arg.split_once('=').with_context(|| format!("{arg}: want key=value"))?;
        match key {
            "group" => group = value.parse()?,
            "steps" => steps = value.parse()?,
            "batch" => batch = value.parse()?,
            "threads" => threads = value.parse()?,
            "max_dropout" => space.dropout[1] = value.parse()?,
            "act" if value == "relu" => space.activations = vec![ZooActivation::Relu],
            _ => bail!("unknown option {key}"),
        }
    }
    tch::set_num_threads(threads);
    let set = ImageSet::fashion_mnist(DEFAULT_FASHION_MNIST_DIR)
        .with_context(|| format!("reading {DEFAULT_FASHION_MNIST_DIR}"))?;
    let n_train = set.n_train;
    let (train_x, train_y) = (set.images.narrow(0, 0, n_train), set.labels.narrow(0, 0, n_train));
    let n_test = set.len() - n_train;
    let (test_x, test_y) =
        (set.images.narrow(0, n_train, n_test), set.labels.narrow(0, n_train, n_test));
    let cfg = ZooGenConfig {
        dataset: "fashion_mnist".into(),
        networks: group,
        group,
        batch_size: batch,
        epochs: vec![1],
        steps_per_epoch: Some(steps),
        eval_images: Some(256),
        train_eval_images: Some(256),
        space,
        ..Default::default()
    };
    let dir = tempfile::tempdir()?;
    let (mut first, mut last) = (None, None);
    let start = Instant::now();
    let report =
        generate_parts(&train_x, &train_y, &test_x, &test_y, &cfg, dir.path(), None, &mut |p| {
            if p.step == 1 && first.is_none() {
                first = Some(Instant::now());
            }
            if p.step == p.steps_total && p.steps_total > 0 && last.is_none() {
                last = Some(Instant::now());
            }
        })?;
    let total = start.elapsed().as_secs_f64();
    let (first, last) = (first.context("no step reported")?, last.context("no end reported")?);
    // Steps 2..=steps took (last - first); scale to `steps` steps.
    let train_s =
        last.duration_since(first).as_secs_f64() * steps as f64 / (steps - 1).max(1) as f64;
    println!(
        "{{\"cnns_per_s\":{:.2},\"cnn_steps_per_s\":{:.0},\"steps\":{steps},\"group\":{group},\
         \"batch\":{batch},\"threads\":{threads},\"train_s\":{train_s:.2},\"total_s\":{total:.2},\
         \"diverged\":{}}}",
        group as f64 / train_s,
        (group * steps) as f64 / train_s,
        report.networks_diverged
    );
    Ok(())
}
