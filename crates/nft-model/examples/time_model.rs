//! Time one training step of a model config on random SIREN weights:
//! `cargo run --release -p nft-model --example time_model -- <config.toml> [batch] [threads]`
//! (the `[model]` table of an experiment config). Prints forward and forward+backward milliseconds.

use std::time::Instant;

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use nft_model::ModelConfig;
use tch::{nn::VarStore, Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    nfn_weightspace::runtime::reexec_with_tuned_malloc();
    let args: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&args[1])?;
    let value: toml::Value = toml::from_str(&text)?;
    let model_cfg: ModelConfig = value.get("model").expect("a [model] table").clone().try_into()?;
    let b: i64 = args.get(2).map_or(Ok(32), |s| s.parse())?;
    if let Some(t) = args.get(3) {
        tch::set_num_threads(t.parse()?);
    }
    let spec = NetworkSpec::siren(1);
    let vs = VarStore::new(Device::Cpu);
    let model = model_cfg.build(&vs.root(), &spec, 10)?;
    let xs = WeightSpaceFeatures::randn(&spec, b, 1, (Kind::Float, Device::Cpu)).scale(0.1);
    let ys = Tensor::randint(10, [b], (Kind::Int64, Device::Cpu));
    for i in 0..4 {
        let t = Instant::now();
        let _ = tch::no_grad(|| model.forward_t(&xs, false));
        let fwd = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        model.forward_t(&xs, true).cross_entropy_for_logits(&ys).backward();
        let fb = t.elapsed().as_secs_f64() * 1e3;
        println!("iter {i}: fwd {fwd:.1} ms, fwd+bwd {fb:.1} ms");
    }
    Ok(())
}
