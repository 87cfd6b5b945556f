//! The spatial hypernetwork decoder: each latent vector to a full set of SIREN parameters (design.md §5.2).
//!
//! `sitzmann`: one MLP per SIREN parameter tensor (`W0, b0, W1, b1, W2, b2`), output layer scaled
//! by 1/100 (design.md §8.14). `additive`: one MLP for all parameters, `θ = raw * s + θ0` with `θ0`
//! a learned fresh SIREN init and `s` a learned per-tensor scale.

use nfn_weightspace::{siren_init_tch_rng, NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// Which hypernetwork decodes the latents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderType {
    /// One MLP per parameter tensor (MNIST, FashionMNIST).
    Sitzmann,
    /// One MLP for all parameters, decoding a scaled delta to a learned base SIREN (CIFAR-10).
    Additive,
}

/// Configuration of [`SpatialDecoder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecoderConfig {
    /// The hypernetwork type.
    pub dec_type: DecoderType,
    /// Hidden width of the hypernetwork MLPs.
    pub hidden_dim: i64,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            dec_type: DecoderType::Sitzmann, // dec_type=sitzmann (FashionMNIST)
            hidden_dim: 256,                 // Linear(256, 256) -> ReLU -> Linear(256, 256) -> ReLU
        }
    }
}

impl DecoderConfig {
    /// Check a positive hidden width.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        if self.hidden_dim < 1 {
            return Err(Error::Config(format!(
                "hidden_dim must be positive, got {}",
                self.hidden_dim
            )));
        }
        Ok(())
    }
}

/// A PyTorch-default `nn.Linear`: weight and bias `U(-1/sqrt(in), 1/sqrt(in))`.
pub(crate) fn torch_linear(vs: nn::Path, c_in: i64, c_out: i64) -> nn::Linear {
    let bound = 1.0 / (c_in as f64).sqrt();
    let init = Init::Uniform { lo: -bound, up: bound };
    nn::linear(vs, c_in, c_out, nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true })
}

/// `Linear(d, h) → ReLU → Linear(h, h) → ReLU → Linear(h, out)`.
#[derive(Debug)]
struct HyperMlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
    out: nn::Linear,
}

impl HyperMlp {
    fn new(vs: &nn::Path, d: i64, h: i64, out: nn::Linear) -> Self {
        HyperMlp { fc1: torch_linear(vs / "fc1", d, h), fc2: torch_linear(vs / "fc2", h, h), out }
    }

    fn forward(&self, zs: &Tensor) -> Tensor {
        self.out.forward(&self.fc2.forward(&self.fc1.forward(zs).relu()).relu())
    }
}

/// The hypernetwork part of the additive decoder: the base SIREN and per-tensor scales.
#[derive(Debug)]
struct AdditiveBase {
    theta0: Tensor, // [P] flat base SIREN
    scales: Tensor, // [num tensors]
    sizes: Vec<i64>,
}

/// The spatial decoder (design.md §5.2): every latent vector decodes to one SIREN.
///
/// Parameters (`sitzmann`): `heads/<t>/{fc1,fc2,out}` for tensor `t` in order `W0, b0, W1, ...`.
/// (`additive`): `mlp/{fc1,fc2,out}`, `theta0` `[P]`, `scales` `[2 L]`.
#[derive(Debug)]
pub struct SpatialDecoder {
    spec: NetworkSpec,
    heads: Vec<HyperMlp>,
    additive: Option<AdditiveBase>,
}

impl SpatialDecoder {
    /// A decoder from latents of width `latent_dim` to SIRENs of `spec`. The additive variant draws
    /// its base SIREN from LibTorch's global generator.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid config, a non-positive `latent_dim` or a conv `spec`.
    pub fn new(
        vs: &nn::Path,
        spec: &NetworkSpec,
        latent_dim: i64,
        cfg: &DecoderConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        if latent_dim < 1 || spec.is_cnn() {
            return Err(Error::Config(format!(
                "the decoder needs a positive latent width and an MLP spec, got {latent_dim} and {spec:?}"
            )));
        }
        let (d, h) = (latent_dim, cfg.hidden_dim);
        // Parameter tensors in flatten order: (numel, fan-in of the SIREN weight or None for a bias).
        let tensors: Vec<(i64, Option<i64>)> = spec
            .layers()
            .iter()
            .flat_map(|l| [(l.n_out * l.n_in, Some(l.n_in)), (l.n_out, None)])
            .collect();
        match cfg.dec_type {
            DecoderType::Sitzmann => {
                let heads_vs = vs / "heads";
                let heads = tensors
                    .iter()
                    .enumerate()
                    .map(|(t, &(numel, fan_in))| {
                        let head_vs = &heads_vs / t;
                        // Kaiming-normal (fan_in = h, ReLU gain) / 100; bias U(-1/fi, 1/fi).
                        let std = (2.0 / h as f64).sqrt() / 100.0;
                        let fi = fan_in.unwrap_or(h) as f64;
                        let out = nn::linear(
                            &head_vs / "out",
                            h,
                            numel,
                            nn::LinearConfig {
                                ws_init: Init::Randn { mean: 0.0, stdev: std },
                                bs_init: Some(Init::Uniform { lo: -1.0 / fi, up: 1.0 / fi }),
                                bias: true,
                            },
                        );
                        HyperMlp::new(&head_vs, d, h, out)
                    })
                    .collect();
                Ok(SpatialDecoder { spec: spec.clone(), heads, additive: None })
            }
            DecoderType::Additive => {
                let p = spec.num_params();
                let mlp_vs = vs / "mlp";
                let out = torch_linear(&mlp_vs / "out", h, p);
                let fresh =
                    siren_init_tch_rng(spec, 1, (Kind::Float, vs.device())).flatten().view([p]);
                let sizes: Vec<i64> = tensors.iter().map(|t| t.0).collect();
                let init_scales: Vec<f32> = fresh
                    .split_with_sizes(&sizes, 0)
                    .iter()
                    .map(|t| {
                        let s = if t.numel() > 1 { t.std(true) } else { t.abs().mean(Kind::Float) };
                        s.double_value(&[]) as f32
                    })
                    .collect();
                let mut theta0 = vs.zeros("theta0", &[p]);
                let mut scales = vs.zeros("scales", &[sizes.len() as i64]);
                tch::no_grad(|| {
                    theta0.copy_(&fresh);
                    scales.copy_(&Tensor::from_slice(&init_scales));
                });
                Ok(SpatialDecoder {
                    spec: spec.clone(),
                    heads: vec![HyperMlp::new(&mlp_vs, d, h, out)],
                    additive: Some(AdditiveBase { theta0, scales, sizes }),
                })
            }
        }
    }

    /// The SIREN spec the decoder produces.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    /// Flat SIREN parameters per latent (flatten order of design.md §1.4).
    ///
    /// # Shapes
    /// `[b, M, D]` → `[b, M, P]`
    pub fn forward_flat(&self, zs: &Tensor) -> Tensor {
        match &self.additive {
            None => {
                let parts: Vec<Tensor> = self.heads.iter().map(|head| head.forward(zs)).collect();
                Tensor::cat(&parts, -1) // [b, M, P]
            }
            Some(base) => {
                let raw = self.heads[0].forward(zs); // [b, M, P]
                let scale = base.scales.repeat_interleave_self_tensor(
                    &Tensor::from_slice(&base.sizes).to_device(zs.device()),
                    0,
                    Some(self.spec.num_params()),
                ); // [P]
                raw * scale + &base.theta0
            }
        }
    }

    /// The decoded SIRENs as weight-space features, one network per latent (latent-major).
    ///
    /// # Shapes
    /// `[b, M, D]` → features of batch `b * M` with one channel
    pub fn forward(&self, zs: &Tensor) -> WeightSpaceFeatures {
        let flat = self.forward_flat(zs);
        let p = self.spec.num_params();
        WeightSpaceFeatures::unflatten(&flat.reshape([-1, 1, p]), &self.spec)
            .expect("the decoder's outputs have the spec's parameter count")
    }
}
