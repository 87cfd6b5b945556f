//! SIRENs, the INRs of the reference data sets (design.md §5.2, §6.1): ω0, the reference init, the
//! pixel grid they are evaluated on and rendering them to images.
//!
//! A SIREN 2 → 32 → 32 → `c_out` ([`NetworkSpec::siren`]) computes `h = sin(ω0 (W x + b))` for
//! every layer but the last, which is linear ([`Activation::SIREN`]), on pixel coordinates in
//! `[-1, 1]²`. The batched fitter that makes SIRENs from images lives in `nfn-datasets`.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Uniform};
use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::features::WeightSpaceFeatures;
use crate::function::{evaluate_mlp, Activation};
use crate::spec::NetworkSpec;

/// The SIREN frequency factor ω0 of the reference INR data sets.
pub const SIREN_OMEGA0: f64 = 30.0;

/// Hidden width of the reference SIREN (both hidden layers).
pub const SIREN_HIDDEN: i64 = 32;

/// `n` freshly initialised SIRENs of `spec` with the reference init (design.md §6.1): first layer
/// `U(-1/in, 1/in)`, later layers `U(-sqrt(6/in)/ω0, sqrt(6/in)/ω0)`, biases PyTorch's default
/// `U(-1/sqrt(in), 1/sqrt(in))`. Deterministic in `seed` (LibTorch's generator is not used).
///
/// # Shapes
/// `W_l` `[n, 1, n_out, n_in]`, `b_l` `[n, 1, n_out]`, f32 on the CPU.
pub fn siren_init(spec: &NetworkSpec, n: i64, seed: u64) -> WeightSpaceFeatures {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sample = |shape: &[i64], bound: f64| {
        let len: i64 = shape.iter().product();
        let dist = Uniform::new_inclusive(-bound as f32, bound as f32);
        let data: Vec<f32> = (0..len).map(|_| dist.sample(&mut rng)).collect();
        Tensor::from_slice(&data).reshape(shape)
    };
    let (weights, biases) = spec
        .layers()
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let fan_in = (layer.n_in * layer.filter_factor()) as f64;
            let w_bound = if l == 0 { 1.0 / fan_in } else { (6.0 / fan_in).sqrt() / SIREN_OMEGA0 };
            let mut shape = vec![n, 1];
            shape.extend(layer.weight_shape());
            let w = sample(&shape, w_bound);
            (w, sample(&[n, 1, layer.n_out], 1.0 / fan_in.sqrt()))
        })
        .unzip();
    WeightSpaceFeatures::from_parts_unchecked(weights, biases)
}

/// [`siren_init`] with its seed drawn from LibTorch's global generator (so `tch::manual_seed`
/// makes it reproducible), converted to `options`.
///
/// # Shapes
/// `W_l` `[n, 1, n_out, n_in]`, `b_l` `[n, 1, n_out]`
pub fn siren_init_tch_rng(
    spec: &NetworkSpec,
    n: i64,
    options: (Kind, Device),
) -> WeightSpaceFeatures {
    let seed = Tensor::randint(i64::MAX, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0]) as u64;
    siren_init(spec, n, seed).map(|t| t.to_kind(options.0).to_device(options.1))
}

/// Pixel-centre coordinates of an `h x w` grid: `linspace(-1, 1)` per axis, "ij" order, flattened
/// row-major, with (row coordinate, column coordinate) per pixel (design.md §5.2, §8.16).
///
/// # Shapes
/// `[h*w, 2]`
pub fn pixel_grid(h: i64, w: i64, options: (Kind, Device)) -> Tensor {
    let rows = Tensor::linspace(-1.0, 1.0, h, options);
    let cols = Tensor::linspace(-1.0, 1.0, w, options);
    let grid = Tensor::meshgrid_indexing(&[rows, cols], "ij");
    Tensor::stack(&[grid[0].reshape([-1]), grid[1].reshape([-1])], 1)
}

/// Render a batch of SIRENs on the full `h x w` [`pixel_grid`] (design.md §5.3, §8.17).
///
/// # Shapes
/// SIRENs of a batch `b` with `c` outputs → `[b, c, h, w]`
///
/// # Errors
/// As [`evaluate_mlp`]: [`crate::Error::SpecMismatch`] or [`crate::Error::Shape`] if the features
/// are not a raw 2-input MLP.
pub fn render_siren(wsfeat: &WeightSpaceFeatures, h: i64, w: i64) -> Result<Tensor> {
    let coords = pixel_grid(h, w, (wsfeat.kind(), wsfeat.device())); // [h w, 2]
    let ys = evaluate_mlp(wsfeat, &coords, Activation::SIREN)?; // [b, h w, c]
    let b = wsfeat.batch_size();
    Ok(ys.view([b, h, w, -1]).permute([0, 3, 1, 2]))
}

/// Fold an affine change of input coordinates into the first layer of a batch of MLPs (SIRENs):
/// network `i` of the result computes `f_i(A_i x + t_i)`, exactly, for every input `x`. On SIRENs
/// this moves, flips, rotates or scales the image a network draws (its values outside `[-1, 1]²`
/// are whatever the fit left there), without rendering or refitting: `W_0' = W_0 A`,
/// `b_0' = b_0 + W_0 t`; later layers are shared with the input.
///
/// # Shapes
/// MLPs with `n_in` inputs and batch `b`; `a` `[b, n_in, n_in]`, `t` `[b, n_in]`, in the features'
/// kind and device
///
/// # Errors
/// [`crate::Error::SpecMismatch`] for features with more than one channel or conv layers;
/// [`crate::Error::Shape`] for `a` or `t` of the wrong shape.
pub fn transform_input(
    wsfeat: &WeightSpaceFeatures,
    a: &Tensor,
    t: &Tensor,
) -> Result<WeightSpaceFeatures> {
    let spec = wsfeat.spec()?;
    if spec.is_cnn() || wsfeat.channels() != 1 {
        return Err(crate::Error::SpecMismatch(
            "transform_input takes raw MLP weights (one channel, no conv layers)".into(),
        ));
    }
    let (b, n) = (wsfeat.batch_size(), spec.n_in());
    for (what, got, expected) in
        [("input map", a.size(), vec![b, n, n]), ("shift", t.size(), vec![b, n])]
    {
        if got != expected {
            return Err(crate::Error::Shape {
                layer: 0,
                what,
                expected: format!("{expected:?}"),
                got,
            });
        }
    }
    let w0 = wsfeat.weight(0); // [b, 1, n_out, n_in]
    let new_w0 = w0.matmul(&a.unsqueeze(1));
    let new_b0 = wsfeat.bias(0) + w0.matmul(&t.view([b, 1, n, 1])).squeeze_dim(-1);
    let mut weights: Vec<Tensor> = wsfeat.weights().iter().map(Tensor::shallow_clone).collect();
    let mut biases: Vec<Tensor> = wsfeat.biases().iter().map(Tensor::shallow_clone).collect();
    weights[0] = new_w0;
    biases[0] = new_b0;
    Ok(WeightSpaceFeatures::from_parts_unchecked(weights, biases))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_ij_and_includes_endpoints() {
        let g = pixel_grid(3, 2, (Kind::Double, Device::Cpu));
        assert_eq!(g.size(), vec![6, 2]);
        let v: Vec<f64> = Vec::try_from(g.reshape([-1])).expect("f64 tensor");
        assert_eq!(v, vec![-1., -1., -1., 1., 0., -1., 0., 1., 1., -1., 1., 1.]);
    }

    #[test]
    fn init_bounds_and_determinism() {
        let spec = NetworkSpec::siren(1);
        let a = siren_init(&spec, 3, 7);
        let b = siren_init(&spec, 3, 7);
        assert!(a.weight(0).equal(b.weight(0)) && a.bias(2).equal(b.bias(2)));
        assert!(!siren_init(&spec, 3, 8).weight(1).equal(a.weight(1)));
        assert!(a.weight(0).abs().max().double_value(&[]) <= 0.5);
        let bound = (6.0f64 / SIREN_HIDDEN as f64).sqrt() / SIREN_OMEGA0;
        assert!(a.weight(1).abs().max().double_value(&[]) <= bound + 1e-7);
        assert!(a.weight(2).abs().max().double_value(&[]) <= bound + 1e-7);
        assert!(a.bias(0).abs().max().double_value(&[]) <= 1.0 / 2f64.sqrt() + 1e-7);
        assert!(a.bias(0).abs().max().double_value(&[]) > 0.3, "bias uses 1/sqrt(fan_in)");
    }

    #[test]
    fn tch_rng_init_follows_manual_seed() {
        let spec = NetworkSpec::siren(3);
        let opts = (Kind::Double, Device::Cpu);
        tch::manual_seed(5);
        let a = siren_init_tch_rng(&spec, 2, opts);
        tch::manual_seed(5);
        let b = siren_init_tch_rng(&spec, 2, opts);
        assert_eq!(a.kind(), Kind::Double);
        assert!(a.weight(1).equal(b.weight(1)) && a.bias(2).equal(b.bias(2)));
    }

    #[test]
    fn render_is_evaluation_on_the_grid() {
        let opts = (Kind::Double, Device::Cpu);
        let sirens = siren_init(&NetworkSpec::siren(3), 2, 0).map(|t| t.to_kind(Kind::Double));
        let image = render_siren(&sirens, 4, 5).expect("raw SIRENs");
        assert_eq!(image.size(), [2, 3, 4, 5]);
        let grid = pixel_grid(4, 5, opts);
        let ys = evaluate_mlp(&sirens, &grid, Activation::SIREN).expect("raw SIRENs"); // [2, 20, 3]
                                                                                       // Pixel (r, c) = grid row r * w + c.
        let pixel = ys.select(1, 2 * 5 + 3); // [2, 3]
        assert!(image.select(3, 3).select(2, 2).allclose(&pixel, 0.0, 1e-12, false));
        let two_channels = WeightSpaceFeatures::zeros(&sirens.spec().expect("spec"), 2, 2, opts);
        assert!(render_siren(&two_channels, 4, 5).is_err());
    }

    #[test]
    fn transformed_input_draws_the_moved_image() {
        let opts = (Kind::Double, Device::Cpu);
        let sirens = siren_init(&NetworkSpec::siren(3), 2, 1).map(|t| t.to_kind(Kind::Double));
        // Network 0: a horizontal flip and a shift; network 1: a rotation by 0.3 rad and a scale.
        let (c, s) = (0.3f64.cos() * 0.9, 0.3f64.sin() * 0.9);
        let a = Tensor::from_slice(&[1.0, 0.0, 0.0, -1.0, c, -s, s, c]).view([2, 2, 2]);
        let t = Tensor::from_slice(&[0.1, -0.05, 0.0, 0.2]).view([2, 2]);
        let moved = transform_input(&sirens, &a, &t).expect("raw SIRENs");
        let xs = pixel_grid(5, 4, opts); // [20, 2]
                                         // f(A x + t) for each network on its own transformed coordinates.
        let coords = xs.unsqueeze(0).matmul(&a.transpose(1, 2)) + t.unsqueeze(1); // [2, 20, 2]
        let want = evaluate_mlp(&sirens, &coords, Activation::SIREN).expect("raw SIRENs");
        let got = evaluate_mlp(&moved, &xs, Activation::SIREN).expect("raw SIRENs");
        assert!(got.allclose(&want, 1e-10, 1e-10, false));
        // Later layers are untouched, and wrong shapes are refused.
        assert!(moved.weight(1).equal(sirens.weight(1)));
        assert!(transform_input(&sirens, &a.select(0, 0), &t).is_err());
        assert!(transform_input(&sirens, &a, &t.select(0, 0)).is_err());
    }
}
