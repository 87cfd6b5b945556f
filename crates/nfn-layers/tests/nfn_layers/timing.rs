//! Forward and forward+backward timings of NpLinear and HnpLinear on the paper's weight spaces
//! (`cargo test --release -p nfn-layers --test nfn_layers timing -- --ignored --nocapture`).
//! Single-threaded, fastest of 20 runs. The matching PyTorch numbers come from running the
//! reference layers on the same sizes the same way.

use std::time::Instant;

use nfn_layers::{NpLinearConfig, WsModuleT};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::{hnp_linear, np_linear};

/// The fastest of `n` runs in milliseconds (robust against a busy machine), after two warm-ups.
fn millis(n: u32, mut f: impl FnMut()) -> f64 {
    f();
    f();
    (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn time_layer(name: &str, layer: &dyn WsModuleT, vs: &mut VarStore, x: &WeightSpaceFeatures) {
    vs.float();
    let fwd = millis(20, || {
        tch::no_grad(|| layer.forward_t(x, false));
    });
    let xg = x.map(|t| t.copy().set_requires_grad(true));
    let fwd_bwd = millis(20, || {
        let y = layer.forward_t(&xg, false);
        let loss = y.iter().map(|(w, b)| w.square().sum(Kind::Float) + b.square().sum(Kind::Float));
        loss.fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b).backward();
    });
    eprintln!("{name}: fwd {fwd:.2} ms, fwd+bwd {fwd_bwd:.2} ms");
}

#[test]
#[ignore = "slow: timing"]
fn timing() {
    tch::set_num_threads(1);
    let siren = NetworkSpec::siren(1);
    for (name, spec, b, c) in [
        ("zoo", NetworkSpec::small_cnn_zoo(), 32, 16),
        ("siren", siren.clone(), 32, 32),
        ("siren128", siren, 32, 128),
    ] {
        let x = WeightSpaceFeatures::randn(&spec, b, c, (Kind::Float, Device::Cpu));
        let cfg = NpLinearConfig { c_in: c, c_out: c, io_embed: false };
        let (mut vs, layer) = np_linear(&spec, &cfg, 0);
        time_layer(&format!("{name} np"), &layer, &mut vs, &x);
        let (mut vs, layer) = hnp_linear(&spec, c, c, 0);
        time_layer(&format!("{name} hnp"), &layer, &mut vs, &x);
    }
}
