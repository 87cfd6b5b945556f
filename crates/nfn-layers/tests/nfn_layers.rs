//! The NFN layers (NpLinear, HnpLinear, NpPool, HnpPool, StatFeaturizer): symmetry properties,
//! agreement with the PyTorch reference package `nfn`, and gradients.

#[path = "nfn_layers/gradients.rs"]
mod gradients;
#[path = "nfn_layers/reference.rs"]
mod reference;
#[path = "nfn_layers/scaled.rs"]
mod scaled;
#[path = "nfn_layers/symmetry.rs"]
mod symmetry;
#[path = "nfn_layers/timing.rs"]
mod timing;

use nfn_layers::{HnpLinear, HnpLinearConfig, NpLinear, NpLinearConfig};
use nfn_weightspace::testing::test_device;
use nfn_weightspace::NetworkSpec;
use tch::nn::VarStore;
use tch::Kind;

/// An empty f64 VarStore on the test device (`NFN_TEST_DEVICE`, default the CPU).
fn f64_store() -> VarStore {
    let mut vs = VarStore::new(test_device());
    vs.set_kind(Kind::Double);
    vs
}

/// An f64 NpLinear with parameters drawn from `seed`.
fn np_linear(spec: &NetworkSpec, cfg: &NpLinearConfig, seed: u64) -> (VarStore, NpLinear) {
    tch::manual_seed(seed as i64);
    let vs = f64_store();
    let layer = NpLinear::new(&vs.root(), spec, cfg).expect("positive channels fit any spec");
    (vs, layer)
}

/// An f64 HnpLinear with parameters drawn from `seed`.
fn hnp_linear(spec: &NetworkSpec, c_in: i64, c_out: i64, seed: u64) -> (VarStore, HnpLinear) {
    tch::manual_seed(seed as i64);
    let vs = f64_store();
    let cfg = HnpLinearConfig { c_in, c_out };
    let layer = HnpLinear::new(&vs.root(), spec, &cfg).expect("spec has two or more layers");
    (vs, layer)
}
