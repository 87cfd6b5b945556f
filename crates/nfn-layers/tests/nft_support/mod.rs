//! Helpers shared by the NFT and shared-block tests: f64 var stores, deterministic proptest
//! configs, gradient checks.
#![allow(dead_code)]

use nfn_weightspace::testing::test_device;
use nfn_weightspace::WeightSpaceFeatures;
use proptest::test_runner::{Config, RngSeed};
use tch::{nn, Kind, Tensor};

/// Tolerance of the central-difference gradient checks (f64, step 1e-6).
pub const GRAD_TOL: f64 = 1e-6;

/// A deterministic proptest config with `cases` cases.
pub fn cases(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0x5eed), ..Config::default() }
}

/// Build a layer in a fresh var store (seeded), then switch every variable to f64.
pub fn build_f64<T>(seed: i64, f: impl FnOnce(&nn::Path) -> T) -> (nn::VarStore, T) {
    tch::manual_seed(seed);
    let mut vs = nn::VarStore::new(test_device());
    let layer = f(&vs.root());
    vs.double();
    (vs, layer)
}

/// Sum of a weighted mix of every output entry, a scalar loss that touches every output.
pub fn ws_loss(ws: &WeightSpaceFeatures) -> Tensor {
    let flat = ws.flatten();
    let n = flat.numel() as i64;
    let weights =
        Tensor::linspace(-1.0, 1.0, n, (flat.kind(), flat.device())).view(flat.size().as_slice());
    (flat * weights).sum(Kind::Double)
}

/// A weighted sum over every entry of a tensor.
pub fn tensor_loss(xs: &Tensor) -> Tensor {
    let n = xs.numel() as i64;
    let weights =
        Tensor::linspace(-1.0, 1.0, n, (xs.kind(), xs.device())).view(xs.size().as_slice());
    (xs * weights).sum(Kind::Double)
}

/// Backward `loss` and check every trainable variable got a finite gradient of its shape.
pub fn assert_finite_grads(vs: &nn::VarStore, loss: &Tensor) {
    loss.backward();
    for (name, var) in vs.variables() {
        if !var.requires_grad() {
            continue;
        }
        let g = var.grad();
        assert!(g.defined(), "{name}: no gradient");
        assert_eq!(g.size(), var.size(), "{name}: gradient shape");
        assert!(g.isfinite().all().int64_value(&[]) == 1, "{name}: non-finite gradient");
    }
}

/// Central differences against autograd for (up to `per_var` entries of) every trainable
/// variable, plus entries of `inputs`. `f` recomputes the scalar loss.
pub fn check_gradients(
    vs: &nn::VarStore,
    inputs: &[&Tensor],
    per_var: i64,
    f: impl Fn() -> Tensor,
) {
    let mut targets: Vec<(String, Tensor)> =
        vs.variables().into_iter().filter(|(_, v)| v.requires_grad()).collect();
    for (i, x) in inputs.iter().enumerate() {
        targets.push((format!("input {i}"), x.shallow_clone()));
    }
    for (_, t) in &targets {
        let mut g = t.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    f().backward();
    let eps = 1e-6;
    for (name, t) in &targets {
        let grad = t.grad();
        assert!(grad.defined(), "{name}: no gradient");
        let flat_grad = grad.reshape([-1]);
        let n = t.numel() as i64;
        let step = (n / per_var).max(1);
        for idx in (0..n).step_by(step as usize) {
            let orig = tch::no_grad(|| t.reshape([-1]).double_value(&[idx]));
            let set = |v: f64| {
                tch::no_grad(|| {
                    let _ = t.view([-1]).get(idx).fill_(v);
                })
            };
            set(orig + eps);
            let up = tch::no_grad(|| f().double_value(&[]));
            set(orig - eps);
            let down = tch::no_grad(|| f().double_value(&[]));
            set(orig);
            let numeric = (up - down) / (2.0 * eps);
            let analytic = flat_grad.double_value(&[idx]);
            let err = (numeric - analytic).abs();
            assert!(
                err <= GRAD_TOL * numeric.abs().max(1.0),
                "{name}[{idx}]: autograd {analytic:e} vs central difference {numeric:e}"
            );
        }
    }
}

/// f64 input features that require gradients.
pub fn leaf_features(ws: &WeightSpaceFeatures) -> WeightSpaceFeatures {
    ws.map(|t| t.detach().copy().set_requires_grad(true))
}
