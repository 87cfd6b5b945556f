//! Gradients: every parameter gets a finite, non-zero gradient, and autograd agrees with central
//! differences in f64 on tiny cases.

use nfn_layers::{HnpPool, NpLinearConfig, NpPool, StatFeaturizer, WsModuleT, WsReadoutT};
use nfn_weightspace::testing::{random_features, test_device};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::{hnp_linear, np_linear};

/// Central-difference step and tolerance (f64, smooth loss of O(1) values).
const EPS: f64 = 1e-6;
const GRAD_TOL: f64 = 1e-6;

fn specs() -> [NetworkSpec; 2] {
    [
        NetworkSpec::mlp(&[3, 4, 2]).expect("valid"),
        NetworkSpec::cnn(2, &[3, 2], [2, 1], 2).expect("valid"),
    ]
}

/// A smooth scalar of an output tensor, with fixed random weights `r`.
fn scalar(ys: &Tensor, r: &Tensor) -> Tensor {
    (ys.tanh() * r).sum(Kind::Double)
}

/// Features on the test device that require gradients.
fn leaf_features(spec: &NetworkSpec, c: i64, seed: u64) -> WeightSpaceFeatures {
    random_features(spec, 2, c, seed).map(|t| t.to_device(test_device()).set_requires_grad(true))
}

/// Every tensor whose gradient we check: the VarStore's variables and the input features.
fn leaves(vs: Option<&VarStore>, x: &WeightSpaceFeatures) -> Vec<(String, Tensor)> {
    let mut out: Vec<(String, Tensor)> =
        vs.map(|vs| vs.variables().into_iter().collect()).unwrap_or_default();
    for (l, (w, b)) in x.iter().enumerate() {
        out.push((format!("input W{l}"), w.shallow_clone()));
        out.push((format!("input b{l}"), b.shallow_clone()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn bump(t: &Tensor, i: i64, delta: f64) {
    tch::no_grad(|| {
        let mut entry = t.view([-1]).get(i);
        entry += delta;
    });
}

/// Backward once; check finite non-zero gradients on every leaf, then central differences on the
/// first and last entry of each.
fn check_gradients(f: impl Fn() -> Tensor, leaves: &[(String, Tensor)]) {
    for (_, t) in leaves {
        t.shallow_clone().zero_grad();
    }
    f().backward();
    for (name, t) in leaves {
        let grad = t.grad();
        assert!(grad.defined(), "{name}: no gradient");
        assert_eq!(grad.isfinite().all().int64_value(&[]), 1, "{name}: non-finite gradient");
        assert!(grad.abs().max().double_value(&[]) > 0.0, "{name}: zero gradient");
        let n = t.numel() as i64;
        for i in [0, n - 1] {
            bump(t, i, EPS);
            let up = tch::no_grad(|| f().double_value(&[]));
            bump(t, i, -2.0 * EPS);
            let down = tch::no_grad(|| f().double_value(&[]));
            bump(t, i, EPS);
            let numeric = (up - down) / (2.0 * EPS);
            let analytic = grad.view([-1]).double_value(&[i]);
            assert!(
                (numeric - analytic).abs() <= GRAD_TOL * numeric.abs().max(1.0),
                "{name}[{i}]: autograd {analytic}, central difference {numeric}"
            );
        }
    }
}

fn check_layer(layer: &dyn WsModuleT, vs: &VarStore, spec: &NetworkSpec, c_in: i64) {
    let x = leaf_features(spec, c_in, 3);
    let r = layer.forward_t(&x, false).flatten().detach().randn_like();
    check_gradients(|| scalar(&layer.forward_t(&x, false).flatten(), &r), &leaves(Some(vs), &x));
}

#[test]
fn np_linear_gradients() {
    for spec in specs() {
        let (vs, layer) =
            np_linear(&spec, &NpLinearConfig { c_in: 2, c_out: 2, io_embed: true }, 0);
        check_layer(&layer, &vs, &spec, 2);
    }
}

#[test]
fn hnp_linear_gradients() {
    for spec in specs().into_iter().chain([NetworkSpec::mlp(&[2, 3, 3, 3, 2]).expect("valid")]) {
        let (vs, layer) = hnp_linear(&spec, 2, 2, 0);
        check_layer(&layer, &vs, &spec, 2);
    }
}

#[test]
fn readout_gradients() {
    tch::manual_seed(0);
    for spec in specs() {
        let x = leaf_features(&spec, 2, 4);
        let readouts: [Box<dyn WsReadoutT>; 3] = [
            Box::new(NpPool::new(&spec)),
            Box::new(HnpPool::new(&spec).expect("two layers")),
            Box::new(StatFeaturizer::new(&spec)),
        ];
        for readout in &readouts {
            let r = readout.forward_t(&x, false).detach().randn_like();
            check_gradients(|| scalar(&readout.forward_t(&x, false), &r), &leaves(None, &x));
        }
    }
}
