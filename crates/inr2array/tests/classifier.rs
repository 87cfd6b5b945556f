//! The latent classifier: shapes, a [b, D] input read as M = 1, learning on separable random
//! latents, and the latent files round trip with resumable extraction.

mod support;

use inr2array::{
    extract_latents, latent_batches, missing_chunks, read_latents, ClassifierConfig,
    Inr2ArrayEncoder, LatentBatches, TransformerClassifier,
};
use nfn_weightspace::testing::random_features;
use nfn_weightspace::{NetworkSpec, Shard};
use nft_model::{evaluate, Metric, Objective, Supervised, Task, TrainData};
use tch::nn::{OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

fn tiny() -> ClassifierConfig {
    ClassifierConfig {
        latent_dim: 8,
        d_model: 16,
        num_layers: 2,
        num_heads: 2,
        ff_dim: 32,
        head_hidden: 16,
        num_classes: 3,
        ..Default::default()
    }
}

#[test]
fn output_shapes() {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let model = TransformerClassifier::new(&vs.root(), &tiny()).expect("valid config");
    let zs = Tensor::randn([5, 4, 8], (Kind::Float, Device::Cpu));
    assert_eq!(model.forward_t(&zs, true).size(), [5, 3]);
    assert_eq!(model.forward_t(&zs.select(1, 0), false).size(), [5, 3]);
    let paper = ClassifierConfig::default();
    assert_eq!((paper.d_model, paper.num_layers, paper.ff_dim), (512, 12, 2048));
    assert!(ClassifierConfig { num_heads: 3, ..tiny() }.validate().is_err());
}

#[test]
fn learns_separable_latents() {
    tch::set_num_threads(1);
    tch::manual_seed(1);
    let vs = VarStore::new(Device::Cpu);
    let model =
        TransformerClassifier::new(&vs.root(), &ClassifierConfig { dropout: 0.0, ..tiny() })
            .expect("valid config");
    let labels = Tensor::arange(48, (Kind::Int64, Device::Cpu)).remainder(3);
    let centres = Tensor::randn([3, 4, 8], (Kind::Float, Device::Cpu)) * 2.0;
    let latents = centres.index_select(0, &labels)
        + Tensor::randn([48, 4, 8], (Kind::Float, Device::Cpu)) * 0.3;
    let task = Supervised::new(&model, Objective::CrossEntropy);
    let eval = latent_batches(&latents, &labels, 16, Device::Cpu);
    let before = evaluate(&task, &eval);
    let mut data =
        LatentBatches::new(latents.shallow_clone(), labels.shallow_clone(), 16, 0, Device::Cpu);
    let mut opt = tch::nn::AdamW::default().build(&vs, 3e-3).expect("optimiser");
    for step in 0..60 {
        let batch = data.batch(step).expect("in-memory batches");
        opt.backward_step(&task.loss(&batch, true));
    }
    let after = evaluate(&task, &eval);
    assert_eq!(after.count, 48);
    assert!(after.loss() < 0.5 * before.loss(), "{before:?} -> {after:?}");
    assert!(after.get(Metric::Accuracy).expect("classification") > 90.0, "{after:?}");
}

#[test]
fn latent_files_round_trip_and_resume() {
    tch::manual_seed(2);
    let spec = NetworkSpec::siren(1);
    let vs = VarStore::new(Device::Cpu);
    let enc = Inr2ArrayEncoder::new(&vs.root(), &spec, &support::tiny_encoder()).expect("valid");
    let sirens = random_features(&spec, 7, 1, 3).to_kind(Kind::Float).expect("float");
    let labels = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0]);
    let dir = std::env::temp_dir().join(format!("inr2array-latents-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut calls = 0;
    let mut fetch = |start: i64, len: i64| {
        calls += 1;
        Ok(sirens.index_batch(&Tensor::arange_start(
            start,
            start + len,
            (Kind::Int64, Device::Cpu),
        )))
    };
    let meta =
        extract_latents(&enc, 7, &labels, &dir, 3, 2, Shard::ALL, &mut fetch, &mut |_, _| {})
            .expect("extraction");
    assert_eq!((meta.count, meta.num_chunks()), (7, 3));
    assert_eq!(calls, 5); // chunks of 3, 3, 1 in batches of 2
    std::fs::remove_file(dir.join("chunk_00001.safetensors")).expect("chunk exists");
    let mut calls = 0;
    let mut fetch = |start: i64, len: i64| {
        calls += 1;
        Ok(sirens.index_batch(&Tensor::arange_start(
            start,
            start + len,
            (Kind::Int64, Device::Cpu),
        )))
    };
    extract_latents(&enc, 7, &labels, &dir, 3, 2, Shard::ALL, &mut fetch, &mut |_, _| {})
        .expect("resume");
    assert_eq!(calls, 2); // only the missing chunk
    let (_, latents, read_labels) = read_latents(&dir).expect("complete set");
    let direct = tch::no_grad(|| enc.forward_t(&sirens, false));
    assert!(latents.allclose(&direct, 1e-5, 1e-5, false));
    assert_eq!(read_labels, labels);
    std::fs::remove_dir_all(&dir).expect("temp dir");

    // In two parts (two processes sharing the folder): incomplete after one, the same set after both.
    let mut fetch = |start: i64, len: i64| {
        Ok(sirens.index_batch(&Tensor::arange_start(
            start,
            start + len,
            (Kind::Int64, Device::Cpu),
        )))
    };
    let parts = [Shard::new(1, 2).expect("part"), Shard::new(0, 2).expect("part")];
    extract_latents(&enc, 7, &labels, &dir, 3, 2, parts[0], &mut fetch, &mut |_, _| {})
        .expect("part 1/2");
    assert_eq!(missing_chunks(&dir).expect("meta written").1, vec![0, 2]);
    assert!(read_latents(&dir).is_err());
    extract_latents(&enc, 7, &labels, &dir, 3, 2, parts[1], &mut fetch, &mut |_, _| {})
        .expect("part 0/2");
    assert!(missing_chunks(&dir).expect("meta").1.is_empty());
    let (_, sharded, _) = read_latents(&dir).expect("complete set");
    assert!(sharded.allclose(&latents, 1e-6, 1e-6, false));
    std::fs::remove_dir_all(&dir).expect("temp dir");
}
