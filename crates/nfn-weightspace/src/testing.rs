//! Property-test helpers (feature `testing`): spec strategies, seeded random features and
//! permutations, and equivariance / invariance / sensitivity assertions, so that each layer's
//! symmetry test is a few lines.
//!
//! ```
//! use nfn_weightspace::testing::*;
//! let spec = nfn_weightspace::NetworkSpec::mlp(&[2, 4, 3, 1]).unwrap();
//! let x = random_features(&spec, 2, 3, 0);
//! let p = random_permutation(&spec, 1);
//! // Scaling every entry commutes with permutations, but is not invariant.
//! assert_equivariant(|ws| ws.scale(2.0), &x, &p, TOL_F64).unwrap();
//! assert!(assert_invariant(|ws| ws.flatten(), &x, &p, TOL_F64).is_err());
//! ```

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use tch::{Device, Kind, Tensor};

use crate::features::WeightSpaceFeatures;
use crate::permutation::NeuronPermutation;
use crate::spec::{LayerSpec, NetworkSpec};

/// Tolerance for symmetry checks in f64: sums of a few thousand O(1) terms agree to ~1e-12, and any
/// real symmetry violation moves outputs by O(1).
pub const TOL_F64: f64 = 1e-9;
/// Tolerance for symmetry checks in f32 (seven significant digits, a few accumulation steps).
pub const TOL_F32: f64 = 1e-3;
/// An output that changes by less than this is treated as unchanged by the sensitivity checks.
pub const SENSITIVITY_MIN_CHANGE: f64 = 1e-6;

/// The device the symmetry tests run on: `NFN_TEST_DEVICE` = `cpu` (the default), `cuda` or
/// `cuda:N`. The `assert_*` helpers below move their input there, and the symmetry suites build
/// their layers there, so `NFN_TEST_DEVICE=cuda cargo test` (run by `cargo xtask gpu-check`) checks
/// every equivariance claim on the GPU kernels too. Everything stays f64.
///
/// # Panics
/// On another value, or a CUDA device LibTorch cannot see (a test run that asks for the GPU must
/// not quietly test the CPU).
pub fn test_device() -> Device {
    let name = std::env::var("NFN_TEST_DEVICE").unwrap_or_default();
    let device = match name.trim() {
        "" | "cpu" => return Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(i) => Device::Cuda(i),
            None => panic!("NFN_TEST_DEVICE={other}: use cpu, cuda or cuda:N"),
        },
    };
    let visible = tch::Cuda::device_count();
    if let Device::Cuda(i) = device {
        assert!(
            (i as i64) < visible,
            "NFN_TEST_DEVICE={name}: LibTorch sees {visible} CUDA device(s) (build with the \
             nfn-cli/cuda feature on a GPU machine)"
        );
    }
    device
}

/// MLP specs with `layers` weight layers and every dim in `widths`.
pub fn mlp_spec(
    layers: std::ops::RangeInclusive<usize>,
    widths: std::ops::RangeInclusive<i64>,
) -> impl Strategy<Value = NetworkSpec> {
    layers
        .prop_flat_map(move |n| prop::collection::vec(widths.clone(), n + 1))
        .prop_map(|dims| NetworkSpec::mlp(&dims).expect("positive dims make a valid MLP"))
}

/// The default MLP specs of the symmetry tests: 2 to 5 layers, widths 1 to 16.
pub fn default_mlp_spec() -> impl Strategy<Value = NetworkSpec> {
    mlp_spec(2..=5, 1..=16)
}

/// Small CNN specs: 1 to 3 conv layers (1 to 6 channels, filters up to 3x3), pooling, 1 or 2 dense
/// layers, 1 to 3 input channels, 1 to 4 outputs.
pub fn small_cnn_spec() -> impl Strategy<Value = NetworkSpec> {
    (
        1..=3i64,
        prop::collection::vec(1..=6i64, 1..=3),
        (1..=3i64, 1..=3i64),
        prop::option::of(1..=5i64),
        1..=4i64,
    )
        .prop_map(|(c_in, convs, (kh, kw), dense_hidden, n_out)| {
            let mut layers = Vec::new();
            let mut prev = c_in;
            for c in convs {
                layers.push(LayerSpec::conv(prev, c, kh, kw));
                prev = c;
            }
            if let Some(h) = dense_hidden {
                layers.push(LayerSpec::dense(prev, h));
                prev = h;
            }
            layers.push(LayerSpec::dense(prev, n_out));
            NetworkSpec::new(layers).expect("positive sizes chain")
        })
}

/// MLP or CNN specs, half each.
pub fn any_spec() -> impl Strategy<Value = NetworkSpec> {
    prop_oneof![default_mlp_spec(), small_cnn_spec()]
}

/// Keep only specs with at least two layers and a hidden layer of at least two neurons, which the
/// sensitivity checks need (a one-neuron layer has no non-trivial permutation).
pub fn has_permutable_pair(spec: &NetworkSpec) -> bool {
    (1..spec.num_layers()).any(|m| spec.dims()[m] >= 2)
}

/// Standard normal f64 features on the CPU, reproducible from `seed` (independent of LibTorch's RNG).
pub fn random_features(spec: &NetworkSpec, b: i64, c: i64, seed: u64) -> WeightSpaceFeatures {
    let mut rng = StdRng::seed_from_u64(seed);
    WeightSpaceFeatures::from_fn(spec, b, c, |shape| {
        let n: i64 = shape.iter().product();
        let data: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        Tensor::from_slice(&data).reshape(shape)
    })
}

/// [`random_features`] on [`test_device`]: the input of the symmetry suites.
pub fn test_features(spec: &NetworkSpec, b: i64, c: i64, seed: u64) -> WeightSpaceFeatures {
    random_features(spec, b, c, seed).to_device(test_device())
}

/// A random hidden-neuron permutation from `seed`.
pub fn random_permutation(spec: &NetworkSpec, seed: u64) -> NeuronPermutation {
    NeuronPermutation::random(spec, seed)
}

/// Permute only the outputs of neuron layer `m` (rows of `W_{m-1}` and `b_{m-1}`) but not the
/// inputs of `W_m`: an uncoupled change that a correct weight-space layer must notice.
///
/// # Panics
/// If `m` is not a hidden layer or `perm` has the wrong length.
pub fn permute_rows_only(
    wsfeat: &WeightSpaceFeatures,
    m: usize,
    perm: &[i64],
) -> WeightSpaceFeatures {
    assert!(m >= 1 && m < wsfeat.num_layers(), "neuron layer {m} is not hidden");
    let idx = Tensor::from_slice(perm).to_device(wsfeat.device());
    let (mut weights, mut biases): (Vec<_>, Vec<_>) =
        wsfeat.iter().map(|(w, b)| (w.shallow_clone(), b.shallow_clone())).unzip();
    weights[m - 1] = weights[m - 1].index_select(2, &idx);
    biases[m - 1] = biases[m - 1].index_select(2, &idx);
    WeightSpaceFeatures::from_parts_unchecked(weights, biases)
}

/// A hidden layer with at least two neurons and a non-identity permutation of it, from `seed`.
pub fn uncoupled_choice(spec: &NetworkSpec, seed: u64) -> Option<(usize, Vec<i64>)> {
    let dims = spec.dims();
    let mut rng = StdRng::seed_from_u64(seed);
    let candidates: Vec<usize> = (1..spec.num_layers()).filter(|&m| dims[m] >= 2).collect();
    let &m = candidates.choose(&mut rng)?;
    let mut perm: Vec<i64> = (0..dims[m]).collect();
    perm.shuffle(&mut rng);
    if perm.iter().enumerate().all(|(i, &j)| i as i64 == j) {
        perm.swap(0, 1);
    }
    Some((m, perm))
}

fn no_uncoupled() -> TestCaseError {
    TestCaseError::reject("spec has no hidden layer with two or more neurons")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().to_kind(Kind::Double).double_value(&[])
}

fn max_abs(a: &Tensor) -> f64 {
    a.abs().max().to_kind(Kind::Double).double_value(&[])
}

/// Compare flattened outputs with a tolerance relative to their scale (at least 1).
fn close(a: &Tensor, b: &Tensor, tol: f64) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.size(), b.size());
    let scale = max_abs(a).max(max_abs(b)).max(1.0);
    let diff = max_abs_diff(a, b);
    prop_assert!(diff <= tol * scale, "outputs differ by {diff:e} (tolerance {:e})", tol * scale);
    Ok(())
}

/// `f(perm(x)) == perm(f(x))` within `tol` (relative to the outputs' scale).
///
/// # Errors
/// A failed test case describing the largest difference.
pub fn assert_equivariant(
    f: impl Fn(&WeightSpaceFeatures) -> WeightSpaceFeatures,
    x: &WeightSpaceFeatures,
    perm: &NeuronPermutation,
    tol: f64,
) -> Result<(), TestCaseError> {
    let x = &x.to_device(test_device());
    let px = perm.apply(x).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let lhs = f(&px);
    let rhs = perm.apply(&f(x)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    close(&lhs.flatten(), &rhs.flatten(), tol)
}

/// `f(perm(x)) == f(x)` within `tol` (relative to the outputs' scale).
///
/// # Errors
/// A failed test case describing the largest difference.
pub fn assert_invariant(
    f: impl Fn(&WeightSpaceFeatures) -> Tensor,
    x: &WeightSpaceFeatures,
    perm: &NeuronPermutation,
    tol: f64,
) -> Result<(), TestCaseError> {
    let x = &x.to_device(test_device());
    let px = perm.apply(x).map_err(|e| TestCaseError::fail(e.to_string()))?;
    close(&f(&px), &f(x), tol)
}

/// An equivariant `f` must notice an uncoupled permutation: `f(u(x)) != u(f(x))` where `u` permutes
/// only the rows of one layer (see [`permute_rows_only`]). Rejects (proptest: assumes away) specs without such a permutation.
///
/// # Errors
/// A failed test case if the outputs agree, i.e. `f` ignores how layers connect.
pub fn assert_sensitive_equivariant(
    f: impl Fn(&WeightSpaceFeatures) -> WeightSpaceFeatures,
    x: &WeightSpaceFeatures,
    seed: u64,
) -> Result<(), TestCaseError> {
    let x = &x.to_device(test_device());
    let spec = x.spec().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let Some((m, perm)) = uncoupled_choice(&spec, seed) else { return Err(no_uncoupled()) };
    let lhs = f(&permute_rows_only(x, m, &perm)).flatten();
    let rhs = permute_rows_only(&f(x), m, &perm).flatten();
    let diff = max_abs_diff(&lhs, &rhs);
    prop_assert!(
        diff > SENSITIVITY_MIN_CHANGE,
        "uncoupled permutation of layer {m} went unnoticed"
    );
    Ok(())
}

/// An invariant `f` must notice an uncoupled permutation: `f(u(x)) != f(x)`.
/// Rejects (proptest: assumes away) specs without such a permutation.
///
/// # Errors
/// A failed test case if the outputs agree.
pub fn assert_sensitive_invariant(
    f: impl Fn(&WeightSpaceFeatures) -> Tensor,
    x: &WeightSpaceFeatures,
    seed: u64,
) -> Result<(), TestCaseError> {
    let x = &x.to_device(test_device());
    let spec = x.spec().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let Some((m, perm)) = uncoupled_choice(&spec, seed) else { return Err(no_uncoupled()) };
    let diff = max_abs_diff(&f(&permute_rows_only(x, m, &perm)), &f(x));
    prop_assert!(
        diff > SENSITIVITY_MIN_CHANGE,
        "uncoupled permutation of layer {m} went unnoticed"
    );
    Ok(())
}
