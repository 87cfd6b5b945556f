//! A rough forward+backward timing of one NFT block at the Inr2Array size (C = 256, 4 heads,
//! ff 4, SIREN 2-32-32-1, batch 32, f32, 2 threads). Run with
//! `cargo test -p nfn-layers --release --test nft_bench -- --ignored --nocapture`.

use std::time::Instant;

use nfn_layers::{NftBlock, NftBlockConfig, WsModuleT};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use tch::{nn, Device, Kind};

/// Process CPU seconds (user + system) from `/proc/self/stat`, less sensitive than wall time to
/// other processes sharing the cores.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn threads() -> i32 {
    std::env::var("NT").ok().and_then(|s| s.parse().ok()).unwrap_or(2)
}

#[test]
#[ignore = "slow: timing at full size, run in release"]
fn nft_block_forward_backward_timing() {
    tch::set_num_threads(threads());
    tch::manual_seed(0);
    let spec = NetworkSpec::siren(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let block = NftBlock::new(&vs.root(), &spec, &NftBlockConfig::default()).unwrap();
    let x = WeightSpaceFeatures::randn(&spec, 32, 256, (Kind::Float, Device::Cpu))
        .map(|t| t.set_requires_grad(true));
    let step = || {
        let y = block.forward_t(&x, true);
        let loss: tch::Tensor =
            y.iter().map(|(w, b)| w.sum(Kind::Float) + b.sum(Kind::Float)).sum();
        loss.backward();
    };
    step();
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (t, c) = (Instant::now(), cpu_seconds());
        step();
        wall.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "NftBlock fwd+bwd (C=256, H=4, ff=4, SIREN, b=32, {} threads): wall {wall:.3?} (best {:.3} s), cpu {cpu:.2?} (best {:.2} s)",
        threads(),
        best(&wall),
        best(&cpu)
    );
}

#[test]
#[ignore = "slow: per-layer timing breakdown, run in release"]
fn nft_block_breakdown() {
    use nfn_layers::{
        NpAttention, Pointwise, PointwiseConfig, WsActivation, WsLayerNorm, WsLayerNormConfig,
    };
    tch::set_num_threads(2);
    tch::manual_seed(0);
    let spec = NetworkSpec::siren(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let ln = WsLayerNorm::new(&(&root / "ln"), &spec, &WsLayerNormConfig::default()).unwrap();
    let attn = NpAttention::new(&(&root / "attn"), &spec, &Default::default()).unwrap();
    let ff_in =
        Pointwise::new(&(&root / "ff_in"), &spec, &PointwiseConfig { c_in: 256, c_out: 1024 })
            .unwrap();
    let x = WeightSpaceFeatures::randn(&spec, 32, 256, (Kind::Float, Device::Cpu))
        .map(|t| t.set_requires_grad(true));
    let x_cl = ln.forward_t(&x, false).detach().map(|t| t.set_requires_grad(true));
    let time = |name: &str, f: &dyn Fn() -> WeightSpaceFeatures| {
        f();
        let t = Instant::now();
        let y = f();
        let fwd = t.elapsed().as_secs_f64();
        let loss: tch::Tensor =
            y.iter().map(|(w, b)| w.sum(Kind::Float) + b.sum(Kind::Float)).sum();
        let t = Instant::now();
        loss.backward();
        println!("{name}: fwd {fwd:.3} s, bwd {:.3} s", t.elapsed().as_secs_f64());
    };
    time("layer norm (channel-first input)", &|| ln.forward_t(&x, true));
    time("layer norm (channel-last input)", &|| ln.forward_t(&x_cl, true));
    time("attention", &|| attn.forward_t(&x_cl, true));
    time("pointwise 256->1024", &|| ff_in.forward_t(&x_cl, true));
    time("pointwise 256->1024 + gelu", &|| {
        WsActivation::Gelu.forward_t(&ff_in.forward_t(&x_cl, true), true)
    });
}
