//! A rough forward+backward timing of one NFT block at the Inr2Array size (C = 256, 4 heads,
//! ff 4, SIREN 2-32-32-1, batch 32, f32, 2 threads). Run with
//! `cargo test -p nfn-layers --release --test nft_bench -- --ignored --nocapture`.

use std::time::Instant;

use nfn_layers::{NftBlock, NftBlockConfig, WsModuleT};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use tch::{nn, Device, Kind};

#[test]
#[ignore = "slow: timing at full size, run in release"]
fn nft_block_forward_backward_timing() {
    tch::set_num_threads(2);
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
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        step();
        times.push(t.elapsed().as_secs_f64());
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    println!("NftBlock fwd+bwd (C=256, H=4, ff=4, SIREN, b=32, 2 threads): {times:.3?}, best {best:.3} s");
}
