//! The trainer learns, resumes exactly after an interruption, and stops clearly on a NaN loss.

use nfn_weightspace::testing::random_features;
use nfn_weightspace::NetworkSpec;
use nft_model::*;
use tch::{nn::VarStore, Device, Kind, Tensor};

/// LibTorch's random generator is global and tests run on parallel threads. The trainer reseeds it
/// every step and model initialisation draws from it, so every test that trains or builds a model
/// takes this lock; one that did not made the exact-resume test flaky.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seeded() -> std::sync::MutexGuard<'static, ()> {
    SEEDED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

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
            return Err(Error::data(std::io::Error::other("simulated crash")));
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
    let cfg =
        MlpConfig { mlp: MlpHeadConfig { hidden: vec![32], dropout: 0.1, ..Default::default() } };
    MlpOnWeights::new(&vs.root(), spec, 2, &cfg)
}

fn weights(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn learns_a_simple_rule() -> anyhow::Result<()> {
    let _guard = seeded();
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
    let run = Run::claim(dir.path(), &serde_json::json!({"name": "test"}))?;
    let summary = train(
        &Supervised::new(&m, cfg.objective),
        &mut vs,
        &cfg,
        &run,
        &mut data,
        EvalSplits { val: &val, test: &test },
        &mut |_| {},
    )?;
    let acc = summary.test.get(Metric::Accuracy).expect("classification");
    assert!(acc > 85.0, "test accuracy {acc}");
    assert_eq!(summary.test.count, 256);
    let metrics = std::fs::read_to_string(run.metrics())?;
    assert!(metrics.lines().any(|l| l.contains("\"split\":\"test\"")));
    Ok(())
}

#[test]
fn resume_after_a_crash_matches_an_uninterrupted_run() -> anyhow::Result<()> {
    let _guard = seeded();
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
        &Supervised::new(&m_a, cfg.objective),
        &mut vs_a,
        &cfg,
        &Run::claim(dir_a.path(), &serde_json::json!({"name": "test"}))?,
        &mut data,
        splits,
        &mut |_| {},
    )?;

    let dir_b = tempfile::tempdir()?;
    let run_b = Run::claim(dir_b.path(), &serde_json::json!({"name": "test"}))?;
    let (mut vs_b, m_b) = fresh();
    let mut crashing = Synthetic { spec: spec.clone(), fail_at: Some(12), nan_at: None };
    assert!(train(
        &Supervised::new(&m_b, cfg.objective),
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
        &Supervised::new(&m_c, cfg.objective),
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
    let _guard = seeded();
    let spec = NetworkSpec::mlp(&[2, 3, 1])?;
    let val: Vec<Batch> = (0..2).map(|i| make_batch(&spec, i, 8)).collect();
    let dir = tempfile::tempdir()?;
    let run = Run::claim(dir.path(), &serde_json::json!({"name": "test"}))?;
    tch::manual_seed(0);
    let mut vs = VarStore::new(Device::Cpu);
    let m = model(&vs, &spec);
    let mut data = Synthetic { spec: spec.clone(), fail_at: None, nan_at: Some(7) };
    let err = train(
        &Supervised::new(&m, Objective::CrossEntropy),
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
    let _guard = seeded();
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
    let _guard = seeded();
    let spec = NetworkSpec::siren(1);
    let vs = VarStore::new(Device::Cpu);
    let m = model(&vs, &spec);
    let ws = random_features(&spec, 3, 1, 0).to_kind(Kind::Float).unwrap();
    assert_eq!(m.forward_t(&ws, false).size(), vec![3, 2]);
    let _ = Tensor::zeros([1], (Kind::Float, Device::Cpu));
}

#[test]
fn a_time_limit_stops_early_with_a_validated_checkpoint() -> anyhow::Result<()> {
    let _guard = seeded();
    let spec = NetworkSpec::mlp(&[2, 3, 1])?;
    let val: Vec<Batch> = (0..2).map(|i| make_batch(&spec, i, 8)).collect();
    let dir = tempfile::tempdir()?;
    let run = Run::claim(dir.path(), &serde_json::json!({"name": "test"}))?;
    let mut vs = VarStore::new(Device::Cpu);
    let m = model(&vs, &spec);
    let mut data = Synthetic { spec: spec.clone(), fail_at: None, nan_at: None };
    // A limit this small stops after the first step.
    let cfg = TrainerConfig { time_limit_minutes: Some(1e-9), ..config(1000) };
    let task = Supervised::new(&m, Objective::CrossEntropy);
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
    assert_eq!(summary.best.map(|b| b.step), Some(1));
    assert!(run.last().exists() && run.best().exists());
    Ok(())
}

/// A task whose loss and selection metric disagree: the loss `p²` falls all the way to 0, while
/// the outputs `p x` are closest to the targets `0.5 x` when `p` passes 0.5, half-way through.
#[derive(Debug)]
struct Disagreeing {
    p: Tensor,
}

impl Task for Disagreeing {
    type Input = Tensor;

    fn loss(&self, _batch: &Batch<Tensor>, _train: bool) -> Tensor {
        self.p.square().sum(Kind::Float)
    }

    fn eval_batch(&self, batch: &Batch<Tensor>) -> EvalOutput {
        EvalOutput {
            loss: self.p.square().sum(Kind::Float).double_value(&[]),
            outputs: &batch.inputs * &self.p,
            targets: batch.targets.shallow_clone(),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![Metric::Mae, Metric::R2]
    }

    fn selection(&self) -> Metric {
        Metric::Mae
    }
}

struct Constant;

impl TrainData<Tensor> for Constant {
    fn batch(&mut self, _step: u64) -> Result<Batch<Tensor>> {
        Ok(Batch {
            inputs: Tensor::ones([1, 1], (Kind::Float, Device::Cpu)),
            targets: Tensor::zeros([1], (Kind::Float, Device::Cpu)),
        })
    }
}

/// Train [`Disagreeing`] selecting by `select`; the best step, the val records and the test MAE.
fn train_disagreeing(select: Option<Metric>) -> anyhow::Result<(u64, Vec<serde_json::Value>, f64)> {
    let _guard = seeded();
    let dir = tempfile::tempdir()?;
    let run = Run::claim(dir.path(), &serde_json::json!({"name": "disagree"}))?;
    let mut vs = VarStore::new(Device::Cpu);
    let p = vs.root().var("p", &[1], tch::nn::Init::Const(1.0));
    let xs = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([4, 1]);
    let val = vec![Batch { inputs: xs.shallow_clone(), targets: &xs * 0.5 }];
    let cfg = TrainerConfig {
        steps: 60,
        eval_every: 2,
        select,
        optim: OptimConfig { lr: 0.02, warmup_steps: 0, ..Default::default() },
        ..config(60)
    };
    let summary = train(
        &Disagreeing { p },
        &mut vs,
        &cfg,
        &run,
        &mut Constant,
        EvalSplits { val: &val, test: &val },
        &mut |_| {},
    )?;
    let records: Vec<serde_json::Value> = std::fs::read_to_string(run.metrics())?
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()?;
    let val_records = records.iter().filter(|r| r["split"] == "val").cloned().collect();
    let best = summary.best.expect("validated");
    assert_eq!(best.metric, select.unwrap_or(Metric::Mae));
    Ok((best.step, val_records, summary.test.get(Metric::Mae).expect("reported")))
}

#[test]
fn best_checkpoint_follows_the_selection_metric_and_its_direction() -> anyhow::Result<()> {
    let (best_mae, vals, test_mae) = train_disagreeing(None)?;
    let argmin = vals
        .iter()
        .min_by(|a, b| a["mae"].as_f64().unwrap().total_cmp(&b["mae"].as_f64().unwrap()))
        .unwrap();
    assert_eq!(Some(best_mae), argmin["step"].as_u64());
    assert!(best_mae > 2 && best_mae < 60, "MAE peaks mid-run, not at an end: {best_mae}");
    // The tested model is the selected one: its test MAE is that step's val MAE (same batches).
    assert!((test_mae - argmin["mae"].as_f64().unwrap()).abs() < 1e-6);
    // R² is maximised (higher is better) at the same step.
    let (best_r2, _, _) = train_disagreeing(Some(Metric::R2))?;
    assert_eq!(best_r2, best_mae);
    // Selecting by the loss (lower is better) picks the last step, where p² is smallest.
    let (best_loss, _, _) = train_disagreeing(Some(Metric::Loss))?;
    assert_eq!(best_loss, 60);
    Ok(())
}

#[test]
fn a_run_folder_refuses_a_different_config_and_resumes_the_same() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let a = serde_json::json!({"name": "a", "trainer": {"steps": 10, "lr": 1e-3}});
    let run = Run::claim(dir.path(), &a)?;
    let written = std::fs::read_to_string(run.config())?;
    assert!(written.contains("steps = 10"), "{written}");
    Run::claim(dir.path(), &a)?;
    let b = serde_json::json!({"name": "a", "trainer": {"steps": 11, "lr": 1e-3}});
    let err = Run::claim(dir.path(), &b).unwrap_err();
    assert!(matches!(err, Error::RunConflict { .. }), "{err}");
    assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
    Ok(())
}

/// A run config holding `trainer` as the task configs do (an unset option is left out).
fn with_trainer(trainer: &TrainerConfig) -> anyhow::Result<toml::Table> {
    let mut cfg = toml::Table::new();
    cfg.insert("name".into(), "test".into());
    cfg.insert("trainer".into(), toml::Value::try_from(trainer)?);
    Ok(cfg)
}

#[test]
fn a_larger_step_budget_extends_a_constant_rate_run_exactly() -> anyhow::Result<()> {
    let _guard = seeded();
    let spec = NetworkSpec::mlp(&[2, 3, 1])?;
    let val: Vec<Batch> = (0..2).map(|i| make_batch(&spec, i, 8)).collect();
    let splits = EvalSplits { val: &val, test: &val };
    let claim_and_train = |dir: &std::path::Path, cfg: &TrainerConfig| -> anyhow::Result<_> {
        let run = Run::claim(dir, &with_trainer(cfg)?)?;
        tch::manual_seed(0);
        let mut vs = VarStore::new(Device::Cpu);
        let m = model(&vs, &spec);
        let mut data = Synthetic { spec: spec.clone(), fail_at: None, nan_at: None };
        let summary = train(
            &Supervised::new(&m, cfg.objective),
            &mut vs,
            cfg,
            &run,
            &mut data,
            splits,
            &mut |_| {},
        )?;
        Ok((run, vs, summary))
    };
    let whole = tempfile::tempdir()?;
    let (_, vs_whole, _) = claim_and_train(whole.path(), &config(20))?;

    let grown = tempfile::tempdir()?;
    let (run, _, first) = claim_and_train(grown.path(), &config(10))?;
    assert_eq!(first.steps, 10);
    std::fs::write(run.summary(), "{\"steps\": 10}")?;
    // A later sitting raises the budget: the folder is claimed again, and training goes on.
    let (run, vs_grown, second) = claim_and_train(grown.path(), &config(20))?;
    assert_eq!(second.steps, 20);
    for ((name, a), (_, b)) in weights(&vs_whole).iter().zip(weights(&vs_grown).iter()) {
        let d = (a - b).abs().max().double_value(&[]);
        assert!(a.allclose(b, 1e-6, 1e-7, false), "{name}: 10 + 10 steps differ from 20 by {d}");
    }
    assert!(std::fs::read_to_string(run.config())?.contains("steps = 20"));
    // The shorter budget's result is kept beside the run, not overwritten.
    let kept = std::fs::read_to_string(grown.path().join("summary.steps10.json"))?;
    assert_eq!(kept, "{\"steps\": 10}");
    assert!(!run.summary().exists());
    assert!(grown.path().join("model.steps10.safetensors").exists());

    // Not an extension: a smaller budget, another field, or a schedule that depends on the total.
    let claim =
        |cfg: &TrainerConfig| Run::claim(grown.path(), &with_trainer(cfg).expect("a config"));
    assert!(matches!(claim(&config(15)), Err(Error::RunConflict { .. })));
    let other_seed = TrainerConfig { seed: 4, ..config(30) };
    assert!(matches!(claim(&other_seed), Err(Error::RunConflict { .. })));
    let cosine = |steps| {
        let mut cfg = config(steps);
        cfg.optim.schedule = Schedule::Cosine;
        cfg
    };
    let cos_dir = tempfile::tempdir()?;
    Run::claim(cos_dir.path(), &with_trainer(&cosine(10))?)?;
    let err = Run::claim(cos_dir.path(), &with_trainer(&cosine(20))?).unwrap_err();
    assert!(matches!(err, Error::RunConflict { .. }), "{err}");
    Ok(())
}
