//! Symmetry properties (f64): equivariance / invariance under coupled hidden-neuron permutations,
//! sensitivity to uncoupled ones, and the NP layer's larger symmetry group.

use nfn_layers::{
    HnpLinearConfig, HnpPool, NpLinearConfig, NpPool, StatFeaturizer, WsModuleT, WsReadoutT,
};
use nfn_weightspace::testing::*;
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use proptest::prelude::*;
use tch::{Kind, Tensor};

use super::{f64_store, hnp_linear, np_linear};

const CASES: u32 = 24;

fn np_cfg(c_in: i64, c_out: i64, io_embed: bool) -> NpLinearConfig {
    NpLinearConfig { c_in, c_out, io_embed }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn np_linear_is_equivariant_mlp(
        spec in default_mlp_spec(),
        c_in in 1..4i64,
        c_out in 1..4i64,
        io in any::<bool>(),
        seed in 0..1000u64,
    ) {
        let (_vs, layer) = np_linear(&spec, &np_cfg(c_in, c_out, io), seed);
        let x = test_features(&spec, 2, c_in, seed);
        let p = random_permutation(&spec, seed + 1);
        assert_equivariant(|ws| layer.forward_t(ws, false), &x, &p, TOL_F64)?;
    }

    #[test]
    fn np_linear_is_equivariant_cnn(
        spec in small_cnn_spec(),
        c_in in 1..4i64,
        c_out in 1..4i64,
        io in any::<bool>(),
        seed in 0..1000u64,
    ) {
        let (_vs, layer) = np_linear(&spec, &np_cfg(c_in, c_out, io), seed);
        let x = test_features(&spec, 2, c_in, seed);
        let p = random_permutation(&spec, seed + 1);
        assert_equivariant(|ws| layer.forward_t(ws, false), &x, &p, TOL_F64)?;
    }

    #[test]
    fn np_linear_is_sensitive(
        spec in any_spec(), c_in in 1..4i64, io in any::<bool>(), seed in 0..1000u64,
    ) {
        let (_vs, layer) = np_linear(&spec, &np_cfg(c_in, 2, io), seed);
        let x = test_features(&spec, 2, c_in, seed);
        assert_sensitive_equivariant(|ws| layer.forward_t(ws, false), &x, seed)?;
    }

    #[test]
    fn hnp_linear_is_equivariant_mlp(
        spec in default_mlp_spec(), c_in in 1..4i64, c_out in 1..4i64, seed in 0..1000u64,
    ) {
        let (_vs, layer) = hnp_linear(&spec, c_in, c_out, seed);
        let x = test_features(&spec, 2, c_in, seed);
        let p = random_permutation(&spec, seed + 1);
        assert_equivariant(|ws| layer.forward_t(ws, false), &x, &p, TOL_F64)?;
    }

    #[test]
    fn hnp_linear_is_equivariant_cnn(
        spec in small_cnn_spec(), c_in in 1..4i64, c_out in 1..4i64, seed in 0..1000u64,
    ) {
        let (_vs, layer) = hnp_linear(&spec, c_in, c_out, seed);
        let x = test_features(&spec, 2, c_in, seed);
        let p = random_permutation(&spec, seed + 1);
        assert_equivariant(|ws| layer.forward_t(ws, false), &x, &p, TOL_F64)?;
    }

    #[test]
    fn hnp_linear_is_sensitive(spec in any_spec(), c_in in 1..4i64, seed in 0..1000u64) {
        let (_vs, layer) = hnp_linear(&spec, c_in, 2, seed);
        let x = test_features(&spec, 2, c_in, seed);
        assert_sensitive_equivariant(|ws| layer.forward_t(ws, false), &x, seed)?;
    }

    #[test]
    fn readouts_are_invariant_with_documented_widths(
        spec in any_spec(), c in 1..4i64, seed in 0..1000u64,
    ) {
        let x = test_features(&spec, 2, c, seed);
        let p = random_permutation(&spec, seed + 1);
        let np = NpPool::new(&spec);
        let hnp = HnpPool::new(&spec).expect("test specs have two or more layers");
        let stats = StatFeaturizer::new(&spec);
        assert_invariant(|ws| np.forward_t(ws, false), &x, &p, TOL_F64)?;
        assert_invariant(|ws| hnp.forward_t(ws, false), &x, &p, TOL_F64)?;
        assert_invariant(|ws| stats.forward_t(ws, false), &x, &p, TOL_F64)?;
        prop_assert_eq!(np.forward_t(&x, false).size(), vec![2, NpPool::out_features(&spec, c)]);
        prop_assert_eq!(hnp.forward_t(&x, false).size(), vec![2, HnpPool::out_features(&spec, c)]);
        prop_assert_eq!(
            stats.forward_t(&x, false).size(),
            vec![2, StatFeaturizer::out_features(&spec, c)]
        );
    }

    /// The pools and the featurizer are invariant to much more than the hidden-neuron group (any
    /// permutation of a pooled axis), so on their own they cannot notice an uncoupled permutation
    /// (see `readouts_ignore_uncoupled_permutations`); nor can mean pools right after a linear
    /// layer, which only see neuron averages. Behind a layer and a ReLU, as in the NFN models,
    /// they must.
    #[test]
    fn readouts_after_layer_and_relu_are_sensitive(
        spec in any_spec(), c_in in 1..3i64, seed in 0..1000u64,
    ) {
        let x = test_features(&spec, 2, c_in, seed);
        let (_vs, np_layer) = np_linear(&spec, &np_cfg(c_in, 2, false), seed);
        let (_vs2, hnp_layer) = hnp_linear(&spec, c_in, 2, seed);
        let np_relu = |ws: &WeightSpaceFeatures| np_layer.forward_t(ws, false).map(Tensor::relu);
        let hnp_relu = |ws: &WeightSpaceFeatures| hnp_layer.forward_t(ws, false).map(Tensor::relu);
        let np = NpPool::new(&spec);
        let hnp = HnpPool::new(&spec).expect("test specs have two or more layers");
        let stats = StatFeaturizer::new(&spec);
        assert_sensitive_invariant(|ws| np.forward_t(&np_relu(ws), false), &x, seed)?;
        assert_sensitive_invariant(|ws| hnp.forward_t(&hnp_relu(ws), false), &x, seed)?;
        assert_sensitive_invariant(|ws| stats.forward_t(&hnp_relu(ws), false), &x, seed)?;
    }
}

#[test]
fn readouts_ignore_uncoupled_permutations() {
    let spec = NetworkSpec::mlp(&[3, 5, 4, 2]).expect("valid");
    let x = test_features(&spec, 2, 2, 0);
    let np = NpPool::new(&spec);
    let hnp = HnpPool::new(&spec).expect("three layers");
    let stats = StatFeaturizer::new(&spec);
    for seed in 0..4 {
        assert!(assert_sensitive_invariant(|ws| np.forward_t(ws, false), &x, seed).is_err());
        assert!(assert_sensitive_invariant(|ws| hnp.forward_t(ws, false), &x, seed).is_err());
        assert!(assert_sensitive_invariant(|ws| stats.forward_t(ws, false), &x, seed).is_err());
    }
}

/// Permute the input neurons (columns of `W_0`, folded or not) by `perm`.
fn permute_inputs(x: &WeightSpaceFeatures, perm: &[i64]) -> WeightSpaceFeatures {
    let idx = Tensor::from_slice(perm).to_device(x.device());
    let (mut weights, biases): (Vec<_>, Vec<_>) =
        x.iter().map(|(w, b)| (w.shallow_clone(), b.shallow_clone())).unzip();
    weights[0] = weights[0].index_select(3, &idx);
    WeightSpaceFeatures::new(weights, biases).expect("same shapes")
}

fn max_abs_diff(a: &WeightSpaceFeatures, b: &WeightSpaceFeatures) -> f64 {
    (a.flatten() - b.flatten()).abs().max().double_value(&[])
}

/// NpLinear also commutes with permuting the input neurons, unless the IO embedding breaks that;
/// HnpLinear and HnpPool see the input neurons' order.
#[test]
fn only_np_without_io_embedding_ignores_input_order() {
    let spec = NetworkSpec::cnn(3, &[4, 3], [2, 2], 2).expect("valid");
    let x = test_features(&spec, 2, 2, 5);
    let perm = [2, 0, 1];
    let (_vs, plain) = np_linear(&spec, &np_cfg(2, 3, false), 1);
    let (_vs2, embedded) = np_linear(&spec, &np_cfg(2, 3, true), 1);
    let (_vs3, hnp) = hnp_linear(&spec, 2, 3, 1);
    for (layer, symmetric) in
        [(&plain as &dyn WsModuleT, true), (&embedded, false), (&hnp as &dyn WsModuleT, false)]
    {
        let lhs = layer.forward_t(&permute_inputs(&x, &perm), false);
        let rhs = permute_inputs(&layer.forward_t(&x, false), &perm);
        assert_eq!(max_abs_diff(&lhs, &rhs) < 1e-9, symmetric, "{layer:?}");
    }
    let pool = HnpPool::new(&spec).expect("three layers");
    let diff = (pool.forward_t(&permute_inputs(&x, &perm), false) - pool.forward_t(&x, false))
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff > 1e-6);
}

#[test]
fn configs_that_do_not_fit_are_errors() {
    let single = NetworkSpec::mlp(&[3, 2]).expect("valid");
    let vs = f64_store();
    let hnp = HnpLinearConfig { c_in: 1, c_out: 1 };
    assert!(nfn_layers::HnpLinear::new(&vs.root(), &single, &hnp).is_err());
    assert!(HnpPool::new(&single).is_err());
    let spec = NetworkSpec::mlp(&[3, 4, 2]).expect("valid");
    assert!(nfn_layers::NpLinear::new(&vs.root(), &spec, &np_cfg(0, 2, false)).is_err());
    assert!(nfn_layers::HnpLinear::new(&vs.root(), &spec, &HnpLinearConfig { c_in: 2, c_out: 0 })
        .is_err());
    // A single-layer network is fine for NpLinear.
    assert!(nfn_layers::NpLinear::new(&vs.root(), &single, &np_cfg(1, 1, true)).is_ok());
}

#[test]
fn np_linear_handles_a_single_layer_with_io_embedding() {
    let spec = NetworkSpec::mlp(&[3, 2]).expect("valid");
    let (_vs, layer) = np_linear(&spec, &np_cfg(2, 3, true), 0);
    let y = layer.forward_t(&test_features(&spec, 2, 2, 0), false);
    assert_eq!(y.weight(0).size(), vec![2, 3, 2, 3]);
    assert_eq!(y.bias(0).size(), vec![2, 3, 2]);
}

#[test]
fn pool_widths_of_the_cnn_zoo() {
    // design.md §9: NPPool 32 and HNPPool 50 outputs per channel on the Small CNN Zoo.
    let zoo = NetworkSpec::small_cnn_zoo();
    assert_eq!(NpPool::out_features(&zoo, 1), 32);
    assert_eq!(HnpPool::out_features(&zoo, 1), 50);
    assert_eq!(StatFeaturizer::out_features(&zoo, 1), 56);
    assert_eq!(HnpPool::out_features(&zoo, 3), 150);
}

#[test]
fn stat_featurizer_values() {
    // One network, one channel: W_0 = [[1, 2], [3, 4]] (shuffled), b_0 = [5, 7].
    let w = Tensor::from_slice(&[4.0f64, 1.0, 3.0, 2.0]).reshape([1, 1, 2, 2]);
    let b = Tensor::from_slice(&[7.0f64, 5.0]).reshape([1, 1, 2]);
    let x = WeightSpaceFeatures::new(vec![w], vec![b]).expect("valid");
    let spec = x.spec().expect("valid");
    let y = StatFeaturizer::new(&spec).forward_t(&x, false);
    let expected = Tensor::from_slice(&[
        2.5,
        5.0 / 3.0,
        1.0,
        1.75,
        2.5,
        3.25,
        4.0, // weight
        6.0,
        2.0,
        5.0,
        5.5,
        6.0,
        6.5,
        7.0, // bias
    ])
    .reshape([1, 14]);
    assert!(y.allclose(&expected, 1e-12, 1e-12, false), "{y}");
    // A single-entry tensor gets variance 0 (PyTorch would give NaN).
    let single = NetworkSpec::mlp(&[2, 3, 1]).expect("valid");
    let x = WeightSpaceFeatures::randn(&single, 2, 1, (Kind::Double, tch::Device::Cpu));
    let y = StatFeaturizer::new(&single).forward_t(&x, false);
    assert_eq!(y.isfinite().all().int64_value(&[]), 1);
}
