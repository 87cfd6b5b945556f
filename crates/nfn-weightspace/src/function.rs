//! Run the networks a weight space describes: the ground truth for every symmetry claim.
//!
//! SIRENs ([`crate::siren`]) follow design.md §5.2: `h = sin(ω0 (W x + b))` for every layer but the last, which is linear.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::features::WeightSpaceFeatures;
use crate::siren::SIREN_OMEGA0;

/// The hidden-layer non-linearity of the processed networks (the last layer is always linear).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// `max(x, 0)`, the CNN zoo's activation.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `sin(omega0 * x)`, the SIREN activation (ω0 = 30 in the reference data, design.md §6.1).
    Sine {
        /// Frequency factor applied to the pre-activation `W x + b`.
        omega0: f64,
    },
}

impl Activation {
    /// The SIREN activation with `omega0 = 30`.
    pub const SIREN: Activation = Activation::Sine { omega0: SIREN_OMEGA0 };

    /// Apply to a tensor.
    pub fn apply(&self, xs: &Tensor) -> Tensor {
        match *self {
            Activation::Relu => xs.relu(),
            Activation::Tanh => xs.tanh(),
            Activation::Sine { omega0 } => (xs * omega0).sin(),
        }
    }
}

fn check_raw(wsfeat: &WeightSpaceFeatures) -> Result<()> {
    if wsfeat.channels() != 1 {
        return Err(Error::SpecMismatch(format!(
            "only raw weights (1 channel) describe a network, got {} channels",
            wsfeat.channels()
        )));
    }
    Ok(())
}

/// Evaluate a batch of MLPs on inputs `xs`: `[p, n_in]` shared by all networks or `[b, p, n_in]`
/// per network. Returns `[b, p, n_out]`.
///
/// # Errors
/// [`Error::SpecMismatch`] for features with more than one channel or conv layers; [`Error::Shape`]
/// for inputs of the wrong shape.
pub fn evaluate_mlp(wsfeat: &WeightSpaceFeatures, xs: &Tensor, act: Activation) -> Result<Tensor> {
    check_raw(wsfeat)?;
    let spec = wsfeat.spec()?;
    if spec.is_cnn() {
        return Err(Error::SpecMismatch("evaluate_mlp got a CNN; use evaluate_cnn".into()));
    }
    let b = wsfeat.batch_size();
    let size = xs.size();
    let ok =
        size.last() == Some(&spec.n_in()) && (size.len() == 2 || (size.len() == 3 && size[0] == b));
    if !ok {
        return Err(Error::Shape {
            layer: 0,
            what: "input",
            expected: format!("[p, {0}] or [{b}, p, {0}]", spec.n_in()),
            got: size,
        });
    }
    let mut hs = if size.len() == 2 {
        xs.unsqueeze(0).expand([b, -1, -1], false)
    } else {
        xs.shallow_clone()
    };
    let last = wsfeat.num_layers() - 1;
    for (l, (w, bias)) in wsfeat.iter().enumerate() {
        // [b, p, n_in] x [b, n_in, n_out] + [b, 1, n_out] -> [b, p, n_out]
        let pre = hs.matmul(&w.squeeze_dim(1).transpose(1, 2)) + bias.squeeze_dim(1).unsqueeze(1);
        hs = if l == last { pre } else { act.apply(&pre) };
    }
    Ok(hs)
}

/// Evaluate a batch of CNNs on images `xs` (`[p, c_in, h, w]` shared, or `[b, p, c_in, h, w]`):
/// each conv layer (zero "same" padding, the given `stride`) is followed by `act`, then global
/// average pooling, then the dense layers (all but the last followed by `act`). Returns `[b, p, n_out]`.
///
/// # Errors
/// [`Error::SpecMismatch`] for features with more than one channel; [`Error::Shape`] for inputs of
/// the wrong shape.
pub fn evaluate_cnn(
    wsfeat: &WeightSpaceFeatures,
    xs: &Tensor,
    act: Activation,
    stride: i64,
) -> Result<Tensor> {
    check_raw(wsfeat)?;
    let spec = wsfeat.spec()?;
    if !spec.is_cnn() {
        return Err(Error::SpecMismatch("evaluate_cnn got an MLP; use evaluate_mlp".into()));
    }
    let b = wsfeat.batch_size();
    let size = xs.size();
    let ok = (size.len() == 4 || (size.len() == 5 && size[0] == b))
        && size[size.len() - 3] == spec.n_in();
    if !ok {
        return Err(Error::Shape {
            layer: 0,
            what: "input image",
            expected: format!("[p, {0}, h, w] or [{b}, p, {0}, h, w]", spec.n_in()),
            got: size,
        });
    }
    let xs = if size.len() == 4 {
        xs.unsqueeze(0).expand([b, -1, -1, -1, -1], false)
    } else {
        xs.shallow_clone()
    };
    let p = xs.size()[1];
    // Grouped convolution runs all b networks at once: [p, b*c, h, w] with groups = b.
    let mut hs = xs.transpose(0, 1).reshape([p, -1, xs.size()[3], xs.size()[4]]);
    let mut pooled = None;
    let last = wsfeat.num_layers() - 1;
    for (l, (w, bias)) in wsfeat.iter().enumerate() {
        let layer = spec.layer(l);
        match layer.kernel {
            Some([kh, kw]) => {
                let w = w.reshape([b * layer.n_out, layer.n_in, kh, kw]);
                let bias = bias.reshape([b * layer.n_out]);
                let pre = hs.conv2d(&w, Some(&bias), [stride], [kh / 2, kw / 2], [1], b);
                hs = if l == last { pre } else { act.apply(&pre) };
            }
            None => {
                // After the convs: global average pooling to [b, p, n].
                let flat = pooled.take().unwrap_or_else(|| {
                    hs.mean_dim([2, 3].as_slice(), false, hs.kind())
                        .reshape([p, b, layer.n_in])
                        .transpose(0, 1)
                });
                let pre = flat.matmul(&w.squeeze_dim(1).transpose(1, 2))
                    + bias.squeeze_dim(1).unsqueeze(1);
                pooled = Some(if l == last { pre } else { act.apply(&pre) });
            }
        }
    }
    pooled.ok_or_else(|| Error::SpecMismatch("a CNN must end in a dense layer".into()))
}

/// Evaluate any supported network: [`evaluate_mlp`] for MLPs, [`evaluate_cnn`] (stride 1) for CNNs.
///
/// # Errors
/// As the two functions.
pub fn evaluate(wsfeat: &WeightSpaceFeatures, xs: &Tensor, act: Activation) -> Result<Tensor> {
    if wsfeat.spec()?.is_cnn() {
        evaluate_cnn(wsfeat, xs, act, 1)
    } else {
        evaluate_mlp(wsfeat, xs, act)
    }
}
