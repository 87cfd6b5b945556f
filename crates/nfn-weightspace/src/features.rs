//! Batched, multi-channel weight-space features (design.md §1.1, §1.3, §1.4).

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::spec::{LayerSpec, NetworkSpec};

/// Weight-space features of a batch of networks with one spec: per layer `l` a weight tensor
/// `[b, c, n_out, n_in]` (dense) or `[b, c, n_out, n_in, kh, kw]` (conv) and a bias `[b, c, n_out]`.
///
/// Raw weights have `c = 1`; equivariant layers map `c_in` channels to `c_out`. Construct with
/// [`WeightSpaceFeatures::new`], which checks every shape.
///
/// ```
/// use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
/// use tch::{Device, Kind};
/// let spec = NetworkSpec::siren(1);
/// let ws = WeightSpaceFeatures::randn(&spec, 4, 1, (Kind::Float, Device::Cpu));
/// assert_eq!(ws.spec().unwrap(), spec);
/// assert_eq!(ws.flatten().size(), vec![4, 1, 1185]);
/// ```
#[derive(Debug)]
pub struct WeightSpaceFeatures {
    weights: Vec<Tensor>,
    biases: Vec<Tensor>,
}

fn describe(shape: &[Option<i64>]) -> String {
    let parts: Vec<String> =
        shape.iter().map(|d| d.map_or_else(|| "_".to_string(), |d| d.to_string())).collect();
    format!("[{}]", parts.join(", "))
}

fn check_shape(
    layer: usize,
    what: &'static str,
    got: &[i64],
    expected: &[Option<i64>],
) -> Result<()> {
    let ok = got.len() == expected.len()
        && got.iter().zip(expected).all(|(g, e)| e.is_none_or(|e| e == *g));
    if ok {
        Ok(())
    } else {
        Err(Error::Shape { layer, what, expected: describe(expected), got: got.to_vec() })
    }
}

impl WeightSpaceFeatures {
    /// Features from per-layer weights and biases, with every shape checked.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the layer and both shapes if ranks differ from 4/6 (weights) and 3
    /// (biases), batch or channel sizes disagree, consecutive layers do not chain, or a bias does not
    /// match its weight's rows; [`Error::SpecMismatch`] if the lists are empty or of unequal length;
    /// [`Error::Dtype`] for a non-floating-point tensor.
    pub fn new(weights: Vec<Tensor>, biases: Vec<Tensor>) -> Result<Self> {
        if weights.is_empty() || weights.len() != biases.len() {
            return Err(Error::SpecMismatch(format!(
                "need as many biases as weights (at least one), got {} weights and {} biases",
                weights.len(),
                biases.len()
            )));
        }
        let w0 = weights[0].size();
        if w0.len() != 4 && w0.len() != 6 {
            return Err(Error::Shape {
                layer: 0,
                what: "weight",
                expected: "[b, c, n_out, n_in] or [b, c, n_out, n_in, kh, kw]".into(),
                got: w0,
            });
        }
        let (b, c) = (w0[0], w0[1]);
        let kind = weights[0].kind();
        let mut prev_out: Option<i64> = None;
        for (l, (w, bias)) in weights.iter().zip(&biases).enumerate() {
            for (t, what) in [(w, "weight"), (bias, "bias")] {
                if !t.is_floating_point() || t.kind() != kind {
                    return Err(Error::Dtype {
                        what: format!("layer {l} {what}"),
                        got: format!("{:?}", t.kind()),
                        expected: format!("a floating-point dtype equal to layer 0's ({kind:?})"),
                    });
                }
            }
            let ws = w.size();
            let mut exp = vec![Some(b), Some(c), None, prev_out];
            if ws.len() == 6 {
                exp.extend([None, None]);
            }
            check_shape(l, "weight", &ws, &exp)?;
            check_shape(l, "bias", &bias.size(), &[Some(b), Some(c), Some(ws[2])])?;
            prev_out = Some(ws[2]);
        }
        let out = WeightSpaceFeatures { weights, biases };
        if let Err(Error::InvalidSpec(msg)) = out.spec() {
            return Err(Error::SpecMismatch(msg));
        }
        Ok(out)
    }

    /// Features built by a layer whose output shapes are right by construction (debug-checked).
    pub fn from_parts_unchecked(weights: Vec<Tensor>, biases: Vec<Tensor>) -> Self {
        let out = WeightSpaceFeatures { weights, biases };
        debug_assert!(
            WeightSpaceFeatures::new(
                out.weights.iter().map(Tensor::shallow_clone).collect(),
                out.biases.iter().map(Tensor::shallow_clone).collect()
            )
            .is_ok(),
            "layer produced inconsistent weight-space features"
        );
        out
    }

    /// Features of `spec` filled by `f(shape)`.
    pub fn from_fn(
        spec: &NetworkSpec,
        b: i64,
        c: i64,
        mut f: impl FnMut(&[i64]) -> Tensor,
    ) -> Self {
        let (weights, biases) = spec
            .layers()
            .iter()
            .map(|layer| {
                let mut shape = vec![b, c];
                shape.extend(layer.weight_shape());
                (f(&shape), f(&[b, c, layer.n_out]))
            })
            .unzip();
        WeightSpaceFeatures::from_parts_unchecked(weights, biases)
    }

    /// Zeros of `spec` with `b` networks and `c` channels.
    pub fn zeros(spec: &NetworkSpec, b: i64, c: i64, options: (Kind, Device)) -> Self {
        Self::from_fn(spec, b, c, |shape| Tensor::zeros(shape, options))
    }

    /// Standard normal features of `spec` (uses LibTorch's global generator).
    pub fn randn(spec: &NetworkSpec, b: i64, c: i64, options: (Kind, Device)) -> Self {
        Self::from_fn(spec, b, c, |shape| Tensor::randn(shape, options))
    }

    /// The per-layer weight tensors.
    pub fn weights(&self) -> &[Tensor] {
        &self.weights
    }

    /// The per-layer bias tensors.
    pub fn biases(&self) -> &[Tensor] {
        &self.biases
    }

    /// Weight of layer `l`.
    pub fn weight(&self, l: usize) -> &Tensor {
        &self.weights[l]
    }

    /// Bias of layer `l`.
    pub fn bias(&self, l: usize) -> &Tensor {
        &self.biases[l]
    }

    /// Split into `(weights, biases)`.
    pub fn into_parts(self) -> (Vec<Tensor>, Vec<Tensor>) {
        (self.weights, self.biases)
    }

    /// Iterate over `(W_l, b_l)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&Tensor, &Tensor)> {
        self.weights.iter().zip(&self.biases)
    }

    /// Number of weight layers `L`.
    pub fn num_layers(&self) -> usize {
        self.weights.len()
    }

    /// Batch size `b`.
    pub fn batch_size(&self) -> i64 {
        self.weights[0].size()[0]
    }

    /// Channel count `c`.
    pub fn channels(&self) -> i64 {
        self.weights[0].size()[1]
    }

    /// The dtype of every tensor.
    pub fn kind(&self) -> Kind {
        self.weights[0].kind()
    }

    /// The device of every tensor.
    pub fn device(&self) -> Device {
        self.weights[0].device()
    }

    /// The network spec these features describe.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] if the shapes do not form a valid chain (cannot happen after [`Self::new`]).
    pub fn spec(&self) -> Result<NetworkSpec> {
        NetworkSpec::new(
            self.weights
                .iter()
                .map(|w| {
                    let s = w.size();
                    LayerSpec {
                        n_out: s[2],
                        n_in: s[3],
                        kernel: (s.len() == 6).then(|| [s[4], s[5]]),
                    }
                })
                .collect(),
        )
    }

    /// Check that these features belong to `spec`.
    ///
    /// # Errors
    /// [`Error::SpecMismatch`] naming both specs.
    pub fn check_spec(&self, spec: &NetworkSpec) -> Result<()> {
        let own = self.spec()?;
        if &own == spec {
            Ok(())
        } else {
            Err(Error::SpecMismatch(format!("expected {spec:?}, got {own:?}")))
        }
    }

    /// Check that every value is finite.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the first layer and tensor with a NaN or infinity.
    pub fn check_finite(&self) -> Result<()> {
        for (l, (w, b)) in self.iter().enumerate() {
            for (t, what) in [(w, "weight"), (b, "bias")] {
                let count = t.isfinite().logical_not().sum(Kind::Int64).int64_value(&[]);
                if count > 0 {
                    return Err(Error::NonFinite { layer: l, what, count });
                }
            }
        }
        Ok(())
    }

    /// Apply `f` to every weight and bias tensor.
    pub fn map(&self, mut f: impl FnMut(&Tensor) -> Tensor) -> Self {
        WeightSpaceFeatures {
            weights: self.weights.iter().map(&mut f).collect(),
            biases: self.biases.iter().map(&mut f).collect(),
        }
    }

    /// Combine with `other` tensor by tensor (same spec assumed, debug-checked).
    pub fn zip_map(&self, other: &Self, mut f: impl FnMut(&Tensor, &Tensor) -> Tensor) -> Self {
        debug_assert_eq!(self.num_layers(), other.num_layers());
        WeightSpaceFeatures {
            weights: self.weights.iter().zip(&other.weights).map(|(a, b)| f(a, b)).collect(),
            biases: self.biases.iter().zip(&other.biases).map(|(a, b)| f(a, b)).collect(),
        }
    }

    /// Element-wise sum.
    pub fn add(&self, other: &Self) -> Self {
        self.zip_map(other, |a, b| a + b)
    }

    /// Multiply every entry by `s`.
    pub fn scale(&self, s: f64) -> Self {
        self.map(|t| t * s)
    }

    /// Shallow copies sharing storage.
    pub fn shallow_clone(&self) -> Self {
        self.map(Tensor::shallow_clone)
    }

    /// Detached copies (no autograd history), sharing storage.
    pub fn detach(&self) -> Self {
        self.map(Tensor::detach)
    }

    /// Move to `device`.
    pub fn to_device(&self, device: Device) -> Self {
        self.map(|t| t.to_device(device))
    }

    /// Convert to floating-point dtype `kind`.
    ///
    /// # Errors
    /// [`Error::Dtype`] if `kind` is not a floating-point dtype.
    pub fn to_kind(&self, kind: Kind) -> Result<Self> {
        if !matches!(kind, Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double) {
            return Err(Error::Dtype {
                what: "weight-space features".into(),
                got: format!("{kind:?}"),
                expected: "Half, BFloat16, Float or Double".into(),
            });
        }
        Ok(self.map(|t| t.to_kind(kind)))
    }

    /// Concatenate features of the same spec and batch along the channel axis.
    ///
    /// # Errors
    /// [`Error::SpecMismatch`] if the list is empty or specs or batch sizes differ.
    pub fn cat_channels(parts: &[&Self]) -> Result<Self> {
        Self::cat_along(parts, 1, |p, first| p.batch_size() == first.batch_size())
    }

    /// Concatenate features of the same spec and channel count along the batch axis (collation).
    ///
    /// # Errors
    /// [`Error::SpecMismatch`] if the list is empty or specs or channel counts differ.
    pub fn cat_batch(parts: &[&Self]) -> Result<Self> {
        Self::cat_along(parts, 0, |p, first| p.channels() == first.channels())
    }

    fn cat_along(parts: &[&Self], dim: i64, same: impl Fn(&Self, &Self) -> bool) -> Result<Self> {
        let first =
            parts.first().ok_or_else(|| Error::SpecMismatch("nothing to concatenate".into()))?;
        let spec = first.spec()?;
        for p in parts {
            p.check_spec(&spec)?;
            if !same(p, first) {
                return Err(Error::SpecMismatch(format!("cannot concatenate along axis {dim}")));
            }
        }
        let cat = |get: fn(&Self) -> &[Tensor], l: usize| {
            Tensor::cat(&parts.iter().map(|p| &get(p)[l]).collect::<Vec<_>>(), dim)
        };
        let n = first.num_layers();
        Ok(WeightSpaceFeatures {
            weights: (0..n).map(|l| cat(Self::weights, l)).collect(),
            biases: (0..n).map(|l| cat(Self::biases, l)).collect(),
        })
    }

    /// The networks at `indices` (a 1-D int64 tensor) of the batch.
    pub fn index_batch(&self, indices: &Tensor) -> Self {
        self.map(|t| t.index_select(0, indices))
    }

    /// Weights with conv filter taps folded into channels: `[b, c*kh*kw, n_out, n_in]`
    /// (folded index `c*kh*kw + y*kw + x`, design.md §1.3). Dense weights are returned as they are.
    pub fn folded_weights(&self) -> Vec<Tensor> {
        self.weights.iter().map(fold).collect()
    }

    /// All entries as one vector per network and channel: `[b, c, N]` with `N` the parameter count.
    /// Per layer, the weight entries in row-major `(out, in(, kh, kw))` order, then the bias
    /// (design.md §1.4). With `c = 1` this is the usual flat parameter vector.
    pub fn flatten(&self) -> Tensor {
        let (b, c) = (self.batch_size(), self.channels());
        let parts: Vec<Tensor> = self
            .iter()
            .flat_map(|(w, bias)| [w.reshape([b, c, -1]), bias.shallow_clone()])
            .collect();
        Tensor::cat(&parts, 2)
    }

    /// The inverse of [`Self::flatten`].
    ///
    /// # Errors
    /// [`Error::Shape`] if `xs` is not `[b, c, spec.num_params()]`.
    pub fn unflatten(xs: &Tensor, spec: &NetworkSpec) -> Result<Self> {
        let size = xs.size();
        if size.len() != 3 || size[2] != spec.num_params() {
            return Err(Error::Shape {
                layer: 0,
                what: "flat vector",
                expected: format!("[_, _, {}]", spec.num_params()),
                got: size,
            });
        }
        let (b, c) = (size[0], size[1]);
        let mut offset = 0;
        let mut take = |n: i64| {
            let t = xs.narrow(2, offset, n);
            offset += n;
            t
        };
        let (weights, biases) = spec
            .layers()
            .iter()
            .map(|layer| {
                let mut shape = vec![b, c];
                shape.extend(layer.weight_shape());
                let w = take(layer.n_out * layer.n_in * layer.filter_factor()).reshape(shape);
                (w, take(layer.n_out))
            })
            .unzip();
        Ok(WeightSpaceFeatures { weights, biases })
    }
}

/// Fold conv filter taps into channels: `[b, c, o, i, kh, kw] -> [b, c*kh*kw, o, i]`; dense unchanged.
pub fn fold(w: &Tensor) -> Tensor {
    let s = w.size();
    if s.len() == 6 {
        w.permute([0, 1, 4, 5, 2, 3]).reshape([s[0], s[1] * s[4] * s[5], s[2], s[3]])
    } else {
        w.shallow_clone()
    }
}

/// Inverse of [`fold`] for a layer with filter `kernel` (`None` for dense).
pub fn unfold(w: &Tensor, kernel: Option<[i64; 2]>) -> Tensor {
    match kernel {
        Some([kh, kw]) => {
            let s = w.size();
            w.reshape([s[0], s[1] / (kh * kw), kh, kw, s[2], s[3]]).permute([0, 1, 4, 5, 2, 3])
        }
        None => w.shallow_clone(),
    }
}

impl Clone for WeightSpaceFeatures {
    /// A shallow clone (tensors share storage), as with [`Tensor::shallow_clone`].
    fn clone(&self) -> Self {
        self.shallow_clone()
    }
}
