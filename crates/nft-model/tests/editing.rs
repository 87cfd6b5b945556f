//! The editing task: the loss is the MSE between the rendered `θ + Δθ` and the target image, and an
//! editor trained through the trainer learns an edit that the weights can express exactly (a
//! brightness shift is a change of the last bias).

use nfn_weightspace::{render_siren, siren_init, NetworkSpec};
use nft_model::*;
use tch::{nn::VarStore, Device, Tensor};

fn sirens(n: i64, seed: u64) -> nfn_weightspace::WeightSpaceFeatures {
    siren_init(&NetworkSpec::siren(1), n, seed)
}

/// Targets: each SIREN's own rendering, 0.2 brighter.
fn brighter(ws: &nfn_weightspace::WeightSpaceFeatures) -> Tensor {
    render_siren(ws, 8, 8).unwrap() + 0.2
}

struct Shifted;

impl TrainData for Shifted {
    fn batch(&mut self, step: u64) -> Result<Batch> {
        let inputs = sirens(8, 100 + step);
        Ok(Batch { targets: brighter(&inputs), inputs })
    }
}

#[test]
fn an_editor_learns_a_brightness_shift() -> anyhow::Result<()> {
    tch::manual_seed(0);
    let spec = NetworkSpec::siren(1);
    let mut vs = VarStore::new(Device::Cpu);
    let cfg = EditorConfig::Nfn(TransferNetConfig {
        layer: NfnLayerKind::Hnp,
        hidden: 16,
        extra_layers: 0,
        fourier: nfn_layers::GaussianFourierConfig { in_channels: 1, mapping_size: 8, scale: 3.0 },
        out_scale: 0.01,
    });
    let model = cfg.build(&vs.root(), &spec)?;
    let task = Editing { model: model.as_ref(), image_size: [8, 8] };
    let val_inputs = sirens(32, 1);
    let val = vec![Batch { targets: brighter(&val_inputs), inputs: val_inputs }];
    // Before training the edit is tiny: the error is close to the shift squared.
    let before = evaluate(&task, &val);
    assert!((before.get(Metric::Mse).unwrap() - 0.04).abs() < 0.01, "{before:?}");
    // The loss (f32 mean) and the metric (f64 sums) are the same MSE, to f32 round-off.
    assert!((before.get(Metric::Mse).unwrap() - before.loss()).abs() < 1e-6, "{before:?}");
    let dir = tempfile::tempdir()?;
    let run = Run::claim(dir.path(), &serde_json::json!({"name": "edit"}))?;
    let trainer = TrainerConfig {
        steps: 60,
        eval_every: 20,
        optim: OptimConfig { lr: 1e-2, warmup_steps: 5, ..Default::default() },
        ..Default::default()
    };
    let summary = train(
        &task,
        &mut vs,
        &trainer,
        &run,
        &mut Shifted,
        EvalSplits { val: &val, test: &val },
        &mut |_| {},
    )?;
    let after = summary.test.get(Metric::Mse).unwrap();
    assert!(after < 0.1 * before.loss(), "MSE {} -> {after}", before.loss());
    assert_eq!(summary.best.map(|b| b.metric), Some(Metric::Mse));
    Ok(())
}
