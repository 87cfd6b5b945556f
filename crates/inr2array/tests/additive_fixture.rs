//! The additive decoder (CIFAR-10's `nft_additive` Inr2Array model) against the reference's own
//! code: the same latents and parameters give the same 3-channel 32 x 32 rendering. The fixture is
//! made by `fixtures/additive/gen.py`, which runs the reference repository's `SimpleHyperNetwork`,
//! `UnflattenWeights`, additive update `raw * scale + theta0` and `get_spatial_batch_siren` in f64.
//! Checked in f64 to 1e-8 (the largest pixel is about 0.3; a wrong order, cell or scale moves
//! pixels by O(0.1)). The fixture was made on an AMD EPYC, where the difference stayed under 1e-10;
//! on an Intel Xeon it is 1.7e-9 (LibTorch picks other CPU kernels there, and the SIREN's
//! `sin(30 x)` amplifies their last-bit differences), so the bound leaves room for the CPU.

use std::path::PathBuf;

use inr2array::{DecoderConfig, DecoderType, SpatialDecoder, SpatialRenderer};
use nfn_weightspace::io::read_npy;
use nfn_weightspace::NetworkSpec;
use tch::{nn::VarStore, Device, Kind};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/additive").join(name)
}

#[test]
fn additive_decoder_renders_what_the_reference_renders() {
    let z = read_npy(fixture("z.npy")).unwrap(); // [B, M, D]
    let expected = read_npy(fixture("image.npy")).unwrap(); // [B, 3, 32, 32]
    let (d, m) = (z.size()[2], z.size()[1]);
    let mut vs = VarStore::new(Device::Cpu);
    let cfg = DecoderConfig { dec_type: DecoderType::Additive, hidden_dim: 16 };
    let decoder = SpatialDecoder::new(&vs.root(), &NetworkSpec::siren(3), d, &cfg).unwrap();
    vs.double();
    let mut vars = vs.variables();
    let total = vars.len();
    for entry in std::fs::read_dir(fixture("")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(name) = file.strip_prefix("p.").and_then(|f| f.strip_suffix(".npy")) else {
            continue;
        };
        let mut var = vars.remove(name).unwrap_or_else(|| panic!("no variable {name}"));
        let value = read_npy(&path).unwrap();
        assert_eq!(var.size(), value.size(), "{name}");
        tch::no_grad(|| var.copy_(&value));
    }
    assert!(vars.is_empty(), "variables the fixture does not set: {:?} of {total}", vars.keys());
    let g = (m as f64).sqrt() as i64;
    let renderer = SpatialRenderer::new(32, 32, g, Device::Cpu).unwrap();
    let image =
        tch::no_grad(|| renderer.render(&decoder.forward(&z.to_kind(Kind::Double)))).unwrap();
    assert_eq!(image.size(), expected.size());
    let diff = (&image - &expected).abs().max().double_value(&[]);
    assert!(diff < 1e-8, "largest pixel difference {diff}");
    // The fixture is not trivially flat.
    assert!(expected.std(true).double_value(&[]) > 0.01);
}
