//! The weight-space module traits (the shape of tch's `ModuleT`) and a sequential container.

use nfn_weightspace::WeightSpaceFeatures;
use tch::Tensor;

/// A layer from weight-space features to weight-space features (equivariant layers, encodings,
/// element-wise ops). `train` switches dropout on.
pub trait WsModuleT: std::fmt::Debug + Send {
    /// Apply the layer.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> WeightSpaceFeatures;
}

/// An equivariant linear layer that can scale its weight outputs per network and output channel
/// inside its small per-network maps, where that is cheaper than a pass over the output: how
/// [`LinearReluDropout`](crate::LinearReluDropout) folds channel dropout into the layer.
pub trait ChannelScaledT: WsModuleT {
    /// Folded output channels `k_l c_out` of each weight tensor `l`.
    fn weight_channels(&self) -> Vec<i64>;

    /// `forward_t`, with each folded weight output `l` (`[b, k_l c_out, n_out, n_in]`) multiplied
    /// per network and channel by `scales[l]` (`[b, k_l c_out]`); biases are not scaled.
    fn forward_scaled(
        &self,
        wsfeat: &WeightSpaceFeatures,
        scales: &[Tensor],
    ) -> WeightSpaceFeatures;
}

/// A read-out from weight-space features to an ordinary tensor (pools, cross-attention).
pub trait WsReadoutT: std::fmt::Debug + Send {
    /// Apply the read-out; the output's first axis is the batch.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> Tensor;
}

/// Layers applied one after another.
#[derive(Debug, Default)]
pub struct WsSequential {
    layers: Vec<Box<dyn WsModuleT>>,
}

impl WsSequential {
    /// An empty sequence (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a layer.
    #[allow(clippy::should_implement_trait)]
    pub fn add<M: WsModuleT + 'static>(mut self, layer: M) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Append a boxed layer.
    pub fn push(&mut self, layer: Box<dyn WsModuleT>) {
        self.layers.push(layer);
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl WsModuleT for WsSequential {
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> WeightSpaceFeatures {
        self.layers.iter().fold(wsfeat.shallow_clone(), |xs, layer| layer.forward_t(&xs, train))
    }
}
