//! Input encodings: Gaussian Fourier features, IO sinusoidal encoding, learned positional embeddings (design.md §2.5).

use std::f64::consts::PI;

use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::module::WsModuleT;
use crate::pointwise::{channels_first, channels_last};
use crate::precision::cast_like;

/// Configuration of [`GaussianFourierFeatures`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GaussianFourierConfig {
    /// Input channels (1 for raw weights).
    pub in_channels: i64,
    /// Number of frequencies `m`; the output has `2m` channels.
    pub mapping_size: i64,
    /// Standard deviation of the frequencies.
    pub scale: f64,
}

impl Default for GaussianFourierConfig {
    fn default() -> Self {
        // Inr2Array encoder (design.md §5.1): raw weights, m = 128 (C = 256 out), scale 3.
        GaussianFourierConfig { in_channels: 1, mapping_size: 128, scale: 3.0 }
    }
}

impl GaussianFourierConfig {
    /// Check positive sizes and a finite, non-negative scale.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        if self.in_channels < 1 || self.mapping_size < 1 || self.scale.is_nan() || self.scale < 0.0
        {
            return Err(Error::Config(format!(
                "invalid Gaussian Fourier features config {self:?}"
            )));
        }
        Ok(())
    }
}

/// Gaussian Fourier features: each entry's channel vector `x` maps to
/// `[sin(2π x·B), cos(2π x·B)]` with a fixed `B ∈ R^{c_in x m}` drawn once from `N(0, scale²)`.
///
/// `B` lives in the VarStore as the non-trainable buffer `projection`, so it is saved and loaded.
#[derive(Debug)]
pub struct GaussianFourierFeatures {
    projection: Tensor,
}

impl GaussianFourierFeatures {
    /// Draw the frequencies (LibTorch's global generator; seed with `tch::manual_seed`).
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid.
    pub fn new(vs: &nn::Path, _spec: &NetworkSpec, cfg: &GaussianFourierConfig) -> Result<Self> {
        cfg.validate()?;
        let dims = [cfg.in_channels, cfg.mapping_size];
        let mut projection = vs.f_zeros_no_train("projection", &dims)?;
        let draw = Tensor::f_randn(dims, (projection.kind(), projection.device()))? * cfg.scale;
        tch::no_grad(|| projection.f_copy_(&draw))?;
        Ok(GaussianFourierFeatures { projection })
    }

    /// The frequency matrix `B`, `[c_in, m]`.
    pub fn projection(&self) -> &Tensor {
        &self.projection
    }

    fn encode(&self, xs: &Tensor) -> Tensor {
        // 2π scales the small projection, not the encoding
        let xs = channels_last(xs).matmul(&(&self.projection * (2.0 * PI))); // [b, .., m]
        channels_first(&Tensor::cat(&[xs.sin(), xs.cos()], -1)) // [b, 2m, ..]
    }
}

impl WsModuleT for GaussianFourierFeatures {
    /// # Shapes
    /// weights `[b, c_in, n_out, n_in(, kh, kw)]` → `[b, 2m, ..]`; biases `[b, c_in, n_out]` → `[b, 2m, n_out]`
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, _train: bool) -> WeightSpaceFeatures {
        wsfeat.map(|t| self.encode(t))
    }
}

/// Configuration of [`IoSinusoidalEncoding`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IoSinusoidalConfig {
    /// Highest frequency; the bands are `linspace(1, max_freq / 2, num_bands)`.
    pub max_freq: f64,
    /// Number of bands `nb`; the code has `2 nb + 1` entries.
    pub num_bands: i64,
    /// Also encode the layer index (the NFN-NP classifier uses `false`).
    pub enc_layers: bool,
}

impl Default for IoSinusoidalConfig {
    fn default() -> Self {
        // NFN-NP SIREN classifier (design.md §6.4): max_freq 10, 6 bands, no layer encoding.
        IoSinusoidalConfig { max_freq: 10.0, num_bands: 6, enc_layers: false }
    }
}

impl IoSinusoidalConfig {
    /// Check a positive band count and a finite frequency.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        if self.num_bands < 1 || !self.max_freq.is_finite() {
            return Err(Error::Config(format!("invalid IO sinusoidal config {self:?}")));
        }
        Ok(())
    }

    /// Channels added to the features, `2 nb + 1`.
    pub fn extra_channels(&self) -> i64 {
        2 * self.num_bands + 1
    }
}

/// Sinusoidal codes of layer, input and output positions, concatenated to the channels (design.md
/// §2.5). `W_0` columns get the input code, `W_{L-1}` and `b_{L-1}` rows the output code.
#[derive(Debug)]
pub struct IoSinusoidalEncoding {
    spec: NetworkSpec,
    cfg: IoSinusoidalConfig,
}

impl IoSinusoidalEncoding {
    /// An encoding for `spec` (no parameters; `vs` is unused and kept for a uniform signature).
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid.
    pub fn new(_vs: &nn::Path, spec: &NetworkSpec, cfg: &IoSinusoidalConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(IoSinusoidalEncoding { spec: spec.clone(), cfg: cfg.clone() })
    }

    /// `f(linspace(-1, 1, n))`: `[n, 2 nb + 1]` rows `[sin(π t s), cos(π t s), t]`.
    fn code(&self, n: i64, options: (Kind, tch::Device)) -> Tensor {
        let t = Tensor::linspace(-1.0, 1.0, n, options).unsqueeze(-1); // [n, 1]
        let bands = Tensor::linspace(1.0, self.cfg.max_freq / 2.0, self.cfg.num_bands, options);
        let x = &t * bands * PI; // [n, nb]
        Tensor::cat(&[x.sin(), x.cos(), t], -1)
    }
}

impl WsModuleT for IoSinusoidalEncoding {
    /// # Shapes
    /// weights `[b, c, n_out, n_in(, kh, kw)]` → `[b, c + 2nb + 1, ..]`; biases likewise.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, _train: bool) -> WeightSpaceFeatures {
        let options = (wsfeat.kind(), wsfeat.device());
        let (n_layers, d) = (self.spec.num_layers(), self.cfg.extra_channels());
        let layer_code = if self.cfg.enc_layers {
            self.code(n_layers as i64, options)
        } else {
            Tensor::zeros([n_layers as i64, d], options)
        }; // [L, d]
        let in_code = self.code(self.spec.n_in(), options).tr(); // [d, n_in]
        let out_code = self.code(self.spec.n_out(), options).tr(); // [d, n_out]
        let (weights, biases) = wsfeat
            .iter()
            .enumerate()
            .map(|(l, (w, b))| {
                let s = w.size();
                let taps = s.len() - 4;
                let mut enc = layer_code.get(l as i64).view([d, 1, 1]); // [d, 1, 1]
                let mut benc = layer_code.get(l as i64).view([d, 1]); // [d, 1]
                if l == 0 {
                    enc = enc.g_add(&in_code.unsqueeze(1)); // [d, 1, n_in]
                }
                if l + 1 == n_layers {
                    enc = enc.g_add(&out_code.unsqueeze(2)); // [d, n_out, _]
                    benc = benc.g_add(&out_code); // [d, n_out]
                }
                for _ in 0..taps {
                    enc = enc.unsqueeze(-1);
                }
                let mut wshape = s.clone();
                wshape[1] = d;
                let enc = enc.unsqueeze(0).expand(&wshape, false); // [b, d, n_out, n_in(, kh, kw)]
                let benc = benc.unsqueeze(0).expand([s[0], d, s[2]], false); // [b, d, n_out]
                (Tensor::cat(&[w, &enc], 1), Tensor::cat(&[b, &benc], 1))
            })
            .unzip();
        WeightSpaceFeatures::from_parts_unchecked(weights, biases)
    }
}

/// Configuration of [`LearnedPosEmbedding`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnedPosEmbeddingConfig {
    /// Channels `c` of the features the tables are added to.
    pub channels: i64,
}

impl Default for LearnedPosEmbeddingConfig {
    fn default() -> Self {
        // NFT width C = 256 (Inr2Array encoder, design.md §5.1).
        LearnedPosEmbeddingConfig { channels: 256 }
    }
}

impl LearnedPosEmbeddingConfig {
    /// Check a positive width.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        if self.channels < 1 {
            return Err(Error::Config(format!("channels must be positive, got {}", self.channels)));
        }
        Ok(())
    }
}

/// Learned layer, input-neuron and output-neuron embeddings added to the features (design.md §2.5).
///
/// Tables (init `N(0, 1)`): `weight_emb/weight` `[L, c]`, `bias_emb/weight` `[L, c]`,
/// `inp_emb/weight` `[n_in, c]`, `out_emb/weight` `[n_out, c]`.
#[derive(Debug)]
pub struct LearnedPosEmbedding {
    weight_emb: Tensor,
    bias_emb: Tensor,
    inp_emb: Tensor,
    out_emb: Tensor,
}

impl LearnedPosEmbedding {
    /// Tables for `spec`.
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &LearnedPosEmbeddingConfig) -> Result<Self> {
        cfg.validate()?;
        let c = cfg.channels;
        let n_layers = spec.num_layers() as i64;
        let table = |name: &str, rows: i64| {
            (vs / name).var("weight", &[rows, c], Init::Randn { mean: 0.0, stdev: 1.0 })
        };
        Ok(LearnedPosEmbedding {
            weight_emb: table("weight_emb", n_layers),
            bias_emb: table("bias_emb", n_layers),
            inp_emb: table("inp_emb", spec.n_in()),
            out_emb: table("out_emb", spec.n_out()),
        })
    }
}

impl WsModuleT for LearnedPosEmbedding {
    /// # Shapes
    /// weights `[b, c, n_out, n_in(, kh, kw)]` and biases `[b, c, n_out]` keep their shapes.
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, _train: bool) -> WeightSpaceFeatures {
        let n_layers = wsfeat.num_layers();
        let (weights, biases) = wsfeat
            .iter()
            .enumerate()
            .map(|(l, (w, b))| {
                let c = self.weight_emb.size()[1];
                let mut enc = self.weight_emb.get(l as i64).view([1, c, 1, 1]); // [1, c, 1, 1]
                let mut benc = self.bias_emb.get(l as i64).view([1, c, 1]); // [1, c, 1]
                if l == 0 {
                    enc = enc.g_add(&self.inp_emb.tr().unsqueeze(0).unsqueeze(2));
                    // [1, c, 1, n_in]
                }
                if l + 1 == n_layers {
                    let out = self.out_emb.tr().unsqueeze(0); // [1, c, n_out]
                    enc = enc.g_add(&out.unsqueeze(3)); // [1, c, n_out, _]
                    benc = benc.g_add(&out);
                }
                for _ in 4..w.dim() {
                    enc = enc.unsqueeze(-1);
                }
                (w + cast_like(&enc, w), b + cast_like(&benc, b))
            })
            .unzip();
        WeightSpaceFeatures::from_parts_unchecked(weights, biases)
    }
}
