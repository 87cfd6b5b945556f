//! CPU-time timing of one NFT block forward+backward in the PyTorch reference bench's setup
//! (`xtask/bench/layers_ref.py nft_block`: C = 256, 4 heads, ff 4, dropout 0, SIREN 2-32-32-1,
//! batch 32, f32, input without grad, loss `Σ mean(W²) + mean(b²)`). CPU seconds (not wall time)
//! because the benchmark machines are shared. Run with
//! `cargo test -p nfn-layers --release --test perf_nft_block -- --ignored --nocapture`
//! (`NT` threads, default 2; `ITERS` iterations, default 5).

use nfn_layers::{
    NftBlock, NftBlockConfig, NpAttention, Pointwise, PointwiseConfig, WsActivation, WsLayerNorm,
    WsLayerNormConfig, WsModuleT,
};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use tch::{nn, Device, Kind, Tensor};

/// Process CPU seconds (user + system, all threads) from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Median CPU seconds of `iters` runs of `f` after one warm-up.
fn median_cpu(iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..iters.max(1))
        .map(|_| {
            let c = cpu_seconds();
            f();
            cpu_seconds() - c
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The reference bench's loss: `Σ_l mean(W_l²) + mean(b_l²)`.
fn loss(ws: &WeightSpaceFeatures) -> Tensor {
    ws.iter().map(|(w, b)| w.square().mean(Kind::Float) + b.square().mean(Kind::Float)).sum()
}

fn input() -> WeightSpaceFeatures {
    WeightSpaceFeatures::randn(&NetworkSpec::siren(1), 32, 256, (Kind::Float, Device::Cpu))
}

#[test]
#[ignore = "slow: timing at full size, run in release"]
fn perf_nft_block_cpu() {
    tch::set_num_threads(env_or("NT", 2));
    let iters = env_or("ITERS", 5);
    tch::manual_seed(0);
    let spec = NetworkSpec::siren(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let block = NftBlock::new(&vs.root(), &spec, &NftBlockConfig::default()).expect("config");
    let x = input();
    let fwd = median_cpu(iters, || {
        tch::no_grad(|| block.forward_t(&x, false));
    });
    let fwdbwd = median_cpu(iters, || {
        for mut g in vs.trainable_variables().iter().map(Tensor::grad) {
            if g.defined() {
                let _ = g.zero_();
            }
        }
        loss(&block.forward_t(&x, true)).backward();
    });
    println!(
        "perf nft_block b=32 threads={}: fwd_cpu {fwd:.3} s, fwdbwd_cpu {fwdbwd:.3} s",
        tch::get_num_threads()
    );
}

#[test]
#[ignore = "slow: per-layer timing breakdown, run in release"]
fn perf_nft_block_breakdown_cpu() {
    tch::set_num_threads(env_or("NT", 2));
    let iters = env_or("ITERS", 3);
    tch::manual_seed(0);
    let spec = NetworkSpec::siren(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let ln = WsLayerNorm::new(&(&root / "ln"), &spec, &WsLayerNormConfig::default()).expect("ln");
    let attn = NpAttention::new(&(&root / "attn"), &spec, &Default::default()).expect("attn");
    let pw = |name: &str, c_in, c_out| {
        Pointwise::new(&(&root / name), &spec, &PointwiseConfig { c_in, c_out }).expect("pw")
    };
    let (ff_in, ff_out) = (pw("ff_in", 256, 1024), pw("ff_out", 1024, 256));
    let x = input().map(|t| t.set_requires_grad(true));
    // channel-last memory, as the layers inside a block see it
    let x_cl = ln.forward_t(&x, false).detach().map(|t| t.set_requires_grad(true));
    let h_cl = ff_in.forward_t(&x_cl, false).detach().map(|t| t.set_requires_grad(true));
    let time = |name: &str, f: &dyn Fn() -> WeightSpaceFeatures| {
        let fwd = median_cpu(iters, || {
            f();
        });
        let both = median_cpu(iters, || loss(&f()).backward());
        println!("{name}: fwd {fwd:.3} s, fwd+bwd {both:.3} s");
    };
    time("layer norm (channel-first input)", &|| ln.forward_t(&x, true));
    time("layer norm (channel-last input)", &|| ln.forward_t(&x_cl, true));
    time("attention", &|| attn.forward_t(&x_cl, true));
    time("pointwise 256->1024", &|| ff_in.forward_t(&x_cl, true));
    time("gelu 1024", &|| WsActivation::Gelu.forward_t(&h_cl, true));
    time("pointwise 1024->256", &|| ff_out.forward_t(&h_cl, true));
}
