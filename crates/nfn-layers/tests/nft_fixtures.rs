//! Agreement with the PyTorch reference (PyPI `nfn==0.1.2`): NPAttention (shared projections on an
//! MLP, per-layer projections on a CNN), SimpleLayerNorm, Pointwise, Gaussian Fourier features,
//! IO sinusoidal encoding and LearnedPosEmbedding. Fixtures come from `fixtures/nft/gen.py`;
//! parameters are loaded by VarStore name. Checked in f64 (1e-10) and in f32 (1e-5).

mod nft_support;

use std::path::PathBuf;

use anyhow::{Context, Result};
use nfn_layers::{
    GaussianFourierConfig, GaussianFourierFeatures, IoSinusoidalConfig, IoSinusoidalEncoding,
    LearnedPosEmbedding, LearnedPosEmbeddingConfig, NpAttention, NpAttentionConfig, Pointwise,
    PointwiseConfig, WsLayerNorm, WsLayerNormConfig, WsModuleT,
};
use nfn_weightspace::io::read_npy;
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use tch::{nn, Device, Kind};

fn dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nft").join(case)
}

fn load_features(case: &str, prefix: &str) -> Result<WeightSpaceFeatures> {
    let d = dir(case);
    let mut weights = Vec::new();
    let mut biases = Vec::new();
    for l in 0.. {
        let w = d.join(format!("{prefix}_w{l}.npy"));
        if !w.exists() {
            break;
        }
        weights.push(read_npy(&w).with_context(|| format!("reading {w:?}"))?);
        biases.push(read_npy(d.join(format!("{prefix}_b{l}.npy")))?);
    }
    Ok(WeightSpaceFeatures::new(weights, biases)?)
}

/// Copy every `p.<name>.npy` into the variable `<name>`; every variable must be covered.
fn load_params(vs: &nn::VarStore, case: &str) -> Result<()> {
    let mut vars = vs.variables();
    let total = vars.len();
    let mut loaded = 0;
    for entry in std::fs::read_dir(dir(case))? {
        let path = entry?.path();
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default().to_string();
        let Some(name) = file.strip_prefix("p.").and_then(|f| f.strip_suffix(".npy")) else {
            continue;
        };
        let mut var = vars.remove(name).with_context(|| format!("{case}: no variable {name}"))?;
        let value = read_npy(&path)?;
        anyhow::ensure!(
            var.size() == value.size(),
            "{case}: {name} has shape {:?}, fixture {:?}",
            var.size(),
            value.size()
        );
        tch::no_grad(|| var.copy_(&value));
        loaded += 1;
    }
    anyhow::ensure!(
        loaded == total,
        "{case}: loaded {loaded} of {total} variables, missing {:?}",
        vars.keys()
    );
    Ok(())
}

/// Run `make` on the case in f64 and f32 and return the largest absolute differences.
fn agree<M: WsModuleT>(
    case: &str,
    make: impl Fn(&nn::Path, &NetworkSpec) -> M,
) -> Result<(f64, f64)> {
    agree_within(case, F32_TOL, make)
}

/// f32 tolerance against the f64 reference.
const F32_TOL: f64 = 1e-5;
/// Fourier features take sin/cos of `2π x·B` with |B| up to ~30 (scale 10), arguments of a few
/// hundred: f32 rounding of the argument alone is ~3e-5.
const F32_TOL_FOURIER: f64 = 1e-4;

fn agree_within<M: WsModuleT>(
    case: &str,
    f32_tol: f64,
    make: impl Fn(&nn::Path, &NetworkSpec) -> M,
) -> Result<(f64, f64)> {
    let x = load_features(case, "in")?;
    let expect = load_features(case, "out")?.flatten();
    let spec = x.spec()?;
    let mut vs = nn::VarStore::new(Device::Cpu);
    let layer = make(&vs.root(), &spec);
    vs.double();
    load_params(&vs, case)?;
    let diff = |y: &WeightSpaceFeatures| -> f64 {
        let y = y.flatten().to_kind(Kind::Double);
        assert_eq!(y.size(), expect.size(), "{case}: output shape");
        (y - &expect).abs().max().double_value(&[])
    };
    let d64 = diff(&layer.forward_t(&x, false));
    vs.float();
    let d32 = diff(&layer.forward_t(&x.to_kind(Kind::Float)?, false));
    println!("{case}: max |diff| f64 {d64:.1e}, f32 {d32:.1e}");
    anyhow::ensure!(d64 <= 1e-10 && d32 <= f32_tol, "{case}: f64 diff {d64:e}, f32 diff {d32:e}");
    Ok(()).map(|()| (d64, d32))
}

#[test]
fn attention_matches_reference() -> Result<()> {
    for (case, c, heads, share) in
        [("attention_shared_mlp", 8, 2, true), ("attention_unshared_cnn", 4, 2, false)]
    {
        let cfg = NpAttentionConfig {
            channels: c,
            num_heads: heads,
            share_projections: share,
            ..Default::default()
        };
        agree(case, |vs, spec| NpAttention::new(vs, spec, &cfg).unwrap())?;
    }
    Ok(())
}

#[test]
fn layer_norm_matches_reference() -> Result<()> {
    for (case, c) in [("layer_norm_mlp", 4), ("layer_norm_cnn", 3)] {
        let cfg = WsLayerNormConfig { channels: c, eps: 1e-5 };
        agree(case, |vs, spec| WsLayerNorm::new(vs, spec, &cfg).unwrap())?;
    }
    Ok(())
}

#[test]
fn pointwise_matches_reference() -> Result<()> {
    for (case, c_in, c_out) in [("pointwise_mlp", 3, 5), ("pointwise_cnn", 2, 3)] {
        let cfg = PointwiseConfig { c_in, c_out };
        agree(case, |vs, spec| Pointwise::new(vs, spec, &cfg).unwrap())?;
    }
    Ok(())
}

#[test]
fn encodings_match_reference() -> Result<()> {
    for (case, in_channels, mapping_size) in [("fourier_mlp", 2, 3), ("fourier_cnn", 1, 4)] {
        let cfg = GaussianFourierConfig { in_channels, mapping_size, scale: 1.0 };
        agree_within(case, F32_TOL_FOURIER, |vs, spec| {
            GaussianFourierFeatures::new(vs, spec, &cfg).unwrap()
        })?;
    }
    for (case, max_freq, num_bands, enc_layers) in
        [("io_encoding_mlp", 10.0, 3, true), ("io_encoding_mlp_no_layers", 3.0, 2, false)]
    {
        let cfg = IoSinusoidalConfig { max_freq, num_bands, enc_layers };
        agree(case, |vs, spec| IoSinusoidalEncoding::new(vs, spec, &cfg).unwrap())?;
    }
    for (case, channels) in [("pos_embedding_mlp", 4), ("pos_embedding_cnn", 3)] {
        let cfg = LearnedPosEmbeddingConfig { channels };
        agree(case, |vs, spec| LearnedPosEmbedding::new(vs, spec, &cfg).unwrap())?;
    }
    Ok(())
}

#[test]
fn fourier_buffer_is_saved_and_loaded() -> Result<()> {
    let spec = NetworkSpec::mlp(&[2, 3, 1])?;
    let path = std::env::temp_dir().join(format!("nft_fourier_{}.safetensors", std::process::id()));
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let a = GaussianFourierFeatures::new(&vs.root(), &spec, &GaussianFourierConfig::default())?;
    vs.save(&path)?;
    tch::manual_seed(2);
    let mut vs2 = nn::VarStore::new(Device::Cpu);
    let b = GaussianFourierFeatures::new(&vs2.root(), &spec, &GaussianFourierConfig::default())?;
    assert!(!a.projection().equal(b.projection()));
    vs2.load(&path)?;
    std::fs::remove_file(&path)?;
    assert!(a.projection().equal(b.projection()));
    Ok(())
}
