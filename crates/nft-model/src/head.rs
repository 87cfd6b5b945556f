//! MLP heads: the classifier / regressor that follows an invariant pooling (design.md §3.5).

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::Tensor;

use crate::error::{Error, Result};

/// An MLP: `[Linear -> ReLU -> Dropout] x hidden.len()`, then `Linear -> num_outputs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlpHeadConfig {
    /// Hidden widths (reference head: two layers of 1000).
    pub hidden: Vec<i64>,
    /// Dropout after each hidden layer (classify_siren: 0.5; MNIST variants 0.1).
    pub dropout: f64,
}

impl Default for MlpHeadConfig {
    fn default() -> Self {
        MlpHeadConfig { hidden: vec![1000, 1000], dropout: 0.0 }
    }
}

impl MlpHeadConfig {
    /// Check the values.
    ///
    /// # Errors
    /// [`Error::Config`] for a non-positive width or a dropout outside `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.iter().any(|&h| h <= 0) || !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!("bad MLP head: {self:?}")));
        }
        Ok(())
    }
}

/// The MLP of [`MlpHeadConfig`].
#[derive(Debug)]
pub struct MlpHead {
    layers: Vec<nn::Linear>,
    dropout: f64,
}

impl MlpHead {
    /// A head from `in_dim` features to `num_outputs`.
    pub fn new(vs: &nn::Path, in_dim: i64, num_outputs: i64, cfg: &MlpHeadConfig) -> Self {
        let dims: Vec<i64> = std::iter::once(in_dim)
            .chain(cfg.hidden.iter().copied())
            .chain([num_outputs])
            .collect();
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, d)| nn::linear(vs / format!("layer{i}"), d[0], d[1], Default::default()))
            .collect();
        MlpHead { layers, dropout: cfg.dropout }
    }

    /// # Shapes
    /// `[b, in_dim]` → `[b, num_outputs]`
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(xs.shallow_clone(), |h, (i, layer)| {
            let h = layer.forward(&h);
            if i == last {
                h
            } else {
                h.relu().dropout(self.dropout, train)
            }
        })
    }
}
