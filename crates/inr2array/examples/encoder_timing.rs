//! Time the Inr2Array encoder (paper config unless `small` is given) at batch 32: forward in eval
//! mode without gradients, and forward + backward of the mean of squares (as
//! notes/reference-bench.md measures the PyTorch reference). Median of `ITERS` after one warm-up.
//!
//! `cargo run --release -p inr2array --example encoder_timing [-- small]` (no data needed).

use std::time::Instant;

use inr2array::{EncoderConfig, Inr2ArrayEncoder};
use nfn_weightspace::{siren_init_tch_rng, NetworkSpec};
use tch::{nn::VarStore, Device, Kind};

const ITERS: usize = 3;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> anyhow::Result<()> {
    nfn_weightspace::runtime::reexec_with_tuned_malloc();
    let small = std::env::args().any(|a| a == "small");
    let cfg = if small { EncoderConfig::small() } else { EncoderConfig::default() };
    let b = 32;
    tch::manual_seed(0);
    let spec = NetworkSpec::siren(1);
    let vs = VarStore::new(Device::Cpu);
    let enc = Inr2ArrayEncoder::new(&vs.root(), &spec, &cfg)?;
    let params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    let x = siren_init_tch_rng(&spec, b, (Kind::Float, Device::Cpu));
    let time = |f: &dyn Fn()| {
        f();
        median(
            (0..ITERS)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        )
    };
    let fwd = time(&|| {
        let _ = tch::no_grad(|| enc.forward_t(&x, false));
    });
    let fwd_bwd = time(&|| {
        enc.forward_t(&x, true).square().mean(Kind::Float).backward();
        for mut v in vs.trainable_variables() {
            v.zero_grad();
        }
    });
    println!(
        "encoder {} ({:.1} M params), batch {b}, {} threads: fwd {:.0} ms ({:.1} INR/s), fwd+bwd {:.0} ms ({:.1} INR/s)",
        if small { "small" } else { "paper" },
        params as f64 / 1e6,
        tch::get_num_threads(),
        fwd * 1e3,
        b as f64 / fwd,
        fwd_bwd * 1e3,
        b as f64 / fwd_bwd
    );
    Ok(())
}
