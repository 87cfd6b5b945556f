//! Spatial rendering: the image's shape, cells that tile the grid (design.md §5.2, §8.15), and
//! agreement with plain rendering when every latent decodes to the same SIREN.

use inr2array::{pixel_cells, DecoderConfig, DecoderType, SpatialDecoder, SpatialRenderer};
use nfn_weightspace::{render_siren, siren_init_tch_rng, NetworkSpec, WeightSpaceFeatures};
use tch::{nn::VarStore, Device, Kind, Tensor};

#[test]
fn cells_tile_the_grid() {
    for (side, g, expected) in [(28, 4, [5i64, 9, 9, 5]), (32, 4, [6, 10, 10, 6])] {
        let cells = pixel_cells(side, side, g);
        assert_eq!(cells.len() as i64, side * side); // every pixel has exactly one cell
        let renderer = SpatialRenderer::new(side, side, g, Device::Cpu).expect("valid sizes");
        let counts = renderer.cell_counts();
        assert_eq!(counts.iter().sum::<i64>(), side * side);
        for (m, count) in counts.iter().enumerate() {
            assert_eq!(*count, expected[m / 4] * expected[m % 4], "cell {m} of {side} px");
        }
        // Row-major pixel (r, c) -> latent row_cell * g + col_cell.
        assert_eq!(cells[0], 0);
        assert_eq!(cells[(side * side - 1) as usize], g * g - 1);
        assert_eq!(cells[expected[0] as usize], 1);
    }
    assert!(SpatialRenderer::new(3, 3, 8, Device::Cpu).is_err());
}

/// Every pixel is drawn by its own cell's SIREN: give latent m the constant output m.
#[test]
fn each_pixel_uses_its_cell() {
    let spec = NetworkSpec::siren(1);
    let (b, m) = (2i64, 16i64);
    let sirens = WeightSpaceFeatures::zeros(&spec, b * m, 1, (Kind::Double, Device::Cpu));
    let (weights, mut biases) = sirens.into_parts();
    biases[2] = Tensor::arange(m, (Kind::Double, Device::Cpu)).repeat([b]).view([b * m, 1, 1]);
    let sirens = WeightSpaceFeatures::new(weights, biases).expect("valid parts");
    let renderer = SpatialRenderer::new(28, 28, 4, Device::Cpu).expect("valid sizes");
    let image = renderer.render(&sirens).expect("raw SIRENs");
    assert_eq!(image.size(), [b, 1, 28, 28]);
    let cells =
        Tensor::from_slice(&pixel_cells(28, 28, 4)).to_kind(Kind::Double).view([1, 1, 28, 28]);
    assert!(image.allclose(&cells.expand([b, 1, 28, 28], false), 0.0, 1e-12, false));
}

#[test]
fn same_siren_everywhere_equals_plain_rendering() {
    tch::manual_seed(3);
    for (c, side) in [(1i64, 28i64), (3, 32)] {
        let spec = NetworkSpec::siren(c);
        let theta = siren_init_tch_rng(&spec, 2, (Kind::Double, Device::Cpu)); // [2] SIRENs
        let copies = theta
            .index_batch(&Tensor::from_slice(&[0i64, 1]).repeat_interleave_self_int(16, 0, None));
        let renderer = SpatialRenderer::new(side, side, 4, Device::Cpu).expect("valid sizes");
        let spatial = renderer.render(&copies).expect("raw SIRENs");
        let plain = render_siren(&theta, side, side).expect("raw SIRENs");
        assert_eq!(spatial.size(), [2, c, side, side]);
        assert!(spatial.allclose(&plain, 1e-12, 1e-12, false));
    }
}

#[test]
fn decoders_make_sirens_per_latent() {
    tch::manual_seed(0);
    let spec = NetworkSpec::siren(1);
    for dec_type in [DecoderType::Sitzmann, DecoderType::Additive] {
        let vs = VarStore::new(Device::Cpu);
        let cfg = DecoderConfig { dec_type, hidden_dim: 32 };
        let dec = SpatialDecoder::new(&vs.root(), &spec, 8, &cfg).expect("valid config");
        let zs = Tensor::randn([3, 4, 8], (Kind::Float, Device::Cpu));
        assert_eq!(dec.forward_flat(&zs).size(), [3, 4, 1185]);
        let sirens = dec.forward(&zs);
        assert_eq!(sirens.batch_size(), 12);
        sirens.check_spec(&spec).expect("SIREN spec");
        let image = SpatialRenderer::new(28, 28, 2, Device::Cpu)
            .expect("valid sizes")
            .render(&sirens)
            .expect("raw SIRENs");
        assert_eq!(image.size(), [3, 1, 28, 28]);
        assert!(image.isfinite().all().int64_value(&[]) == 1);
    }
}
