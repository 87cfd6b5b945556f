//! Network specs: the shape of a weight space (design.md §1.1–1.2).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::siren::SIREN_HIDDEN;

/// One weight layer: a dense `[n_out, n_in]` matrix or a 2-D conv `[n_out, n_in, kh, kw]` filter bank,
/// plus its bias `[n_out]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Output neurons (rows; output channels for a conv).
    pub n_out: i64,
    /// Input neurons (columns; input channels for a conv).
    pub n_in: i64,
    /// Filter size `[kh, kw]` for a 2-D conv layer, `None` for a dense layer.
    #[serde(default)]
    pub kernel: Option<[i64; 2]>,
}

impl LayerSpec {
    /// A dense layer `n_in -> n_out`.
    pub fn dense(n_in: i64, n_out: i64) -> Self {
        LayerSpec { n_out, n_in, kernel: None }
    }

    /// A 2-D conv layer `n_in -> n_out` channels with a `kh x kw` filter.
    pub fn conv(n_in: i64, n_out: i64, kh: i64, kw: i64) -> Self {
        LayerSpec { n_out, n_in, kernel: Some([kh, kw]) }
    }

    /// The filter factor `k_l = kh * kw` (1 for dense layers).
    pub fn filter_factor(&self) -> i64 {
        self.kernel.map_or(1, |[kh, kw]| kh * kw)
    }

    /// The weight shape without batch and channel axes: `[n_out, n_in(, kh, kw)]`.
    pub fn weight_shape(&self) -> Vec<i64> {
        let mut shape = vec![self.n_out, self.n_in];
        if let Some([kh, kw]) = self.kernel {
            shape.extend([kh, kw]);
        }
        shape
    }

    /// Number of scalar parameters (weights and bias).
    pub fn num_params(&self) -> i64 {
        self.n_out * self.n_in * self.filter_factor() + self.n_out
    }
}

/// The architecture of a processed network: a chain of `L` weight layers over neuron layers
/// `d_0 .. d_L`. Neuron layers `0` (inputs) and `L` (outputs) are fixed; `1 .. L-1` are hidden and
/// permutable.
///
/// For a CNN the reference assumes global pooling between the last conv and the first dense layer,
/// so that dense layer's inputs are the last conv's output channels.
///
/// ```
/// use nfn_weightspace::NetworkSpec;
/// let siren = NetworkSpec::mlp(&[2, 32, 32, 1]).unwrap();
/// assert_eq!(siren.num_layers(), 3);
/// assert_eq!(siren.num_params(), 1185);
/// assert_eq!(NetworkSpec::small_cnn_zoo().num_params(), 4970);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawSpec", into = "RawSpec")]
pub struct NetworkSpec {
    layers: Vec<LayerSpec>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    layers: Vec<LayerSpec>,
}

impl TryFrom<RawSpec> for NetworkSpec {
    type Error = Error;
    fn try_from(raw: RawSpec) -> Result<Self> {
        NetworkSpec::new(raw.layers)
    }
}

impl From<NetworkSpec> for RawSpec {
    fn from(spec: NetworkSpec) -> Self {
        RawSpec { layers: spec.layers }
    }
}

impl NetworkSpec {
    /// A spec from its layers.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] if there are no layers, a size is not positive, consecutive layers do not
    /// chain (`n_in` of layer `l+1` must equal `n_out` of layer `l`), or a conv follows a dense layer.
    pub fn new(layers: Vec<LayerSpec>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::InvalidSpec("a network needs at least one layer".into()));
        }
        for (l, layer) in layers.iter().enumerate() {
            let kernel_ok = layer.kernel.is_none_or(|[kh, kw]| kh > 0 && kw > 0);
            if layer.n_out <= 0 || layer.n_in <= 0 || !kernel_ok {
                return Err(Error::InvalidSpec(format!(
                    "layer {l} has a non-positive size: {layer:?}"
                )));
            }
        }
        for (l, pair) in layers.windows(2).enumerate() {
            if pair[1].n_in != pair[0].n_out {
                return Err(Error::InvalidSpec(format!(
                    "layer {} takes {} inputs but layer {l} has {} outputs",
                    l + 1,
                    pair[1].n_in,
                    pair[0].n_out
                )));
            }
            if pair[0].kernel.is_none() && pair[1].kernel.is_some() {
                return Err(Error::InvalidSpec(format!(
                    "conv layer {} follows dense layer {l}",
                    l + 1
                )));
            }
        }
        Ok(NetworkSpec { layers })
    }

    /// A multilayer perceptron with neuron counts `dims = [d_0, .., d_L]`, e.g. the SIREN `[2, 32, 32, 1]`.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] for fewer than two dims or a non-positive dim.
    pub fn mlp(dims: &[i64]) -> Result<Self> {
        if dims.len() < 2 {
            return Err(Error::InvalidSpec(format!("an MLP needs at least 2 dims, got {dims:?}")));
        }
        Self::new(dims.windows(2).map(|d| LayerSpec::dense(d[0], d[1])).collect())
    }

    /// The SIREN of the reference INR data sets: 2 -> 32 -> 32 -> `c_out` (1 grey, 3 colour);
    /// hidden width [`SIREN_HIDDEN`], see [`crate::siren`].
    pub fn siren(c_out: i64) -> Self {
        Self::mlp(&[2, SIREN_HIDDEN, SIREN_HIDDEN, c_out]).expect("constant SIREN dims are valid")
    }

    /// A CNN: conv layers with `conv_channels` outputs each and a `kernel` filter, global pooling,
    /// then one dense layer to `n_out`.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] for a non-positive size.
    pub fn cnn(
        in_channels: i64,
        conv_channels: &[i64],
        kernel: [i64; 2],
        n_out: i64,
    ) -> Result<Self> {
        let mut layers = Vec::with_capacity(conv_channels.len() + 1);
        let mut prev = in_channels;
        for &c in conv_channels {
            layers.push(LayerSpec::conv(prev, c, kernel[0], kernel[1]));
            prev = c;
        }
        layers.push(LayerSpec::dense(prev, n_out));
        Self::new(layers)
    }

    /// The Small CNN Zoo network (design.md §6.3): 1 -> 16 -> 16 -> 16 conv 3x3, pooling, dense 16 -> 10.
    pub fn small_cnn_zoo() -> Self {
        Self::cnn(1, &[16, 16, 16], [3, 3], 10).expect("constant zoo dims are valid")
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[LayerSpec] {
        &self.layers
    }

    /// Layer `l`.
    ///
    /// # Panics
    /// If `l >= num_layers()`.
    pub fn layer(&self, l: usize) -> &LayerSpec {
        &self.layers[l]
    }

    /// Number of weight layers `L`.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Neuron counts `[d_0, .., d_L]`.
    pub fn dims(&self) -> Vec<i64> {
        std::iter::once(self.layers[0].n_in).chain(self.layers.iter().map(|l| l.n_out)).collect()
    }

    /// Input neurons `d_0`.
    pub fn n_in(&self) -> i64 {
        self.layers[0].n_in
    }

    /// Output neurons `d_L`.
    pub fn n_out(&self) -> i64 {
        self.layers[self.layers.len() - 1].n_out
    }

    /// Whether neuron layer `m` (`0..=L`) is hidden, i.e. permutable.
    pub fn is_hidden(&self, m: usize) -> bool {
        m > 0 && m < self.layers.len()
    }

    /// Whether any layer is a conv layer.
    pub fn is_cnn(&self) -> bool {
        self.layers.iter().any(|l| l.kernel.is_some())
    }

    /// Filter factors `k_l` of all layers.
    pub fn filter_factors(&self) -> Vec<i64> {
        self.layers.iter().map(LayerSpec::filter_factor).collect()
    }

    /// Total number of scalar parameters.
    pub fn num_params(&self) -> i64 {
        self.layers.iter().map(LayerSpec::num_params).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_is_checked() {
        assert!(NetworkSpec::new(vec![LayerSpec::dense(2, 3), LayerSpec::dense(4, 1)]).is_err());
        assert!(NetworkSpec::new(vec![]).is_err());
        assert!(NetworkSpec::mlp(&[2, 0, 1]).is_err());
        assert!(
            NetworkSpec::new(vec![LayerSpec::dense(2, 3), LayerSpec::conv(3, 1, 3, 3)]).is_err()
        );
    }

    #[test]
    fn counts() {
        let spec = NetworkSpec::siren(3);
        assert_eq!(spec.num_params(), 1251);
        assert_eq!(spec.dims(), vec![2, 32, 32, 3]);
        assert!(spec.is_hidden(1) && spec.is_hidden(2) && !spec.is_hidden(0) && !spec.is_hidden(3));
        let zoo = NetworkSpec::small_cnn_zoo();
        assert_eq!(zoo.filter_factors(), vec![9, 9, 9, 1]);
        assert!(zoo.is_cnn());
    }

    #[test]
    fn deserialising_validates() {
        let bad = r#"{"layers":[{"n_out":3,"n_in":2},{"n_out":1,"n_in":4}]}"#;
        assert!(serde_json::from_str::<NetworkSpec>(bad).is_err());
    }
}
