//! Benchmarks for nfn-rs: the layer configurations the PyTorch reference was measured on, timing and
//! peak-memory helpers. Criterion benches live in `benches/`; `src/bin/bench_layers.rs` is the runner
//! that `cargo xtask bench layers` starts once per configuration (so peak memory belongs to it).
//!
//! Sits on top of every library crate; nothing depends on it.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

use std::time::Instant;

use nfn_layers::{NftBlock, NftBlockConfig, NpAttention, NpAttentionConfig, WsModuleT};
use nfn_weightspace::siren::render_siren;
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use nft_model::{
    EditorConfig, InvariantModel, InvariantNfn, InvariantNfnConfig, MlpHeadConfig, NfnLayerKind,
    NftEditorConfig, PoolKind, TransferNetConfig,
};
use tch::{nn, Device, Kind, Tensor};

/// The configurations of `shared/notes/reference-bench.md`, all on SIREN 2-32-32-1 weights.
pub const CONFIGS: [&str; 9] = [
    "hnp512",
    "np512",
    "hnp128",
    "np128",
    "attention",
    "nft_block",
    "inr2array_encoder",
    "edit_nfn_hnp",
    "edit_nft",
];

/// A forward pass (`train` flag in, output out).
type ForwardFn = Box<dyn Fn(bool) -> Tensor>;
/// A scalar loss of the forward pass's output.
type LossFn = Box<dyn Fn(&Tensor) -> Tensor>;

/// A model under test: forward (eval, no grad) and a scalar training loss.
pub struct Bench {
    /// The variables (for parameter counts and zeroing gradients).
    pub vs: nn::VarStore,
    forward: ForwardFn,
    loss: LossFn,
}

impl Bench {
    /// Number of parameters.
    pub fn params(&self) -> i64 {
        self.vs.trainable_variables().iter().map(Tensor::numel).sum::<usize>() as i64
    }

    /// One inference forward pass.
    pub fn forward(&self) {
        tch::no_grad(|| {
            let _ = (self.forward)(false);
        });
    }

    /// One training forward and backward pass (gradients cleared first, outside what matters).
    pub fn forward_backward(&self) {
        for mut v in self.vs.trainable_variables() {
            let mut g = v.grad();
            if g.defined() {
                let _ = g.zero_();
            }
            let _ = v.requires_grad_(true);
        }
        (self.loss)(&(self.forward)(true)).backward();
    }
}

fn siren_features(b: i64, c: i64) -> WeightSpaceFeatures {
    WeightSpaceFeatures::randn(
        &NetworkSpec::siren(1),
        b,
        c,
        (Kind::Float, Device::cuda_if_available()),
    )
}

/// The classifier of `hnp512` etc.: Fourier(128, scale 3) [+ IO enc] → 3 × (layer, ReLU, channel
/// dropout 0.1) → HNP pool → MLP 1000-1000-10 (dropout 0.1), as the reference bench composed it.
fn classifier_config(kind: NfnLayerKind, width: i64) -> InvariantNfnConfig {
    InvariantNfnConfig {
        layer: kind,
        hidden: vec![width; 3],
        fourier: Some(nfn_layers::GaussianFourierConfig {
            in_channels: 1,
            mapping_size: 128,
            scale: 3.0,
        }),
        io_encoding: (kind == NfnLayerKind::Np).then_some(nfn_layers::IoSinusoidalConfig {
            max_freq: 3.0,
            num_bands: 3,
            enc_layers: false,
        }),
        io_embed: false,
        layer_norm: false,
        feature_dropout: 0.1,
        pool: PoolKind::Hnp,
        head: MlpHeadConfig { hidden: vec![1000, 1000], dropout: 0.1, ..Default::default() },
    }
}

/// Build configuration `name` at batch size `b`, or `None` for an unknown name.
pub fn build(name: &str, b: i64) -> Option<Bench> {
    tch::manual_seed(0);
    let device = Device::cuda_if_available();
    let vs = nn::VarStore::new(device);
    let spec = NetworkSpec::siren(1);
    let root = vs.root();
    let (forward, loss): (ForwardFn, LossFn) = match name {
        "hnp512" | "np512" | "hnp128" | "np128" => {
            let kind = if name.starts_with("hnp") { NfnLayerKind::Hnp } else { NfnLayerKind::Np };
            let width = if name.ends_with("512") { 512 } else { 128 };
            let model =
                InvariantNfn::new(&root, &spec, 10, &classifier_config(kind, width)).ok()?;
            let xs = siren_features(b, 1);
            let ys = Tensor::randint(10, [b], (Kind::Int64, device));
            (
                Box::new(move |train| model.forward_t(&xs, train)),
                Box::new(move |out: &Tensor| out.cross_entropy_for_logits(&ys)),
            )
        }
        "attention" | "nft_block" => {
            let xs = siren_features(b, 256);
            let layer: Box<dyn WsModuleT> = if name == "attention" {
                let cfg = NpAttentionConfig { channels: 256, num_heads: 4, ..Default::default() };
                Box::new(NpAttention::new(&root, &spec, &cfg).ok()?)
            } else {
                let cfg = NftBlockConfig {
                    channels: 256,
                    num_heads: 4,
                    ff_factor: 4,
                    dropout: 0.0,
                    share_projections: true,
                };
                Box::new(NftBlock::new(&root, &spec, &cfg).ok()?)
            };
            (
                Box::new(move |train| layer.forward_t(&xs, train).flatten()),
                Box::new(|out: &Tensor| out.square().mean(Kind::Float)),
            )
        }
        "inr2array_encoder" => {
            // the paper encoder (design.md §5.1): 6 blocks of C = 256, read-out to 16 x 256
            let cfg = inr2array::EncoderConfig::default();
            let encoder = inr2array::Inr2ArrayEncoder::new(&root, &spec, &cfg).ok()?;
            let xs = siren_features(b, 1);
            (
                Box::new(move |train| encoder.forward_t(&xs, train)),
                Box::new(|out: &Tensor| out.square().mean(Kind::Float)),
            )
        }
        "edit_nfn_hnp" | "edit_nft" => {
            // one editing step: the editor, the edited SIRENs rendered on the 28 x 28 grid, the
            // MSE against a target image (design.md §6.2)
            let editor = if name == "edit_nft" {
                // the CPU-sized NFT editor of the editing configs
                EditorConfig::Nft(NftEditorConfig {
                    channels: 32,
                    num_blocks: 1,
                    num_heads: 2,
                    ff_factor: 2,
                    dropout: 0.0,
                    ..Default::default()
                })
            } else {
                EditorConfig::Nfn(TransferNetConfig::default()) // the reference's TransferNet
            }
            .build(&root, &spec)
            .ok()?;
            let xs = siren_features(b, 1);
            let target = Tensor::rand([b, 1, 28, 28], (Kind::Float, device)) * 2.0 - 1.0;
            (
                Box::new(move |train| {
                    render_siren(&editor.forward_t(&xs, train), 28, 28).expect("SIREN spec")
                }),
                Box::new(move |out: &Tensor| out.mse_loss(&target, tch::Reduction::Mean)),
            )
        }
        _ => return None,
    };
    Some(Bench { vs, forward, loss })
}

/// Median wall time in milliseconds of `iters` runs after one warm-up run.
pub fn median_ms(iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            if tch::Cuda::is_available() {
                tch::Cuda::synchronize(0);
            }
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The sgemm rate of this machine: the median time in milliseconds of an `n` x `n` by `n` x `n`
/// f32 matmul through LibTorch (`iters` runs after one warm-up, on the device the configurations
/// use; on the CPU with 2 threads, as the rest of the bench), and the GFLOP/s it gives, `2 n³`
/// over that time.
pub fn sgemm_gflops(n: i64, iters: usize) -> (f64, f64) {
    let device = Device::cuda_if_available();
    if device == Device::Cpu {
        tch::set_num_threads(2);
    }
    tch::manual_seed(0);
    let a = Tensor::randn([n, n], (Kind::Float, device));
    let b = Tensor::randn([n, n], (Kind::Float, device));
    let out = Tensor::empty([n, n], (Kind::Float, device));
    let ms = tch::no_grad(|| {
        median_ms(iters, || {
            let _ = a.matmul_out(&out, &b);
        })
    });
    (ms, 2.0 * (n as f64).powi(3) / (ms * 1e6))
}

/// Peak resident memory of this process in MB (`VmHWM` of `/proc/self/status`), if available.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
