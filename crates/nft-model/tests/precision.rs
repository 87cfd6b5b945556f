//! bf16 mixed precision of the NFT trunk (`precision = "bf16"`): the model computes the same
//! function as in fp32 to bf16's resolution, stays invariant, and trains fp32 master weights.
//!
//! Tolerances: bf16 keeps 8 significant bits (relative step 2^-8 = 0.4%); two NFT blocks of
//! width 16 (LayerNorm, attention, feed-forward, residuals) compound that to a few percent of the
//! output scale, so the checks allow 5% of the largest output. A symmetry violation or a missing
//! cast moves outputs by O(1) or fails outright (LibTorch refuses mixed-dtype matmuls).

use nfn_layers::Precision;
use nfn_weightspace::testing::{random_permutation, test_device, test_features};
use nfn_weightspace::NetworkSpec;
use nft_model::{
    InvariantModel, MlpHeadConfig, NftInput, NftModel, NftModelConfig, NftReadout, PoolKind,
};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn config(precision: Precision, cnn: bool) -> NftModelConfig {
    NftModelConfig {
        input: NftInput::Fourier { scale: 1.0 },
        channels: 16,
        num_blocks: 2,
        num_heads: 2,
        ff_factor: 2,
        dropout: 0.0,
        readout: if cnn {
            NftReadout::Pool(PoolKind::Hnp)
        } else {
            NftReadout::CrossAttention { num_latents: 4, latent_dim: 8 }
        },
        head: MlpHeadConfig { hidden: vec![16], dropout: 0.0, ..Default::default() },
        precision,
    }
}

/// LibTorch's generator is global and tests run in parallel: building seeded models takes this lock.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A model on the test device (`NFN_TEST_DEVICE`, default the CPU) in `precision`, with the weights
/// of `like` when given (so that models in two precisions compute with the same weights, whatever
/// else drew from the generator meanwhile).
fn model(
    spec: &NetworkSpec,
    precision: Precision,
    like: Option<&VarStore>,
) -> (VarStore, NftModel) {
    let _guard = SEEDED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tch::manual_seed(4);
    let mut vs = VarStore::new(test_device());
    let m = NftModel::new(&vs.root(), spec, 3, &config(precision, spec.is_cnn()))
        .expect("valid config");
    if let Some(like) = like {
        vs.copy(like).expect("same parameters");
    }
    (vs, m)
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

#[test]
fn bf16_matches_fp32_to_bf16_resolution_and_stays_invariant() {
    for spec in
        [NetworkSpec::mlp(&[2, 8, 8, 1]).unwrap(), NetworkSpec::cnn(1, &[4, 3], [3, 3], 2).unwrap()]
    {
        let x = test_features(&spec, 4, 1, 1).to_kind(Kind::Float).unwrap();
        let (a, fp32) = model(&spec, Precision::Fp32, None);
        let (_b, bf16) = model(&spec, Precision::Bf16, Some(&a));
        let (_c, auto) = model(&spec, Precision::Auto, Some(&a));
        let want = fp32.forward_t(&x, false);
        let got = bf16.forward_t(&x, false);
        assert_eq!(got.kind(), Kind::Float, "the trunk's output is cast back");
        let scale = max_abs(&want);
        let err = max_abs(&(&got - &want));
        assert!(err <= 0.05 * scale, "bf16 differs by {err} at output scale {scale}");
        assert!(err > 0.0, "bf16 computed nothing in bf16");
        // `auto` is fp32 on the CPU and bf16 on a GPU.
        let auto_want = if x.device() == Device::Cpu { &want } else { &got };
        assert!(auto.forward_t(&x, false).equal(auto_want));
        // Invariance in bf16, to the same resolution.
        let px = random_permutation(&spec, 2).apply(&x).unwrap();
        let perm_err = max_abs(&(bf16.forward_t(&px, false) - &got));
        assert!(perm_err <= 0.05 * scale, "bf16 output moved by {perm_err} under a permutation");
    }
}

#[test]
fn bf16_trains_fp32_master_weights() {
    let spec = NetworkSpec::mlp(&[2, 8, 8, 1]).unwrap();
    let (vs, m) = model(&spec, Precision::Bf16, None);
    let x = test_features(&spec, 4, 1, 3).to_kind(Kind::Float).unwrap();
    m.forward_t(&x, true).square().sum(Kind::Float).backward();
    let vars = vs.trainable_variables();
    assert!(!vars.is_empty());
    for v in &vars {
        assert_eq!(v.kind(), Kind::Float, "parameters stay fp32");
        let g = v.grad();
        assert!(g.defined(), "a parameter got no gradient");
        assert_eq!(g.kind(), Kind::Float);
        assert!(g.isfinite().all().int64_value(&[]) == 1);
    }
    // The block parameters (the bf16 path) receive gradient.
    let named = vs.variables();
    let in_blocks: f64 = named
        .iter()
        .filter(|(name, _)| name.contains("block"))
        .map(|(_, v)| max_abs(&v.grad()))
        .sum();
    assert!(in_blocks > 0.0, "no gradient reached the NFT blocks");
}

#[test]
fn precision_parses_and_the_default_is_left_out() {
    let cfg: NftModelConfig = toml::from_str("precision = \"bf16\"").unwrap();
    assert_eq!(cfg.precision, Precision::Bf16);
    let auto: NftModelConfig = toml::from_str("precision = \"auto\"").unwrap();
    assert_eq!(auto.precision.compute_kind(Device::Cuda(0)), Some(Kind::BFloat16));
    assert_eq!(auto.precision.compute_kind(Device::Cpu), None);
    assert!(toml::from_str::<NftModelConfig>("precision = \"fp8\"").is_err());
    // Configs of runs made before the switch existed serialise unchanged.
    let text = toml::to_string(&NftModelConfig::default()).unwrap();
    assert!(!text.contains("precision"), "{text}");
    assert!(toml::to_string(&cfg).unwrap().contains("precision = \"bf16\""));
}
