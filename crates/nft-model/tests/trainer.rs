//! The trainer learns, resumes exactly after an interruption, and stops clearly on a NaN loss.

use nfn_weightspace::testing::random_features;
use nfn_weightspace::NetworkSpec;
use nft_model::*;
use tch::{nn::VarStore, Device, Kind, Tensor};

/// LibTorch's random generator is global and tests run on parallel threads: tests that depend on
/// seeded dropout take this lock.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Synthetic task: the class is whether the mean of the last bias is positive.
struct Synthetic {
    spec: NetworkSpec,
    fail_at: Option<u64>,
    nan_at: Option<u64>,
}

fn make_batch(spec: &NetworkSpec, seed: u64, b: i64) -> Batch {
    let ws = random_features(spec, b, 1, seed).to_kind(Kind::Float).unwrap();
    let last = ws.num_layers() - 1;
    let targets =
        ws.bias(last).mean_dim([1, 2].as_slice(), false, Kind::Float).gt(0.0).to_kind(Kind::Int64);
    Batch { inputs: ws, targets }
}

impl TrainData for Synthetic {
    fn batch(&mut self, step: u64) -> Result<Batch> {
        if self.fail_at == Some(step) {
            return Err(Error::Config("simulated crash".into()));
        }
        let batch = make_batch(&self.spec, 1000 + step, 16);
        if self.nan_at == Some(step) {
            let _ = batch.inputs.weight(0).get(0).get(0).get(0).get(0).fill_(f64::NAN);
        }
        Ok(batch)
    }
}

fn config(steps: u64) -> TrainerConfig {
    TrainerConfig {
        steps,
        eval_every: 5,
        log_every: 1,
        seed: 3,
        optim: OptimConfig { lr: 1e-3, warmup_steps: 3, ..Default::default() },
        ..Default::default()
    }
}

fn model(vs: &VarStore, spec: &NetworkSpec) -> MlpOnWeights {
    let cfg = MlpConfig { mlp: MlpHeadConfig { hidden: vec![32], dropout: 0.1 } };
    MlpOnWeights::new(&vs.root(), spec, 2, &cfg)
}

fn weights(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn learns_a_simple_rule() -> anyhow::Result<()> {
    let _guard = SEEDED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let spec = NetworkSpec::mlp(&[2, 4, 1])?;
    let dir = tempfile::tempdir()?;
    tch::manual_seed(0);
    let mut vs = VarStore::new(Device::Cpu);
    let m = model(&vs, &spec);
    let val: Vec<Batch> = (0..4).map(|i| make_batch(&spec, i, 64)).collect();
    let test: Vec<Batch> = (4..8).map(|i| make_batch(&spec, i, 64)).collect();
    let cfg = TrainerConfig {
        eval_every: 100,
        optim: OptimConfig { lr: 3e-3, ..config(0).optim },
        ..config(300)
    };
    let mut data = Synthetic { spec: spec.clone(), fail_at: None, nan_at: None };
    let run = RunDir::create(dir.path())?;
    let summary = train(
        &Supervised { model: &m, objective: cfg.objective },
        &mut vs,
        &cfg,
        &run,
        &mut data,
        EvalSplits { val: &val, test: &test },
        &mut |_| {},
    )?;
    let acc = summary.test.accuracy.expect("classification");
    assert!(acc > 0.85, "test accuracy {acc}");
    assert_eq!(summary.test.count, 256);
    let metrics = std::fs::read_to_string(run.metrics())?;
    assert!(metrics.lines().any(|l| l.contains("\"split\":\"test\"")));
    Ok(())
}

#[test]
fn resume_after_a_crash_matches_an_uninterrupted_run() -> anyhow::Result<()> {
    let _guard = SEEDED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let spec = NetworkSpec::mlp(&[2, 3, 1])?;
    let val: Vec<Batch> = (0..2).map(|i| make_batch(&spec, i, 8)).collect();
    let splits = EvalSplits { val: &val, test: &val };
    let cfg = config(20);
    let fresh = || {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let m = model(&vs, &spec);
        (vs, m)
    };

    let dir_a = tempfile::tempdir()?;
    let (mut vs_a, m_a) = fresh();
    let mut data = Synthetic { spec: spec.clone(), fail_at: None, nan_at: None };
    train(
        &Supervised { model: &m_a, objective: cfg.objective },
        &mut vs_a,
        &cfg,
        &RunDir::create(dir_a.path())?,
        &mut data,
        splits,
        &mut |_| {},
    )?;

    let dir_b = tempfile::tempdir()?;
    let run_b = RunDir::create(dir_b.path())?;
    let (mut vs_b, m_b) = fresh();
    let mut crashing = Synthetic { spec: spec.clone(), fail_at: Some(12), nan_at: None };
    assert!(train(
        &Supervised { model: &m_b, objective: cfg.objective },
        &mut vs_b,
        &cfg,
        &run_b,
        &mut crashing,
        splits,
        &mut |_| {}
    )
    .is_err());
    // A new process: fresh model, same run folder.
    let (mut vs_c, m_c) = fresh();
    let mut data = Synthetic { spec: spec.clone(), fail_at: None, nan_at: None };
    let summary = train(
        &Supervised { model: &m_c, objective: cfg.objective },
        &mut vs_c,
        &cfg,
        &run_b,
        &mut data,
        splits,
        &mut |_| {},
    )?;
    assert_eq!(summary.steps, 20);
    for ((name, a), (_, c)) in weights(&vs_a).iter().zip(weights(&vs_c).iter()) {
        let d = (a - c).abs().max().double_value(&[]);
        assert!(a.allclose(c, 1e-6, 1e-7, false), "{name} differs after resume by {d}");
    }
    // The metrics file has each step once.
    let text = std::fs::read_to_string(run_b.metrics())?;
    let train_steps: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["split"] == "train")
        .filter_map(|v| v["step"].as_u64())
        .collect();
    assert_eq!(train_steps, (1..=20).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn nan_loss_stops_with_step_and_keeps_the_checkpoint() -> anyhow::Result<()> {
    let _guard = SEEDED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let spec = NetworkSpec::mlp(&[2, 3, 1])?;
    let val: Vec<Batch> = (0..2).map(|i| make_batch(&spec, i, 8)).collect();
    let dir = tempfile::tempdir()?;
    let run = RunDir::create(dir.path())?;
    tch::manual_seed(0);
    let mut vs = VarStore::new(Device::Cpu);
    let m = model(&vs, &spec);
    let mut data = Synthetic { spec: spec.clone(), fail_at: None, nan_at: Some(7) };
    let err = train(
        &Supervised { model: &m, objective: Objective::CrossEntropy },
        &mut vs,
        &config(20),
        &run,
        &mut data,
        EvalSplits { val: &val, test: &val },
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, Error::NonFiniteLoss { step: 7, last_checkpoint: Some(5), .. }), "{err}");
    assert!(err.to_string().contains("step 7"));
    let state: TrainState = serde_json::from_str(&std::fs::read_to_string(run.state())?)?;
    assert_eq!(state.step, 5);
    let mut vs2 = VarStore::new(Device::Cpu);
    let _ = model(&vs2, &spec);
    load_model(&mut vs2, &run.last())?;
    Ok(())
}

#[test]
fn corrupt_checkpoint_names_the_file() -> anyhow::Result<()> {
    let spec = NetworkSpec::mlp(&[2, 3, 1])?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"not a safetensors file")?;
    let mut vs = VarStore::new(Device::Cpu);
    let _ = model(&vs, &spec);
    let err = load_model(&mut vs, &path).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    Ok(())
}

#[test]
fn mlp_output_shape() {
    let spec = NetworkSpec::siren(1);
    let vs = VarStore::new(Device::Cpu);
    let m = model(&vs, &spec);
    let ws = random_features(&spec, 3, 1, 0).to_kind(Kind::Float).unwrap();
    assert_eq!(m.forward_t(&ws, false).size(), vec![3, 2]);
    let _ = Tensor::zeros([1], (Kind::Float, Device::Cpu));
}

#[test]
fn a_time_limit_stops_early_with_a_validated_checkpoint() -> anyhow::Result<()> {
    let _guard = SEEDED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let spec = NetworkSpec::mlp(&[2, 3, 1])?;
    let val: Vec<Batch> = (0..2).map(|i| make_batch(&spec, i, 8)).collect();
    let dir = tempfile::tempdir()?;
    let run = RunDir::create(dir.path())?;
    let mut vs = VarStore::new(Device::Cpu);
    let m = model(&vs, &spec);
    let mut data = Synthetic { spec: spec.clone(), fail_at: None, nan_at: None };
    // A limit this small stops after the first step.
    let cfg = TrainerConfig { time_limit_minutes: Some(1e-9), ..config(1000) };
    let task = Supervised { model: &m, objective: Objective::CrossEntropy };
    let summary = train(
        &task,
        &mut vs,
        &cfg,
        &run,
        &mut data,
        EvalSplits { val: &val, test: &val },
        &mut |_| {},
    )?;
    assert_eq!(summary.steps, 1);
    assert_eq!(summary.best.map(|b| b.1), Some(1));
    assert!(run.last().exists() && run.best().exists());
    Ok(())
}
