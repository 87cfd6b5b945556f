//! Element-wise activations and dropouts on weight-space features (design.md §2.2, §2.3).

use nfn_weightspace::{fold, unfold, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::module::{ChannelScaledT, WsModuleT};

/// An activation applied to every weight and bias entry ("TupleOp", design.md §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WsActivation {
    /// `max(x, 0)`.
    Relu,
    /// The exact (erf) GELU, PyTorch's `nn.GELU()` default.
    Gelu,
    /// `tanh(x)`.
    Tanh,
}

impl WsActivation {
    /// Apply to one tensor.
    pub fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            WsActivation::Relu => xs.relu(),
            WsActivation::Gelu => xs.gelu("none"),
            WsActivation::Tanh => xs.tanh(),
        }
    }
}

impl WsModuleT for WsActivation {
    /// # Shapes
    /// Every tensor keeps its shape.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, _train: bool) -> WeightSpaceFeatures {
        wsfeat.map(|t| self.apply(t))
    }
}

fn check_p(p: f64) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::Config(format!("dropout probability must lie in [0, 1), got {p}")))
    }
}

/// Ordinary element-wise dropout on every tensor (design.md §2.3), active only when `train`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WsDropout {
    p: f64,
}

impl WsDropout {
    /// Dropout with drop probability `p`.
    ///
    /// # Errors
    /// [`Error::Config`] unless `0 <= p < 1`.
    pub fn new(p: f64) -> Result<Self> {
        check_p(p)?;
        Ok(WsDropout { p })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl WsModuleT for WsDropout {
    /// # Shapes
    /// Every tensor keeps its shape.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> WeightSpaceFeatures {
        if !train || self.p == 0.0 {
            return wsfeat.shallow_clone();
        }
        wsfeat.map(|t| t.dropout(self.p, true))
    }
}

/// Channel dropout (design.md §2.3): folded weights `[b, k_l c, n_out, n_in]` lose whole channels
/// per network (Dropout2d, mask `[b, k_l c, 1, 1]`, survivors scaled by `1/(1-p)`); biases get
/// element-wise dropout. Active only when `train`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelDropout {
    p: f64,
}

impl ChannelDropout {
    /// Channel dropout with drop probability `p`.
    ///
    /// # Errors
    /// [`Error::Config`] unless `0 <= p < 1`.
    pub fn new(p: f64) -> Result<Self> {
        check_p(p)?;
        Ok(ChannelDropout { p })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl WsModuleT for ChannelDropout {
    /// # Shapes
    /// Every tensor keeps its shape.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> WeightSpaceFeatures {
        if !train || self.p == 0.0 {
            return wsfeat.shallow_clone();
        }
        let (weights, biases) = wsfeat
            .iter()
            .map(|(w, b)| {
                let s = w.size();
                let kernel = (s.len() == 6).then(|| [s[4], s[5]]);
                let w = fold(w).feature_dropout(self.p, true); // [b, k c, n_out, n_in]
                (unfold(&w, kernel), b.dropout(self.p, true))
            })
            .unzip();
        WeightSpaceFeatures::from_parts_unchecked(weights, biases)
    }
}

/// `[linear, ReLU, ChannelDropout(p)]` as one module. In training it draws the channel-dropout
/// masks first and has the linear layer scale its outputs by them inside its small per-network
/// maps, then applies the ReLU (which commutes with a non-negative per-channel scale): the same
/// function as the three modules in a row, without the dropout's two passes (forward and
/// backward) over every weight tensor. Biases get element-wise dropout, as in [`ChannelDropout`].
#[derive(Debug)]
pub struct LinearReluDropout {
    linear: Box<dyn ChannelScaledT>,
    dropout: ChannelDropout,
}

impl LinearReluDropout {
    /// `linear`, a ReLU, and channel dropout with drop probability `p`.
    ///
    /// # Errors
    /// [`Error::Config`] unless `0 <= p < 1`.
    pub fn new(linear: Box<dyn ChannelScaledT>, p: f64) -> Result<Self> {
        Ok(LinearReluDropout { linear, dropout: ChannelDropout::new(p)? })
    }
}

impl WsModuleT for LinearReluDropout {
    /// # Shapes
    /// those of the linear layer
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> WeightSpaceFeatures {
        let p = self.dropout.p;
        if !train || p == 0.0 {
            return self.linear.forward_t(wsfeat, train).map(Tensor::relu);
        }
        let options = (wsfeat.kind(), wsfeat.device());
        let b = wsfeat.batch_size();
        let masks: Vec<Tensor> = (self.linear.weight_channels().into_iter())
            .map(|o| Tensor::empty([b, o], options).bernoulli_float_(1.0 - p) * (1.0 / (1.0 - p)))
            .collect();
        let out = self.linear.forward_scaled(wsfeat, &masks);
        let (weights, biases) =
            out.iter().map(|(w, b)| (w.relu(), b.relu().dropout(p, true))).unzip();
        WeightSpaceFeatures::from_parts_unchecked(weights, biases)
    }
}
