//! Probing models: a network is represented by its outputs at a few learned inputs, which an MLP
//! reads. Invariant to hidden-neuron permutations by construction, since only the network's
//! function is looked at.
//!
//! Two kinds (ProbeGen, Kahana et al., ICLR 2025, arXiv 2410.10811):
//! - `probe` ("vanilla probing"): the `num_probes` input points are free parameters;
//! - `probegen`: each probe is made from a learned code by a deep *linear* generator (stacked
//!   linear layers with no activation between), which shares structure across probes.
//!
//! The probed networks are run through [`nfn_weightspace::function::evaluate_mlp`] (one batched,
//! differentiable pass), so the model reads raw weights: MLP weight spaces (INRs) only for now.

use nfn_weightspace::function::{evaluate_mlp, Activation};
use nfn_weightspace::{NetworkSpec, WeightSpaceFeatures};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::head::{MlpHead, MlpHeadConfig};
use crate::model::InvariantModel;

/// Settings of [`ProbeModel`] (`kind = "probe"` or `kind = "probegen"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Probe inputs (ProbeGen: 64 or 128 for INRs).
    pub num_probes: i64,
    /// Size of each probe's learned code (`probegen` only; ProbeGen: 32).
    pub code_dim: i64,
    /// Linear layers of the generator from code to input (`probegen` only; no activation between).
    pub generator_depth: usize,
    /// Hidden width of the generator's layers (`probegen` only).
    pub generator_width: i64,
    /// The hidden-layer activation of the probed networks (SIRENs: `sin(30 x)`).
    pub activation: Activation,
    /// The predictor on the `num_probes x n_out` outputs (ProbeGen: 6 layers of width 256, ReLU).
    pub head: MlpHeadConfig,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            num_probes: 64,
            code_dim: 32,
            generator_depth: 3,
            generator_width: 64,
            activation: Activation::SIREN,
            head: MlpHeadConfig { hidden: vec![256; 5], dropout: 0.0, ..Default::default() },
        }
    }
}

impl ProbeConfig {
    /// Check the values.
    ///
    /// # Errors
    /// [`Error::Config`] for a non-positive size or depth, or a bad head.
    pub fn validate(&self) -> Result<()> {
        if self.num_probes <= 0
            || self.code_dim <= 0
            || self.generator_depth == 0
            || self.generator_width <= 0
        {
            return Err(Error::Config(format!(
                "bad probe model: num_probes {}, code_dim {}, generator_depth {}, generator_width {} \
                 must all be positive",
                self.num_probes, self.code_dim, self.generator_depth, self.generator_width
            )));
        }
        self.head.validate()
    }
}

/// Where the probe inputs come from.
#[derive(Debug)]
enum Probes {
    /// Free inputs `[K, n_in]`.
    Free(Tensor),
    /// Codes `[K, code_dim]` and a stack of linear layers without activations.
    Generated { codes: Tensor, layers: Vec<nn::Linear> },
}

/// A probing model: learned inputs, the probed networks' outputs there, an MLP on those.
#[derive(Debug)]
pub struct ProbeModel {
    probes: Probes,
    activation: Activation,
    head: MlpHead,
}

impl ProbeModel {
    /// A model reading MLPs of `spec` with `num_outputs` outputs; `generated` picks `probegen`
    /// (probes from codes through a deep linear generator) over free probes.
    ///
    /// # Errors
    /// [`Error::Config`] for a CNN weight space (not supported yet).
    pub fn new(
        vs: &nn::Path,
        spec: &NetworkSpec,
        num_outputs: i64,
        cfg: &ProbeConfig,
        generated: bool,
    ) -> Result<Self> {
        if spec.is_cnn() {
            return Err(Error::Config(
                "probe models read MLP weight spaces (INRs) so far, not CNNs".into(),
            ));
        }
        let (k, n_in) = (cfg.num_probes, spec.n_in());
        let probes = if generated {
            let codes =
                vs.var("codes", &[k, cfg.code_dim], nn::Init::Randn { mean: 0.0, stdev: 1.0 });
            let mut widths = vec![cfg.code_dim];
            widths.extend(std::iter::repeat_n(cfg.generator_width, cfg.generator_depth - 1));
            widths.push(n_in);
            let g = vs / "generator";
            // PyTorch's `nn.Linear` init (bound 1/sqrt(fan_in)), as ProbeGen's code has it: each
            // layer shrinks the codes' spread by sqrt(3), so the first probes lie inside the INR
            // domain [-1, 1]^n_in. LibTorch's Kaiming default (gain sqrt(2)) grows it by sqrt(2)
            // per layer instead and starts the probes far outside, where a SIREN's output is noise
            // (measured: 15% against 86% for free probes after 3000 steps on 3k MNIST INRs).
            let layers = widths
                .windows(2)
                .enumerate()
                .map(|(i, w)| {
                    let bound = 1.0 / (w[0] as f64).sqrt();
                    let init = nn::Init::Uniform { lo: -bound, up: bound };
                    let cfg = nn::LinearConfig { ws_init: init, bs_init: Some(init), bias: true };
                    nn::linear(&g / i, w[0], w[1], cfg)
                })
                .collect();
            Probes::Generated { codes, layers }
        } else {
            // The INR domain is [-1, 1]^n_in: start the probes spread over it.
            Probes::Free(vs.var("inputs", &[k, n_in], nn::Init::Uniform { lo: -1.0, up: 1.0 }))
        };
        let width = k * spec.n_out();
        Ok(ProbeModel {
            probes,
            activation: cfg.activation,
            head: MlpHead::new(&(vs / "head"), width, num_outputs, &cfg.head),
        })
    }

    /// The probe inputs.
    ///
    /// # Shapes
    /// `[num_probes, n_in]`
    pub fn inputs(&self) -> Tensor {
        match &self.probes {
            Probes::Free(xs) => xs.shallow_clone(),
            Probes::Generated { codes, layers } => {
                layers.iter().fold(codes.shallow_clone(), |h, l| l.forward(&h))
            }
        }
    }
}

impl InvariantModel for ProbeModel {
    /// # Shapes
    /// raw (1-channel) features of `b` networks → `[b, num_outputs]`
    fn forward_t(&self, wsfeat: &WeightSpaceFeatures, train: bool) -> Tensor {
        let xs = self.inputs().to_kind(wsfeat.kind());
        // The config and the spec were checked when the model was built; a multi-channel input
        // is a caller's error that the experiment layer rejects (`data.standardize` etc.).
        let outs = evaluate_mlp(wsfeat, &xs, self.activation)
            .unwrap_or_else(|e| panic!("probe model: {e}")); // [b, K, n_out]
        self.head.forward_t(&outs.flatten(1, -1), train)
    }
}
