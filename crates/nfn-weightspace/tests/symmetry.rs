//! The symmetry group is right: permuting hidden neurons leaves every network's function unchanged,
//! uncoupled permutations do not, and the group laws hold (MLPs and CNNs, f64).

use nfn_weightspace::testing::*;
use nfn_weightspace::{evaluate, evaluate_cnn, Activation, NetworkSpec, NeuronPermutation};
use proptest::prelude::*;
use tch::{Kind, Tensor};

fn inputs(spec: &NetworkSpec, seed: u64) -> Tensor {
    // Reuse the seeded feature generator for inputs: 5 points (MLP) or 3 images of 5x4 (CNN).
    let probe =
        NetworkSpec::mlp(&[1, if spec.is_cnn() { 3 * spec.n_in() * 20 } else { 5 * spec.n_in() }])
            .expect("valid");
    let xs = random_features(&probe, 1, 1, seed).weight(0).reshape([-1]);
    if spec.is_cnn() {
        xs.reshape([3, spec.n_in(), 5, 4])
    } else {
        xs.reshape([5, spec.n_in()])
    }
}

const ACTIVATIONS: [Activation; 3] = [Activation::Relu, Activation::Tanh, Activation::SIREN];

/// Relative tolerance for comparing network outputs in f64. Permuting neurons reorders sums, so
/// outputs differ by rounding only; but `sin(30 x)` on N(0, 1) weights multiplies rounding errors by
/// roughly `30 * |W|` per layer (up to ~1e2), so after up to 5 layers ~1e-16 grows to ~1e-8.
/// A real symmetry violation changes outputs by O(1).
const FUNCTION_TOL: f64 = 1e-6;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn hidden_permutations_preserve_the_function(spec in any_spec(), seed in any::<u64>(), a in 0..3usize) {
        let ws = random_features(&spec, 3, 1, seed);
        let xs = inputs(&spec, seed ^ 1);
        let p = random_permutation(&spec, seed ^ 2);
        let act = ACTIVATIONS[a];
        let before = evaluate(&ws, &xs, act).unwrap();
        let after = evaluate(&p.apply(&ws).unwrap(), &xs, act).unwrap();
        prop_assert_eq!(before.size(), vec![3, xs.size()[0], spec.n_out()]);
        let diff = (&before - &after).abs().max().double_value(&[]);
        let scale = before.abs().max().double_value(&[]).max(1.0);
        prop_assert!(diff <= FUNCTION_TOL * scale, "function changed by {diff:e}");
    }

    #[test]
    fn uncoupled_permutations_change_the_function(spec in default_mlp_spec(), seed in any::<u64>()) {
        prop_assume!(has_permutable_pair(&spec));
        let ws = random_features(&spec, 2, 1, seed);
        let xs = inputs(&spec, seed ^ 1);
        let (m, perm) = uncoupled_choice(&spec, seed).unwrap();
        let f = |w: &nfn_weightspace::WeightSpaceFeatures| evaluate(w, &xs, Activation::Tanh).unwrap();
        let diff = (f(&ws) - f(&permute_rows_only(&ws, m, &perm))).abs().max().double_value(&[]);
        prop_assert!(diff > 1e-6);
    }

    #[test]
    fn group_laws(spec in any_spec(), s1 in any::<u64>(), s2 in any::<u64>()) {
        let ws = random_features(&spec, 2, 2, s1);
        let (p, q) = (random_permutation(&spec, s1), random_permutation(&spec, s2));
        let same = |a: &nfn_weightspace::WeightSpaceFeatures, b: &nfn_weightspace::WeightSpaceFeatures| {
            a.flatten().equal(&b.flatten())
        };
        let id = NeuronPermutation::identity(&spec);
        prop_assert!(id.is_identity());
        prop_assert!(same(&id.apply(&ws).unwrap(), &ws));
        prop_assert!(p.compose(&p.inverse()).is_identity() && p.inverse().compose(&p).is_identity());
        prop_assert!(same(&p.inverse().apply(&p.apply(&ws).unwrap()).unwrap(), &ws));
        let composed = p.compose(&q).apply(&ws).unwrap();
        prop_assert!(same(&composed, &p.apply(&q.apply(&ws).unwrap()).unwrap()));
        let r = random_permutation(&spec, s1 ^ s2);
        prop_assert_eq!(p.compose(&q).compose(&r), p.compose(&q.compose(&r)));
    }
}

#[test]
fn zoo_cnn_is_invariant_with_stride_two() {
    let spec = NetworkSpec::small_cnn_zoo();
    let ws = random_features(&spec, 2, 1, 3);
    let xs = random_features(&NetworkSpec::mlp(&[1, 4 * 32 * 32]).unwrap(), 1, 1, 4)
        .weight(0)
        .reshape([4, 1, 32, 32]);
    let p = random_permutation(&spec, 5);
    let a = evaluate_cnn(&ws, &xs, Activation::Relu, 2).unwrap();
    let b = evaluate_cnn(&p.apply(&ws).unwrap(), &xs, Activation::Relu, 2).unwrap();
    assert_eq!(a.size(), vec![2, 4, 10]);
    assert!(a.allclose(&b, 1e-10, 1e-10, false));
    assert_eq!(a.kind(), Kind::Double);
}
