//! Agreement with the PyTorch reference package `nfn==0.1.2` on the fixtures made by
//! `tests/fixtures/nfn/gen.py`: the reference parameters are loaded into our layers by VarStore
//! path.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use nfn_layers::{
    HnpLinear, HnpLinearConfig, HnpPool, NpLinear, NpLinearConfig, NpPool, StatFeaturizer,
    WsModuleT, WsReadoutT,
};
use nfn_weightspace::io::read_npy;
use nfn_weightspace::testing::test_device;
use nfn_weightspace::WeightSpaceFeatures;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::f64_store;

/// The cases of gen.py's CASES.
const CASES: [&str; 5] = ["mlp_3_5_4_2", "mlp_3_5_2", "mlp_2_3_4_3_2", "cnn_2_3_4_2", "cnn_1_3_2"];
/// f64 agreement: both sides compute in double precision.
const TOL_F64: f64 = 1e-10;
/// f32 agreement (our layers in f32 against the f64 reference), and the reference StatFeaturizer,
/// which only runs in f32.
const TOL_F32: f64 = 1e-5;

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nfn").join(case)
}

/// An `.npy` fixture, on the test device.
fn read(path: &Path) -> Result<Tensor> {
    Ok(read_npy(path).with_context(|| format!("reading {path:?}"))?.to_device(test_device()))
}

/// Features stored as `W<l>.npy`, `b<l>.npy` in `dir`.
fn read_features(dir: &Path) -> Result<WeightSpaceFeatures> {
    let (mut weights, mut biases) = (Vec::new(), Vec::new());
    while dir.join(format!("W{}.npy", weights.len())).exists() {
        let l = weights.len();
        weights.push(read(&dir.join(format!("W{l}.npy")))?);
        biases.push(read(&dir.join(format!("b{l}.npy")))?);
    }
    Ok(WeightSpaceFeatures::new(weights, biases)?)
}

/// Copy every `param.<path>.npy` of `dir` into the variable at `<path>`; all must match one-to-one.
fn load_params(vs: &VarStore, dir: &Path) -> Result<()> {
    let files = std::fs::read_dir(dir)?
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("param.")))
        .count();
    let vars = vs.variables();
    ensure!(files == vars.len(), "{dir:?}: {files} parameter files for {} variables", vars.len());
    for (name, mut var) in vars {
        let value = read(&dir.join(format!("param.{name}.npy")))?;
        ensure!(value.size() == var.size(), "{name}: {:?} vs {:?}", value.size(), var.size());
        tch::no_grad(|| var.copy_(&value));
    }
    Ok(())
}

/// Largest absolute difference relative to the reference's scale (at least 1).
fn rel_diff(ours: &Tensor, reference: &Tensor) -> Result<f64> {
    ensure!(ours.size() == reference.size(), "shapes {:?} vs {:?}", ours.size(), reference.size());
    let reference = reference.to_kind(Kind::Double);
    let scale = reference.abs().max().double_value(&[]).max(1.0);
    Ok((ours.to_kind(Kind::Double) - reference).abs().max().double_value(&[]) / scale)
}

/// Run `layer` (built by `build` into an f64 VarStore loaded with `dir`'s parameters) in f64 and
/// f32 and compare with `dir`'s outputs. Returns the (f64, f32) differences.
fn check_layer(
    x: &WeightSpaceFeatures,
    dir: &Path,
    build: impl Fn(&VarStore) -> Box<dyn WsModuleT>,
) -> Result<(f64, f64)> {
    let expected = read_features(dir)?.flatten();
    let mut vs = f64_store();
    let layer = build(&vs);
    load_params(&vs, dir)?;
    let d64 = rel_diff(&layer.forward_t(x, false).flatten(), &expected)?;
    vs.float();
    let d32 = rel_diff(&layer.forward_t(&x.to_kind(Kind::Float)?, false).flatten(), &expected)?;
    ensure!(d64 < TOL_F64 && d32 < TOL_F32, "{dir:?}: differences {d64:e} (f64), {d32:e} (f32)");
    Ok((d64, d32))
}

#[test]
fn layers_and_readouts_match_the_reference() -> Result<()> {
    let (mut worst64, mut worst32) = (0.0f64, 0.0f64);
    for case in CASES {
        let dir = case_dir(case);
        let x = read_features(&dir)?;
        let (spec, c_in) = (x.spec()?, x.channels());
        let c_out = read_features(&dir.join("hnp"))?.channels();
        for (sub, io_embed) in [("np", false), ("np_io", true)] {
            if !dir.join(sub).exists() {
                continue;
            }
            let cfg = NpLinearConfig { c_in, c_out, io_embed };
            let (d64, d32) = check_layer(&x, &dir.join(sub), |vs| {
                Box::new(NpLinear::new(&vs.root(), &spec, &cfg).expect("fits"))
            })?;
            (worst64, worst32) = (worst64.max(d64), worst32.max(d32));
        }
        let cfg = HnpLinearConfig { c_in, c_out };
        let (d64, d32) = check_layer(&x, &dir.join("hnp"), |vs| {
            Box::new(HnpLinear::new(&vs.root(), &spec, &cfg).expect("fits"))
        })?;
        (worst64, worst32) = (worst64.max(d64), worst32.max(d32));

        let np =
            rel_diff(&NpPool::new(&spec).forward_t(&x, false), &read(&dir.join("np_pool.npy"))?)?;
        let hnp = rel_diff(
            &HnpPool::new(&spec)?.forward_t(&x, false),
            &read(&dir.join("hnp_pool.npy"))?,
        )?;
        let stats = rel_diff(
            &StatFeaturizer::new(&spec).forward_t(&x, false),
            &read(&dir.join("stats.npy"))?,
        )?;
        ensure!(np < TOL_F64 && hnp < TOL_F64, "{case}: pools differ by {np:e}, {hnp:e}");
        ensure!(stats < TOL_F32, "{case}: statistics differ by {stats:e}");
        worst64 = worst64.max(np).max(hnp);
        worst32 = worst32.max(stats);
    }
    eprintln!("reference agreement: f64 {worst64:e}, f32 {worst32:e} (relative to output scale)");
    Ok(())
}

/// Largest absolute entry of a variable.
fn max_abs(vars: &std::collections::HashMap<String, Tensor>, name: &str) -> f64 {
    vars[name].abs().max().double_value(&[])
}

/// The reference's init (design.md §3.2, §3.3, §8.14): maps writing into the same output share
/// one bound `1/sqrt(sum of fan-ins)`; HNP's first-layer weight maps and last-layer bias map are
/// initialised on their own (PyTorch default).
#[test]
fn init_groups_follow_the_reference() {
    let spec = nfn_weightspace::NetworkSpec::mlp(&[3, 5, 4, 2]).expect("valid");
    let np_groups: Vec<(usize, Vec<&str>)> = (0..3)
        .flat_map(|l| {
            [(l, vec!["pointwise", "global", "row", "col"]), (l, vec!["bias_col", "bias_global"])]
        })
        .collect();
    let hnp_groups = vec![
        (0, vec!["row"]),
        (0, vec!["row_global"]),
        (0, vec!["bias_row", "bias_global"]),
        (1, vec!["pointwise", "global", "row", "col"]),
        (1, vec!["bias_col", "bias_global"]),
        (2, vec!["col", "col_global"]),
        (2, vec!["bias_global"]),
    ];
    let (np_vs, _np) =
        super::np_linear(&spec, &NpLinearConfig { c_in: 8, c_out: 8, io_embed: false }, 0);
    let (hnp_vs, _hnp) = super::hnp_linear(&spec, 8, 8, 0);
    for (vs, groups) in [(np_vs, np_groups), (hnp_vs, hnp_groups)] {
        let vars = vs.variables();
        let mut seen = 0;
        for (l, maps) in groups {
            let path = |map: &str, leaf: &str| format!("layers.{l}.{map}.{leaf}");
            let fan_in: i64 = maps.iter().map(|m| vars[&path(m, "weight")].size()[1]).sum();
            let bound = 1.0 / (fan_in as f64).sqrt();
            for map in &maps {
                let (w, b) =
                    (max_abs(&vars, &path(map, "weight")), max_abs(&vars, &path(map, "bias")));
                assert!(w <= bound && b <= bound, "{}: {w}, {b} > {bound}", path(map, ""));
                assert!(w > 0.9 * bound, "{}: {w} is far below {bound}", path(map, "weight"));
                seen += 2;
            }
        }
        assert_eq!(seen, vars.len(), "every variable belongs to one group");
    }
}
