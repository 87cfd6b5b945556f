//! SIREN initialisation and plain rendering of SIRENs on a pixel grid (REFERENCE §6.1, §5.2, trap 16-17).

use nfn_weightspace::{evaluate_mlp, pixel_grid, Activation, NetworkSpec, WeightSpaceFeatures};
use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// The SIREN frequency factor ω0.
pub const OMEGA0: f64 = 30.0;

/// `n` SIRENs of `spec` with the reference init, drawn from LibTorch's global generator: first
/// layer `U(-1/in, 1/in)`, later layers `U(-sqrt(6/in)/ω0, sqrt(6/in)/ω0)`, biases PyTorch's
/// default `U(-1/sqrt(in), 1/sqrt(in))`.
///
/// # Shapes
/// `W_l` `[n, 1, n_out, n_in]`, `b_l` `[n, 1, n_out]`
pub fn siren_init(spec: &NetworkSpec, n: i64, options: (Kind, Device)) -> WeightSpaceFeatures {
    let uniform = |shape: &[i64], bound: f64| Tensor::empty(shape, options).uniform_(-bound, bound);
    let (weights, biases) = spec
        .layers()
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let fan_in = layer.n_in as f64;
            let bound = if l == 0 { 1.0 / fan_in } else { (6.0 / fan_in).sqrt() / OMEGA0 };
            let w = uniform(&[n, 1, layer.n_out, layer.n_in], bound);
            (w, uniform(&[n, 1, layer.n_out], 1.0 / fan_in.sqrt()))
        })
        .unzip();
    WeightSpaceFeatures::from_parts_unchecked(weights, biases)
}

/// Render SIRENs on the full `h x w` grid: the reconstruction target (REFERENCE §5.3, trap 17).
///
/// # Shapes
/// SIRENs of a batch `b` with `c` outputs → `[b, c, h, w]`
///
/// # Errors
/// [`crate::Error::WeightSpace`] if the features are not a raw 2-input MLP.
pub fn render_siren(wsfeat: &WeightSpaceFeatures, h: i64, w: i64) -> Result<Tensor> {
    let coords = pixel_grid(h, w, (wsfeat.kind(), wsfeat.device())); // [h w, 2]
    let ys = evaluate_mlp(wsfeat, &coords, Activation::SIREN)?; // [b, h w, c]
    let b = wsfeat.batch_size();
    Ok(ys.view([b, h, w, -1]).permute([0, 3, 1, 2]))
}
