//! Shared blocks (design.md §2): Pointwise, element-wise ops, WsLayerNorm, encodings and the
//! learned scale commute with hidden-neuron permutations (f64, MLPs and CNNs), have finite
//! gradients, and the LayerNorm passes a central-difference check.

mod nft_support;

use nfn_layers::{
    ChannelDropout, GaussianFourierConfig, GaussianFourierFeatures, IoSinusoidalConfig,
    IoSinusoidalEncoding, LearnedPosEmbedding, LearnedPosEmbeddingConfig, LearnedScale,
    LearnedScaleConfig, Pointwise, PointwiseConfig, WsActivation, WsDropout, WsLayerNorm,
    WsLayerNormConfig, WsModuleT,
};
use nfn_weightspace::testing::*;
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use nft_support::*;
use proptest::prelude::*;
use tch::Kind;

proptest! {
    #![proptest_config(cases(24))]

    #[test]
    fn pointwise_is_equivariant(spec in any_spec(), c_in in 1..4i64, c_out in 1..4i64, seed in any::<u64>()) {
        let (_vs, layer) = build_f64(seed as i64, |vs| {
            Pointwise::new(vs, &spec, &PointwiseConfig { c_in, c_out }).unwrap()
        });
        let x = test_features(&spec, 2, c_in, seed);
        let out = layer.forward_t(&x, false);
        prop_assert_eq!(out.channels(), c_out);
        prop_assert_eq!(out.spec().unwrap(), spec.clone());
        assert_equivariant(|ws| layer.forward_t(ws, false), &x, &random_permutation(&spec, seed ^ 1), TOL_F64)?;
    }

    #[test]
    fn layer_norm_is_equivariant(spec in any_spec(), c in 2..5i64, seed in any::<u64>()) {
        let (_vs, layer) = build_f64(seed as i64, |vs| {
            WsLayerNorm::new(vs, &spec, &WsLayerNormConfig { channels: c, ..Default::default() }).unwrap()
        });
        let x = test_features(&spec, 2, c, seed);
        assert_equivariant(|ws| layer.forward_t(ws, false), &x, &random_permutation(&spec, seed ^ 1), TOL_F64)?;
    }

    #[test]
    fn activations_are_equivariant(spec in any_spec(), c in 1..4i64, a in 0..3usize, seed in any::<u64>()) {
        let act = [WsActivation::Relu, WsActivation::Gelu, WsActivation::Tanh][a];
        let x = test_features(&spec, 2, c, seed);
        assert_equivariant(|ws| act.forward_t(ws, false), &x, &random_permutation(&spec, seed ^ 1), TOL_F64)?;
    }

    #[test]
    fn encodings_are_equivariant(spec in any_spec(), c in 1..4i64, seed in any::<u64>()) {
        let p = random_permutation(&spec, seed ^ 1);
        let x = test_features(&spec, 2, c, seed);
        let (_vs, gff) = build_f64(seed as i64, |vs| {
            let cfg = GaussianFourierConfig { in_channels: c, mapping_size: 3, scale: 1.0 };
            GaussianFourierFeatures::new(vs, &spec, &cfg).unwrap()
        });
        assert_equivariant(|ws| gff.forward_t(ws, false), &x, &p, TOL_F64)?;
        let (_vs, pos) = build_f64(seed as i64, |vs| {
            LearnedPosEmbedding::new(vs, &spec, &LearnedPosEmbeddingConfig { channels: c }).unwrap()
        });
        assert_equivariant(|ws| pos.forward_t(ws, false), &x, &p, TOL_F64)?;
        let (_vs, io) = build_f64(0, |vs| {
            let cfg = IoSinusoidalConfig { enc_layers: seed % 2 == 0, ..Default::default() };
            IoSinusoidalEncoding::new(vs, &spec, &cfg).unwrap()
        });
        prop_assert_eq!(io.forward_t(&x, false).channels(), c + 13);
        assert_equivariant(|ws| io.forward_t(ws, false), &x, &p, TOL_F64)?;
        let (_vs, scale) = build_f64(0, |vs| {
            LearnedScale::new(vs, &spec, &LearnedScaleConfig { init_scale: 0.5 }).unwrap()
        });
        assert_equivariant(|ws| scale.forward_t(ws, false), &x, &p, TOL_F64)?;
    }
}

fn siren_like() -> NetworkSpec {
    NetworkSpec::mlp(&[2, 4, 3, 1]).unwrap()
}

#[test]
fn layer_norm_matches_its_formula() {
    let spec = NetworkSpec::new(vec![
        nfn_weightspace::LayerSpec::conv(2, 3, 2, 2),
        nfn_weightspace::LayerSpec::dense(3, 2),
    ])
    .unwrap();
    let (_vs, ln) = build_f64(1, |vs| {
        WsLayerNorm::new(vs, &spec, &WsLayerNormConfig { channels: 3, eps: 1e-5 }).unwrap()
    });
    let x = test_features(&spec, 2, 3, 9);
    let y = ln.forward_t(&x, false);
    // Conv weights normalise the folded 3 * 2 * 2 vector jointly; unbiased std, eps outside sqrt.
    let w = nfn_weightspace::fold(x.weight(0)); // [2, 12, 3, 2]
    let expect = (&w - w.mean_dim(1, true, None)) / (w.std_dim(1, true, true) + 1e-5);
    let got = nfn_weightspace::fold(y.weight(0));
    assert!(got.allclose(&expect, 1e-12, 1e-12, false));
    let b = x.bias(1);
    let expect = (b - b.mean_dim(1, true, None)) / (b.std_dim(1, true, true) + 1e-5);
    assert!(y.bias(1).allclose(&expect, 1e-12, 1e-12, false));
}

#[test]
fn layer_norm_rejects_one_channel() {
    let (_vs, res) = build_f64(0, |vs| {
        WsLayerNorm::new(vs, &siren_like(), &WsLayerNormConfig { channels: 1, eps: 1e-5 })
    });
    assert!(res.is_err());
}

#[test]
fn dropouts_act_only_in_training() {
    tch::manual_seed(3);
    let spec = NetworkSpec::mlp(&[8, 16, 8]).unwrap();
    let x = WeightSpaceFeatures::from_fn(&spec, 4, 32, |s| {
        tch::Tensor::ones(s, (Kind::Double, tch::Device::Cpu))
    });
    for layer in
        [&WsDropout::new(0.5).unwrap() as &dyn WsModuleT, &ChannelDropout::new(0.5).unwrap()]
    {
        assert!(layer.forward_t(&x, false).flatten().equal(&x.flatten()));
        let y = layer.forward_t(&x, true).flatten();
        // Survivors are scaled by 1 / (1 - p) = 2, about half are dropped.
        let kept = y.ne(0.0).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
        assert!((0.35..0.65).contains(&kept), "kept fraction {kept}");
        assert!(y.eq(0.0).logical_or(&y.eq(2.0)).all().int64_value(&[]) == 1);
    }
    // Channel dropout zeroes whole weight channels per network.
    let y = ChannelDropout::new(0.5).unwrap().forward_t(&x, true);
    let w = y.weight(0); // [4, 32, 16, 8]
    let per_channel = w.amax(&[2i64, 3][..], false) - w.amin(&[2i64, 3][..], false);
    assert!(per_channel.abs().max().double_value(&[]) == 0.0);
    assert!(WsDropout::new(1.0).is_err() && ChannelDropout::new(-0.1).is_err());
}

#[test]
fn shared_blocks_have_finite_gradients() {
    let spec = siren_like();
    let x = leaf_features(&test_features(&spec, 2, 3, 4));
    let (vs, (pw, ln, pos, gff, scale)) = build_f64(5, |vs| {
        (
            Pointwise::new(&(vs / "pw"), &spec, &PointwiseConfig { c_in: 6, c_out: 3 }).unwrap(),
            WsLayerNorm::new(&(vs / "ln"), &spec, &WsLayerNormConfig { channels: 3, eps: 1e-5 })
                .unwrap(),
            LearnedPosEmbedding::new(
                &(vs / "pos"),
                &spec,
                &LearnedPosEmbeddingConfig { channels: 6 },
            )
            .unwrap(),
            GaussianFourierFeatures::new(
                &(vs / "gff"),
                &spec,
                &GaussianFourierConfig { in_channels: 3, mapping_size: 3, scale: 1.0 },
            )
            .unwrap(),
            LearnedScale::new(&(vs / "scale"), &spec, &LearnedScaleConfig::default()).unwrap(),
        )
    });
    // The Fourier projection is a fixed buffer: saved in the store, not trained.
    assert_eq!(vs.trainable_variables().len(), vs.variables().len() - 1);
    let y = scale.forward_t(
        &pw.forward_t(&pos.forward_t(&gff.forward_t(&ln.forward_t(&x, true), true), true), true),
        true,
    );
    assert_finite_grads(&vs, &ws_loss(&y));
}

#[test]
fn layer_norm_and_pointwise_pass_central_differences() {
    let spec = NetworkSpec::new(vec![
        nfn_weightspace::LayerSpec::conv(1, 2, 1, 2),
        nfn_weightspace::LayerSpec::dense(2, 2),
    ])
    .unwrap();
    let x = leaf_features(&test_features(&spec, 2, 3, 11));
    let (vs, (ln, pw)) = build_f64(6, |vs| {
        (
            WsLayerNorm::new(&(vs / "ln"), &spec, &WsLayerNormConfig { channels: 3, eps: 1e-5 })
                .unwrap(),
            Pointwise::new(&(vs / "pw"), &spec, &PointwiseConfig { c_in: 3, c_out: 2 }).unwrap(),
        )
    });
    // Perturb LayerNorm's affine parameters away from (1, 0) so their gradients matter.
    tch::no_grad(|| {
        for (_, mut v) in vs.variables() {
            let noise = v.randn_like() * 0.3;
            let _ = v.g_add_(&noise);
        }
    });
    let inputs: Vec<&tch::Tensor> = x.weights().iter().chain(x.biases()).collect();
    check_gradients(&vs, &inputs, 8, || ws_loss(&pw.forward_t(&ln.forward_t(&x, false), false)));
}
