//! NFT layers (design.md §4): NpAttention and NftBlock commute with hidden-neuron permutations and
//! notice uncoupled ones (MLPs with shared, CNNs with per-layer projections); the cross-attention
//! read-out is invariant and sensitive. The block and read-out match slow direct implementations
//! of the spec's equations; gradients are finite and pass central differences.

mod nft_support;

use nfn_layers::{
    CrossAttnReadout, CrossAttnReadoutConfig, NftBlock, NftBlockConfig, NpAttention,
    NpAttentionConfig, WsModuleT, WsReadoutT,
};
use nfn_weightspace::testing::*;
use nfn_weightspace::{LayerSpec, NetworkSpec, WeightSpaceFeatures};
use nft_support::*;
use proptest::prelude::*;
use tch::{nn, Kind, Tensor};

fn attention(spec: &NetworkSpec, heads: i64, dh: i64, seed: u64) -> (nn::VarStore, NpAttention) {
    let cfg = NpAttentionConfig {
        channels: heads * dh,
        num_heads: heads,
        share_projections: !spec.is_cnn(),
        ..Default::default()
    };
    build_f64(seed as i64, |vs| NpAttention::new(vs, spec, &cfg).unwrap())
}

fn block(spec: &NetworkSpec, c: i64, seed: u64) -> (nn::VarStore, NftBlock) {
    let cfg = NftBlockConfig {
        channels: c,
        num_heads: 2,
        ff_factor: 2,
        dropout: 0.1,
        share_projections: !spec.is_cnn(),
    };
    build_f64(seed as i64, |vs| NftBlock::new(vs, spec, &cfg).unwrap())
}

fn readout(spec: &NetworkSpec, c: i64, seed: u64) -> (nn::VarStore, CrossAttnReadout) {
    let cfg = CrossAttnReadoutConfig {
        channels: c,
        num_latents: 3,
        latent_dim: 4,
        num_heads: 2,
        head_dim: 3,
        ff_mult: 2,
        dropout: 0.0,
    };
    build_f64(seed as i64, |vs| CrossAttnReadout::new(vs, spec, &cfg).unwrap())
}

proptest! {
    #![proptest_config(cases(24))]

    #[test]
    fn attention_is_equivariant(spec in any_spec(), heads in 1..3i64, dh in 1..3i64, seed in any::<u64>()) {
        let (_vs, attn) = attention(&spec, heads, dh, seed);
        let x = test_features(&spec, 2, heads * dh, seed);
        assert_equivariant(|ws| attn.forward_t(ws, false), &x, &random_permutation(&spec, seed ^ 1), TOL_F64)?;
    }

    #[test]
    fn attention_is_sensitive(spec in any_spec(), heads in 1..3i64, seed in any::<u64>()) {
        let (_vs, attn) = attention(&spec, heads, 2, seed);
        let x = test_features(&spec, 2, heads * 2, seed);
        assert_sensitive_equivariant(|ws| attn.forward_t(ws, false), &x, seed ^ 2)?;
    }

    #[test]
    fn block_is_equivariant_and_sensitive(spec in any_spec(), c in prop::sample::select(vec![2i64, 4]), seed in any::<u64>()) {
        let (_vs, blk) = block(&spec, c, seed);
        let x = test_features(&spec, 2, c, seed);
        assert_equivariant(|ws| blk.forward_t(ws, false), &x, &random_permutation(&spec, seed ^ 1), TOL_F64)?;
        assert_sensitive_equivariant(|ws| blk.forward_t(ws, false), &x, seed ^ 2)?;
    }

    /// The read-out alone is a set function of the entries, invariant to *every* token permutation
    /// (uncoupled ones included, design.md §4.5); behind an NFT block it must notice uncoupled
    /// permutations.
    #[test]
    fn readout_is_invariant_and_sensitive_behind_a_block(spec in default_mlp_spec(), c in prop::sample::select(vec![2i64, 4]), seed in any::<u64>()) {
        let (_vs, ro) = readout(&spec, c, seed);
        let (_vs2, blk) = block(&spec, c, seed ^ 3);
        let x = test_features(&spec, 2, c, seed);
        prop_assert_eq!(ro.forward_t(&x, false).size(), vec![2, 3, 4]);
        let p = random_permutation(&spec, seed ^ 1);
        assert_invariant(|ws| ro.forward_t(ws, false), &x, &p, TOL_F64)?;
        let model = |ws: &WeightSpaceFeatures| ro.forward_t(&blk.forward_t(ws, false), false);
        assert_invariant(model, &x, &p, TOL_F64)?;
        assert_sensitive_invariant(model, &x, seed ^ 2)?;
    }
}

#[test]
fn configs_that_do_not_fit_are_rejected() {
    let cnn = NetworkSpec::cnn(1, &[3], [2, 2], 2).unwrap();
    let vs = nn::VarStore::new(test_device());
    let shared = NpAttentionConfig { channels: 4, num_heads: 2, ..Default::default() };
    assert!(NpAttention::new(&vs.root(), &cnn, &shared).is_err());
    let bad_heads = NpAttentionConfig { channels: 6, num_heads: 4, ..Default::default() };
    assert!(bad_heads.validate().is_err());
    let no_terms =
        NpAttentionConfig { layer_term: false, neuron_term: false, ..Default::default() };
    assert!(no_terms.validate().is_err());
    assert!(CrossAttnReadout::new(&vs.root(), &cnn, &CrossAttnReadoutConfig::default()).is_err());
    assert!(NftBlockConfig { ff_factor: 0, ..Default::default() }.validate().is_err());
    let toml_like: NftBlockConfig = serde_json_like();
    assert_eq!(toml_like, NftBlockConfig { num_heads: 8, ..Default::default() });
}

/// Configs deserialize with defaults for missing fields (serde `default`).
fn serde_json_like() -> NftBlockConfig {
    use serde::de::value::{MapDeserializer, StrDeserializer};
    use serde::Deserialize;
    let fields = [("num_heads", 8i64)]
        .into_iter()
        .map(|(k, v)| (StrDeserializer::<serde::de::value::Error>::new(k), v));
    NftBlockConfig::deserialize(MapDeserializer::new(fields)).unwrap()
}

fn var(vs: &nn::VarStore, name: &str) -> Tensor {
    vs.variables().remove(&name.replace('/', ".")).unwrap_or_else(|| panic!("no variable {name}"))
}

/// Slow per-entry LayerNorm of design.md §2.4 on a channel-first tensor (dense layers).
fn slow_ln(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Tensor {
    let mean = x.mean_dim(1, true, None);
    let std = x.std_dim(1, true, true);
    let shape: Vec<i64> = (0..x.dim()).map(|d| if d == 1 { -1 } else { 1 }).collect();
    (x - mean) / (std + 1e-5) * gamma.view(shape.as_slice()) + beta.view(shape.as_slice())
}

/// Slow channel map `W x + b` over axis 1 via einsum.
fn slow_map(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let y = if x.dim() == 4 {
        Tensor::einsum("oc,bcij->boij", &[w, x], None::<i64>)
    } else {
        Tensor::einsum("oc,bci->boi", &[w, x], None::<i64>)
    };
    let shape: Vec<i64> = (0..x.dim()).map(|d| if d == 1 { -1 } else { 1 }).collect();
    y + b.view(shape.as_slice())
}

#[test]
fn block_matches_its_equations() {
    let spec = NetworkSpec::mlp(&[3, 5, 4, 2]).unwrap();
    let (vs, blk) = block(&spec, 4, 7);
    tch::no_grad(|| {
        for (_, mut v) in vs.variables() {
            let noise = v.randn_like() * 0.2;
            let _ = v.g_add_(&noise);
        }
    });
    let x = test_features(&spec, 2, 4, 3);
    let got = blk.forward_t(&x, false);
    let attn = blk.attention().forward_t(
        &WeightSpaceFeatures::from_parts_unchecked(
            (0..3)
                .map(|l| {
                    slow_ln(
                        x.weight(l),
                        &var(&vs, &format!("ln_attn/weight_norms/{l}/weight")),
                        &var(&vs, &format!("ln_attn/weight_norms/{l}/bias")),
                    )
                })
                .collect(),
            (0..3)
                .map(|l| {
                    slow_ln(
                        x.bias(l),
                        &var(&vs, &format!("ln_attn/bias_norms/{l}/weight")),
                        &var(&vs, &format!("ln_attn/bias_norms/{l}/bias")),
                    )
                })
                .collect(),
        ),
        false,
    );
    let mid = x.add(&attn);
    let ff = |t: &Tensor, l: usize, kind: &str| {
        let g = var(&vs, &format!("ln_ff/{kind}_norms/{l}/weight"));
        let b = var(&vs, &format!("ln_ff/{kind}_norms/{l}/bias"));
        let h = slow_map(
            &slow_ln(t, &g, &b),
            &var(&vs, &format!("ff_in/{kind}_maps/{l}/weight")),
            &var(&vs, &format!("ff_in/{kind}_maps/{l}/bias")),
        );
        let h = h.gelu("none");
        t + slow_map(
            &h,
            &var(&vs, &format!("ff_out/{kind}_maps/{l}/weight")),
            &var(&vs, &format!("ff_out/{kind}_maps/{l}/bias")),
        )
    };
    let expect = WeightSpaceFeatures::from_parts_unchecked(
        (0..3).map(|l| ff(mid.weight(l), l, "weight")).collect(),
        (0..3).map(|l| ff(mid.bias(l), l, "bias")).collect(),
    );
    assert!(got.flatten().allclose(&expect.flatten(), 1e-10, 1e-10, false));
}

/// Slow read-out (design.md §4.5), one network at a time with explicit softmax.
fn slow_readout(vs: &nn::VarStore, x: &WeightSpaceFeatures) -> Tensor {
    let ln = |t: &Tensor, name: &str| {
        let mean = t.mean_dim(-1, true, None);
        let var_b = t.var_dim(-1, false, true);
        (t - mean) / (var_b + 1e-5).sqrt() * var(vs, &format!("{name}/weight"))
            + var(vs, &format!("{name}/bias"))
    };
    let flat = x.flatten(); // [b, C, N]
    let z0 = var(vs, "latents"); // [M, D]
    let (wq, wkv, wo, bo) = (
        var(vs, "to_q/weight"),
        var(vs, "to_kv/weight"),
        var(vs, "to_out/weight"),
        var(vs, "to_out/bias"),
    );
    let (h, dh) = (2, 3);
    let outs: Vec<Tensor> = (0..x.batch_size())
        .map(|i| {
            let tokens = ln(&flat.get(i).tr(), "ln_tokens"); // [N, C]
            let q = ln(&z0, "ln_latents").matmul(&wq.tr()); // [M, H dh]
            let kv = tokens.matmul(&wkv.tr()); // [N, 2 H dh]
            let heads: Vec<Tensor> = (0..h)
                .map(|hh| {
                    let qh = q.narrow(1, hh * dh, dh);
                    let kh = kv.narrow(1, hh * dh, dh);
                    let vh = kv.narrow(1, h * dh + hh * dh, dh);
                    (qh.matmul(&kh.tr()) / (dh as f64).sqrt()).softmax(-1, Kind::Double).matmul(&vh)
                })
                .collect();
            let z = Tensor::cat(&heads, 1).matmul(&wo.tr()) + &bo + &z0;
            let u = ln(&z, "ln_ff").matmul(&var(vs, "ff_in/weight").tr()) + var(vs, "ff_in/bias");
            let half = u.size()[1] / 2;
            let g = u.narrow(1, 0, half) * u.narrow(1, half, half).gelu("none");
            &z + g.matmul(&var(vs, "ff_out/weight").tr()) + var(vs, "ff_out/bias")
        })
        .collect();
    Tensor::stack(&outs, 0)
}

#[test]
fn readout_matches_its_equations() {
    let spec = NetworkSpec::mlp(&[2, 4, 3, 1]).unwrap();
    let (vs, ro) = readout(&spec, 3, 8);
    tch::no_grad(|| {
        for (_, mut v) in vs.variables() {
            let noise = v.randn_like() * 0.2;
            let _ = v.g_add_(&noise);
        }
    });
    let x = test_features(&spec, 2, 3, 5);
    let got = ro.forward_t(&x, false);
    assert!(got.allclose(&slow_readout(&vs, &x), 1e-10, 1e-10, false));
}

fn tiny_cnn() -> NetworkSpec {
    NetworkSpec::new(vec![
        LayerSpec::conv(1, 2, 1, 2),
        LayerSpec::conv(2, 2, 2, 1),
        LayerSpec::dense(2, 2),
    ])
    .unwrap()
}

#[test]
fn attention_passes_central_differences() {
    for spec in [NetworkSpec::mlp(&[2, 3, 2, 1]).unwrap(), tiny_cnn()] {
        let (vs, attn) = attention(&spec, 2, 2, 12);
        let x = leaf_features(&test_features(&spec, 2, 4, 13));
        let inputs: Vec<&Tensor> = x.weights().iter().chain(x.biases()).collect();
        check_gradients(&vs, &inputs, 6, || ws_loss(&attn.forward_t(&x, false)));
    }
}

#[test]
fn readout_passes_central_differences() {
    let spec = NetworkSpec::mlp(&[2, 3, 1]).unwrap();
    let (vs, ro) = readout(&spec, 3, 14);
    let x = leaf_features(&test_features(&spec, 2, 3, 15));
    let inputs: Vec<&Tensor> = x.weights().iter().chain(x.biases()).collect();
    check_gradients(&vs, &inputs, 6, || tensor_loss(&ro.forward_t(&x, false)));
}

#[test]
fn nft_layers_have_finite_gradients() {
    for spec in [NetworkSpec::mlp(&[2, 5, 4, 1]).unwrap(), tiny_cnn()] {
        let (vs, blk) = block(&spec, 4, 16);
        let x = leaf_features(&test_features(&spec, 3, 4, 17));
        tch::manual_seed(0);
        assert_finite_grads(&vs, &ws_loss(&blk.forward_t(&x, true)));
    }
    let spec = NetworkSpec::mlp(&[2, 5, 4, 1]).unwrap();
    let (vs, ro) = readout(&spec, 3, 18);
    let x = test_features(&spec, 3, 3, 19);
    assert_finite_grads(&vs, &tensor_loss(&ro.forward_t(&x, true)));
}

#[test]
fn attention_dropout_is_off_in_eval_and_on_in_training() {
    let spec = NetworkSpec::mlp(&[2, 6, 5, 1]).unwrap();
    let cfg = NpAttentionConfig { channels: 4, num_heads: 2, dropout: 0.5, ..Default::default() };
    let (_vs, attn) = build_f64(20, |vs| NpAttention::new(vs, &spec, &cfg).unwrap());
    let x = test_features(&spec, 2, 4, 21);
    let a = attn.forward_t(&x, false).flatten();
    assert!(a.allclose(&attn.forward_t(&x, false).flatten(), 0.0, 0.0, false));
    tch::manual_seed(1);
    assert!(!a.allclose(&attn.forward_t(&x, true).flatten(), 1e-6, 1e-6, false));
}
