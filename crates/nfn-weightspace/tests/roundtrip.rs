//! Round trips are exact: flatten/unflatten, ndarray, `.npy`/`.npz` (f32 and f64), serde/bincode.

use nfn_weightspace::io::{read_npy, write_npy};
use nfn_weightspace::{NetworkSpec, NeuronPermutation, WeightSpaceFeatures};
use proptest::prelude::*;
use tch::{Device, Kind};

fn spec_strategy() -> impl Strategy<Value = NetworkSpec> {
    let mlp = prop::collection::vec(1..=16i64, 3..=6).prop_map(|d| NetworkSpec::mlp(&d).unwrap());
    let cnn = (1..=3i64, 1..=4i64, 1..=3i64, 1..=3i64)
        .prop_map(|(c, h, k, o)| NetworkSpec::cnn(c, &[h, h + 1], [k, k], o).unwrap());
    prop_oneof![mlp, cnn]
}

fn same(a: &WeightSpaceFeatures, b: &WeightSpaceFeatures) -> bool {
    a.kind() == b.kind()
        && a.spec().unwrap() == b.spec().unwrap()
        && a.flatten().equal(&b.flatten())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn flatten_unflatten(spec in spec_strategy(), b in 1..4i64, c in 1..4i64) {
        let ws = WeightSpaceFeatures::randn(&spec, b, c, (Kind::Double, Device::Cpu));
        let flat = ws.flatten();
        prop_assert_eq!(flat.size(), vec![b, c, spec.num_params()]);
        prop_assert!(same(&WeightSpaceFeatures::unflatten(&flat, &spec).unwrap(), &ws));
    }

    #[test]
    fn npz_and_ndarray(spec in spec_strategy(), b in 1..3i64, c in 1..3i64, double in any::<bool>()) {
        let kind = if double { Kind::Double } else { Kind::Float };
        let ws = WeightSpaceFeatures::randn(&spec, b, c, (kind, Device::Cpu));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws.npz");
        ws.write_npz(&path).unwrap();
        prop_assert!(same(&WeightSpaceFeatures::read_npz(&path).unwrap(), &ws));
        let (w, bs) = ws.to_ndarray::<f64>().unwrap();
        let back = WeightSpaceFeatures::from_ndarray(&w, &bs).unwrap().to_kind(kind).unwrap();
        prop_assert!(same(&back, &ws));
    }

    #[test]
    fn serde(spec in spec_strategy(), seed in any::<u64>()) {
        let json = serde_json::to_string(&spec).unwrap();
        prop_assert_eq!(&serde_json::from_str::<NetworkSpec>(&json).unwrap(), &spec);
        let bytes = bincode::serialize(&spec).unwrap();
        prop_assert_eq!(&bincode::deserialize::<NetworkSpec>(&bytes).unwrap(), &spec);
        let p = NeuronPermutation::random(&spec, seed);
        let bytes = bincode::serialize(&p).unwrap();
        prop_assert_eq!(bincode::deserialize::<NeuronPermutation>(&bytes).unwrap(), p);
    }
}

#[test]
fn npy_tensor_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Float, Kind::Double] {
        let xs = tch::Tensor::randn([3, 4, 5], (kind, Device::Cpu));
        let path = dir.path().join("x.npy");
        write_npy(&path, &xs).unwrap();
        let back = read_npy(&path).unwrap();
        assert_eq!(back.kind(), kind);
        assert!(back.equal(&xs));
    }
}

#[test]
fn channel_less_arrays_get_a_channel_axis() {
    // Converted reference data sets store W0 as [N, 32, 2] without a channel axis.
    let spec = NetworkSpec::siren(1);
    let ws = WeightSpaceFeatures::randn(&spec, 2, 1, (Kind::Float, Device::Cpu));
    let squeezed = ws.map(|t| t.squeeze_dim(1));
    let (w, b): (Vec<_>, Vec<_>) =
        squeezed.iter().map(|(w, b)| (w.shallow_clone(), b.shallow_clone())).unzip();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.npz");
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&path).unwrap());
    for (l, (w, b)) in w.iter().zip(&b).enumerate() {
        npz.add_array(format!("W{l}"), &nfn_weightspace::io::array_from_tensor::<f32>(w).unwrap())
            .unwrap();
        npz.add_array(format!("b{l}"), &nfn_weightspace::io::array_from_tensor::<f32>(b).unwrap())
            .unwrap();
    }
    npz.finish().unwrap();
    assert!(same(&WeightSpaceFeatures::read_npz(&path).unwrap(), &ws));
}
