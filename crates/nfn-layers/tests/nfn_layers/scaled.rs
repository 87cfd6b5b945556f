//! Channel-scaled forwards (f64): NpLinear and HnpLinear folding a per-network, per-channel scale
//! into their maps give what scaling their outputs gives, and LinearReluDropout is the linear
//! layer, a ReLU and channel dropout.

use nfn_layers::{ChannelScaledT, LinearReluDropout, WsModuleT};
use nfn_weightspace::testing::*;
use nfn_weightspace::{fold, WeightSpaceFeatures};
use proptest::prelude::*;
use tch::{Kind, Tensor};

use super::{hnp_linear, np_linear};

/// Scales `[b, k_l c_out]` per weight, a quarter of them zero (the dropped channels).
fn random_scales(layer: &dyn ChannelScaledT, b: i64, seed: u64) -> Vec<Tensor> {
    tch::manual_seed(seed as i64);
    let options = (Kind::Double, test_device());
    (layer.weight_channels().into_iter())
        .map(|o| Tensor::rand([b, o], options) * Tensor::rand([b, o], options).ge(0.25))
        .collect()
}

/// Largest gap between `forward_scaled` and the scales applied to `forward_t`'s folded output.
fn scaled_gap(layer: &dyn ChannelScaledT, x: &WeightSpaceFeatures, seed: u64) -> f64 {
    let scales = random_scales(layer, x.batch_size(), seed);
    let (folded, plain) = (layer.forward_scaled(x, &scales), layer.forward_t(x, false));
    let mut gap = 0.0f64;
    for (l, scale) in scales.iter().enumerate() {
        let want = fold(plain.weight(l)) * scale.unsqueeze(2).unsqueeze(3);
        let got = fold(folded.weight(l));
        gap = gap.max((got - want).abs().max().double_value(&[]));
        gap = gap.max((folded.bias(l) - plain.bias(l)).abs().max().double_value(&[]));
    }
    gap
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    // c_in up to 24 so that some layers fold the scale into per-network weights (C_l < n_out n_in)
    // and others scale the output.
    #[test]
    fn np_linear_scaled_forward_scales_its_output(
        spec in any_spec(), c_in in 1..24i64, c_out in 1..4i64, io in any::<bool>(), seed in 0..1000u64,
    ) {
        let cfg = nfn_layers::NpLinearConfig { c_in, c_out, io_embed: io };
        let (_vs, layer) = np_linear(&spec, &cfg, seed);
        let x = test_features(&spec, 3, c_in, seed);
        let gap = scaled_gap(&layer, &x, seed + 1);
        prop_assert!(gap < TOL_F64, "gap {gap}");
    }

    #[test]
    fn hnp_linear_scaled_forward_scales_its_output(
        spec in any_spec(), c_in in 1..24i64, c_out in 1..4i64, seed in 0..1000u64,
    ) {
        prop_assume!(spec.num_layers() >= 2);
        let (_vs, layer) = hnp_linear(&spec, c_in, c_out, seed);
        let x = test_features(&spec, 3, c_in, seed);
        let gap = scaled_gap(&layer, &x, seed + 1);
        prop_assert!(gap < TOL_F64, "gap {gap}");
    }
}

#[test]
fn linear_relu_dropout_is_the_three_modules_in_a_row() {
    let spec = nfn_weightspace::NetworkSpec::mlp(&[3, 16, 16, 2]).unwrap();
    let (_vs, layer) = hnp_linear(&spec, 2, 32, 5);
    let x = test_features(&spec, 8, 2, 5);
    let relu_of_linear = layer.forward_t(&x, false).map(Tensor::relu);
    let stage = LinearReluDropout::new(Box::new(layer), 0.5).unwrap();
    // Evaluation: linear then ReLU.
    let eval = stage.forward_t(&x, false);
    assert!(eval.flatten().equal(&relu_of_linear.flatten()));
    // Training: each network's weight channel is all dropped or all kept and scaled by 2.
    tch::manual_seed(9);
    let train = stage.forward_t(&x, true);
    for l in 0..spec.num_layers() {
        let (got, want) = (train.weight(l), relu_of_linear.weight(l)); // [8, 32, n_out, n_in]
        let dropped = got.eq(0.0).all_dims(&[2i64, 3][..], false);
        let kept = (got - want * 2.0).abs().amax(&[2i64, 3][..], false).le(1e-12);
        assert!(dropped.logical_or(&kept).all().int64_value(&[]) == 1);
        let dropped = dropped.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
        assert!((0.25..0.75).contains(&dropped), "layer {l} dropped fraction {dropped}");
        // Biases: element-wise dropout of the ReLU's output.
        let (got, want) = (train.bias(l), relu_of_linear.bias(l));
        assert!(
            got.eq(0.0).logical_or(&(got - want * 2.0).abs().le(1e-12)).all().int64_value(&[]) == 1
        );
    }
}
