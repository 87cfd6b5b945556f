//! Mixed precision for the NFT trunk: bf16 activations, fp32 master weights.
//!
//! With [`Precision::Bf16`] (or [`Precision::Auto`] on a GPU) a model casts its features to bf16
//! after the input encoding, runs the positional embedding and the NFT blocks on them, and casts
//! back to the input's dtype before the read-out. The parameters stay fp32: the layers on that path
//! cast a parameter to the activations' dtype where they use it ([`cast_like`]), so its gradient
//! flows back through the cast and the optimiser updates fp32 weights. LayerNorm statistics are
//! computed in fp32 (as CUDA autocast does). This is what autocast would do; tch 0.24 exposes
//! CUDA autocast only with its fp16 default and no way to choose bf16, so the casts are explicit.
//! Equivariance holds in any dtype (the casts commute with permutations); the property tests stay
//! f64, and one test checks the bf16 path against fp32 within bf16's resolution.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use nfn_weightspace::WeightSpaceFeatures;

/// The dtype of the NFT trunk's activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The input's dtype throughout (the default; property tests run f64 this way).
    #[default]
    Fp32,
    /// bf16 activations in the trunk, on any device.
    Bf16,
    /// bf16 on a GPU, the input's dtype on the CPU (where bf16 matmuls are slower than fp32).
    Auto,
}

impl Precision {
    /// Whether this is the default ([`Precision::Fp32`]); configs leave it out when it is.
    pub fn is_default(&self) -> bool {
        *self == Precision::Fp32
    }

    /// The dtype the trunk computes in for features on `device`, or `None` for no cast.
    pub fn compute_kind(self, device: Device) -> Option<Kind> {
        match (self, device) {
            (Precision::Fp32, _) | (Precision::Auto, Device::Cpu) => None,
            (Precision::Bf16, _) | (Precision::Auto, _) => Some(Kind::BFloat16),
        }
    }

    /// Run `trunk` on `xs` in this precision and return its output in `xs`'s dtype.
    ///
    /// # Panics
    /// Never for float features (the casts are between float dtypes).
    pub fn run(
        self,
        xs: &WeightSpaceFeatures,
        trunk: impl FnOnce(&WeightSpaceFeatures) -> WeightSpaceFeatures,
    ) -> WeightSpaceFeatures {
        let kind = xs.kind();
        match self.compute_kind(xs.device()) {
            Some(compute) if compute != kind => {
                let inner = xs.to_kind(compute).expect("float features cast to a float dtype");
                trunk(&inner).to_kind(kind).expect("float features cast to a float dtype")
            }
            _ => trunk(xs),
        }
    }
}

/// `param` in the dtype of the activations `like`: a no-op when they agree, else a cast that
/// autograd differentiates (the fp32 master weight receives an fp32 gradient).
pub fn cast_like(param: &Tensor, like: &Tensor) -> Tensor {
    if param.kind() == like.kind() {
        param.shallow_clone()
    } else {
        param.to_kind(like.kind())
    }
}

/// Whether `kind` is a 16-bit float, whose statistics (LayerNorm) are computed in fp32.
pub fn is_half(kind: Kind) -> bool {
    matches!(kind, Kind::BFloat16 | Kind::Half)
}
