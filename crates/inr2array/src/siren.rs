//! SIREN initialisation and plain rendering of SIRENs on a pixel grid (REFERENCE §6.1, §5.2, trap 16-17).

use nfn_weightspace::{evaluate_mlp, pixel_grid, Activation, NetworkSpec, WeightSpaceFeatures};
use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// The SIREN frequency factor ω0.
pub const OMEGA0: f64 = nfn_weightspace::SIREN_OMEGA0;

/// `n` SIRENs of `spec` with the reference init ([`nfn_weightspace::siren_init`]), seeded from
/// LibTorch's global generator (so `tch::manual_seed` makes them reproducible).
///
/// # Shapes
/// `W_l` `[n, 1, n_out, n_in]`, `b_l` `[n, 1, n_out]`
pub fn siren_init(spec: &NetworkSpec, n: i64, options: (Kind, Device)) -> WeightSpaceFeatures {
    let seed = Tensor::randint(i64::MAX, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0]) as u64;
    nfn_weightspace::siren_init(spec, n, seed).map(|t| t.to_kind(options.0).to_device(options.1))
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
