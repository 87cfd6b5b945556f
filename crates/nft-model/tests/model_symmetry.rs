//! Every invariant model's output is unchanged by hidden-neuron permutations of its input and changes
//! under uncoupled ones (MLP and CNN weight spaces, f64; StatNet is invariant to more by design). The MLP baseline is the control: it is not
//! invariant.

use nfn_weightspace::testing::*;
use nfn_weightspace::NetworkSpec;
use nft_model::*;
use proptest::prelude::*;
use tch::{nn::VarStore, Kind};

fn small_configs(cnn: bool) -> Vec<ModelConfig> {
    let head = MlpHeadConfig { hidden: vec![16], dropout: 0.0, ..Default::default() };
    let nft = |readout| {
        ModelConfig::Nft(NftModelConfig {
            input: NftInput::Fourier { scale: 1.0 },
            channels: 8,
            num_blocks: 2,
            num_heads: 2,
            ff_factor: 2,
            dropout: 0.0,
            readout,
            head: head.clone(),
            precision: nfn_layers::Precision::Fp32,
        })
    };
    let nfn = |layer, io| {
        ModelConfig::Nfn(InvariantNfnConfig {
            layer,
            hidden: vec![6, 5],
            fourier: Some(nfn_layers::GaussianFourierConfig {
                in_channels: 1,
                mapping_size: 4,
                scale: 1.0,
            }),
            io_encoding: io,
            io_embed: layer == NfnLayerKind::Np,
            layer_norm: true,
            feature_dropout: 0.0,
            pool: PoolKind::Hnp,
            head: head.clone(),
        })
    };
    let mut out = vec![
        nft(NftReadout::Pool(PoolKind::Hnp)),
        nfn(NfnLayerKind::Hnp, None),
        nfn(
            NfnLayerKind::Np,
            Some(nfn_layers::IoSinusoidalConfig { max_freq: 3.0, num_bands: 2, enc_layers: false }),
        ),
        ModelConfig::Statnet(head.clone()),
    ];
    if !cnn {
        out.push(nft(NftReadout::CrossAttention { num_latents: 3, latent_dim: 8 }));
        // Probing reads MLP weight spaces (INRs) only.
        let probe = ProbeConfig {
            num_probes: 5,
            code_dim: 4,
            generator_depth: 2,
            generator_width: 6,
            head: head.clone(),
            ..Default::default()
        };
        out.push(ModelConfig::Probe(probe.clone()));
        out.push(ModelConfig::Probegen(ProbeConfig {
            activation: nfn_weightspace::Activation::Tanh,
            ..probe
        }));
    }
    out
}

fn check(spec: &NetworkSpec, seed: u64) -> std::result::Result<(), TestCaseError> {
    let x = test_features(spec, 2, 1, seed);
    let perm = random_permutation(spec, seed ^ 7);
    for cfg in small_configs(spec.is_cnn()) {
        tch::manual_seed(seed as i64);
        let mut vs = VarStore::new(test_device());
        let model =
            cfg.build(&vs.root(), spec, 3).map_err(|e| TestCaseError::fail(e.to_string()))?;
        vs.double();
        let f = |ws: &nfn_weightspace::WeightSpaceFeatures| model.forward_t(ws, false);
        prop_assert_eq!(f(&x).size(), vec![2, 3]);
        assert_invariant(f, &x, &perm, TOL_F64)
            .map_err(|e| TestCaseError::fail(format!("{}: {e}", cfg.name())))?;
        // StatNet's statistics ignore how layers connect by design: it is invariant to more.
        if has_permutable_pair(spec) && !matches!(cfg, ModelConfig::Statnet(_)) {
            assert_sensitive_invariant(f, &x, seed)
                .map_err(|e| TestCaseError::fail(format!("{}: {e}", cfg.name())))?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn invariant_models_on_mlps(spec in mlp_spec(2..=4, 1..=8), seed in any::<u64>()) {
        check(&spec, seed)?;
    }

    #[test]
    fn invariant_models_on_cnns(spec in small_cnn_spec(), seed in any::<u64>()) {
        check(&spec, seed)?;
    }
}

#[test]
fn the_mlp_baseline_is_not_invariant() {
    let spec = NetworkSpec::mlp(&[2, 6, 6, 1]).unwrap();
    let vs = VarStore::new(test_device());
    let model = ModelConfig::Mlp(MlpConfig::default()).build(&vs.root(), &spec, 3).unwrap();
    let x = test_features(&spec, 2, 1, 0).to_kind(Kind::Float).unwrap();
    let perm = random_permutation(&spec, 1);
    assert!(assert_invariant(|ws| model.forward_t(ws, false), &x, &perm, TOL_F32).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    #[test]
    fn editing_models_are_equivariant(spec in prop_oneof![mlp_spec(2..=4, 1..=8), small_cnn_spec()], seed in any::<u64>()) {
        use nfn_layers::WsModuleT;
        let x = test_features(&spec, 2, 1, seed);
        let perm = random_permutation(&spec, seed ^ 3);
        tch::manual_seed(seed as i64);
        let mut vs = VarStore::new(test_device());
        let fourier = nfn_layers::GaussianFourierConfig { in_channels: 1, mapping_size: 4, scale: 1.0 };
        let models: Vec<Box<dyn WsModuleT>> = vec![
            Box::new(NftEditor::new(&(vs.root() / "nft"), &spec, &NftEditorConfig {
                channels: 8, num_blocks: 1, num_heads: 2, dropout: 0.0, out_scale: 1.0, ..Default::default()
            }).unwrap()),
            Box::new(TransferNet::new(&(vs.root() / "hnp"), &spec, &TransferNetConfig {
                fourier: fourier.clone(), hidden: 6, extra_layers: 1, out_scale: 1.0, ..Default::default()
            }).unwrap()),
            Box::new(TransferNet::new(&(vs.root() / "np"), &spec, &TransferNetConfig {
                layer: NfnLayerKind::Np, fourier, hidden: 6, extra_layers: 1, out_scale: 1.0
            }).unwrap()),
        ];
        vs.double();
        for model in &models {
            let f = |ws: &nfn_weightspace::WeightSpaceFeatures| model.forward_t(ws, false);
            assert_equivariant(f, &x, &perm, TOL_F64)?;
            if has_permutable_pair(&spec) {
                assert_sensitive_equivariant(f, &x, seed)?;
            }
        }
    }
}
