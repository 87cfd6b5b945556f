//! The Inr2Array autoencoder and its reconstruction task (design.md §5.2-5.4).
//!
//! `loss = mean((render(decode(encode(θ))) - render_siren(θ))²)`: the target is the input SIREN's
//! own rendering (design.md §8.17), not the data set image.

use nfn_weightspace::{render_siren, NetworkSpec, WeightSpaceFeatures};
use nft_model::{Batch, EvalOutput, Metric, OptimConfig, Schedule, Task, TrainerConfig};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::decoder::{DecoderConfig, SpatialDecoder};
use crate::encoder::{EncoderConfig, Inr2ArrayEncoder};
use crate::error::{Error, Result};
use crate::render::SpatialRenderer;

/// Configuration of [`Inr2ArrayAutoencoder`]; the default is the paper's FashionMNIST model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoencoderConfig {
    /// The encoder.
    pub encoder: EncoderConfig,
    /// The decoder.
    pub decoder: DecoderConfig,
    /// Rendered image size `[h, w]` (28 x 28 for (Fashion)MNIST, 32 x 32 for CIFAR-10).
    pub image_size: [i64; 2],
}

impl Default for AutoencoderConfig {
    fn default() -> Self {
        AutoencoderConfig {
            encoder: EncoderConfig::default(),
            decoder: DecoderConfig::default(),
            image_size: [28, 28], // FashionMNIST
        }
    }
}

impl AutoencoderConfig {
    /// A CPU-sized model: the small encoder and a decoder of hidden width 64.
    pub fn small() -> Self {
        AutoencoderConfig {
            encoder: EncoderConfig::small(),
            decoder: DecoderConfig { hidden_dim: 64, ..Default::default() },
            ..Default::default()
        }
    }

    /// Check the parts and that every grid cell gets pixels.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        self.encoder.validate()?;
        self.decoder.validate()?;
        let [h, w] = self.image_size;
        SpatialRenderer::new(h, w, self.encoder.grid_side(), tch::Device::Cpu).map(|_| ())
    }
}

/// The reference autoencoder trainer settings (design.md §5.4): AdamW lr 1e-4, weight decay 0.01,
/// 10 000 warm-up steps, cosine to 0 at step 200 000, validation every 1000 steps.
pub fn reference_trainer() -> TrainerConfig {
    TrainerConfig {
        steps: 200_000,
        eval_every: 1000,
        log_every: 50,
        optim: OptimConfig {
            lr: 1e-4,
            weight_decay: 0.01,
            warmup_steps: 10_000,
            schedule: Schedule::Cosine,
            ..OptimConfig::default()
        },
        ..TrainerConfig::default()
    }
}

/// A CPU-sized schedule: 2000 steps, lr 1e-3, 100 warm-up steps, cosine.
pub fn small_trainer() -> TrainerConfig {
    let mut cfg = reference_trainer();
    cfg.steps = 2000;
    cfg.eval_every = 200;
    cfg.log_every = 20;
    cfg.optim.lr = 1e-3;
    cfg.optim.warmup_steps = 100;
    cfg
}

/// Encoder + spatial decoder + renderer.
///
/// Parameters: `encoder`, `decoder`.
#[derive(Debug)]
pub struct Inr2ArrayAutoencoder {
    cfg: AutoencoderConfig,
    encoder: Inr2ArrayEncoder,
    decoder: SpatialDecoder,
    renderer: SpatialRenderer,
}

impl Inr2ArrayAutoencoder {
    /// Build for SIRENs of `spec`.
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid or `spec` is not a 2-input MLP.
    pub fn new(vs: &nn::Path, spec: &NetworkSpec, cfg: &AutoencoderConfig) -> Result<Self> {
        cfg.validate()?;
        if spec.n_in() != 2 {
            return Err(Error::Config(format!(
                "SIRENs on images take 2 inputs, spec has {spec:?}"
            )));
        }
        let [h, w] = cfg.image_size;
        Ok(Inr2ArrayAutoencoder {
            cfg: cfg.clone(),
            encoder: Inr2ArrayEncoder::new(&(vs / "encoder"), spec, &cfg.encoder)?,
            decoder: SpatialDecoder::new(
                &(vs / "decoder"),
                spec,
                cfg.encoder.latent_dim,
                &cfg.decoder,
            )?,
            renderer: SpatialRenderer::new(h, w, cfg.encoder.grid_side(), vs.device())?,
        })
    }

    /// The config.
    pub fn config(&self) -> &AutoencoderConfig {
        &self.cfg
    }

    /// The encoder.
    pub fn encoder(&self) -> &Inr2ArrayEncoder {
        &self.encoder
    }

    /// The decoder.
    pub fn decoder(&self) -> &SpatialDecoder {
        &self.decoder
    }

    /// The renderer.
    pub fn renderer(&self) -> &SpatialRenderer {
        &self.renderer
    }

    /// The latent arrays.
    ///
    /// # Shapes
    /// SIRENs of batch `b` → `[b, M, D]`
    pub fn encode(&self, sirens: &WeightSpaceFeatures, train: bool) -> Tensor {
        self.encoder.forward_t(sirens, train)
    }

    /// Render the reconstruction from latents.
    ///
    /// # Shapes
    /// `[b, M, D]` → `[b, c, h, w]`
    pub fn decode_render(&self, zs: &Tensor) -> Tensor {
        self.renderer
            .render(&self.decoder.forward(zs))
            .expect("the decoder produces a multiple of M raw SIRENs")
    }

    /// The reconstruction of each input SIREN's image.
    ///
    /// # Shapes
    /// SIRENs of batch `b` → `[b, c, h, w]`
    pub fn reconstruct(&self, sirens: &WeightSpaceFeatures, train: bool) -> Tensor {
        self.decode_render(&self.encode(sirens, train))
    }

    /// The reconstruction target: the input SIRENs rendered on the full grid (no gradient).
    ///
    /// # Shapes
    /// SIRENs of batch `b` → `[b, c, h, w]`
    ///
    /// # Errors
    /// [`Error::WeightSpace`] if the features are not raw 2-input MLPs.
    pub fn target(&self, sirens: &WeightSpaceFeatures) -> Result<Tensor> {
        let [h, w] = self.cfg.image_size;
        Ok(tch::no_grad(|| render_siren(sirens, h, w))?)
    }

    /// The mean squared reconstruction error of a batch.
    pub fn loss(&self, sirens: &WeightSpaceFeatures, train: bool) -> Tensor {
        let target = self.target(sirens).expect("inputs are raw SIRENs of the model's spec");
        self.reconstruct(sirens, train).mse_loss(&target, tch::Reduction::Mean)
    }
}

impl Task for Inr2ArrayAutoencoder {
    type Input = WeightSpaceFeatures;

    fn loss(&self, batch: &Batch, train: bool) -> Tensor {
        Inr2ArrayAutoencoder::loss(self, &batch.inputs, train)
    }

    /// The reconstruction against the rendered input: the MSE over pixels and channels.
    fn eval_batch(&self, batch: &Batch) -> EvalOutput {
        let target = self.target(&batch.inputs).expect("inputs are raw SIRENs of the model's spec");
        let outputs = self.reconstruct(&batch.inputs, false);
        let loss = outputs.mse_loss(&target, tch::Reduction::Mean).double_value(&[]);
        EvalOutput { loss, outputs, targets: target }
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![Metric::Mse]
    }

    fn selection(&self) -> Metric {
        Metric::Mse
    }
}
