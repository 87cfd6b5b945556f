//! Per-network hyperparameters of a generated zoo, drawn from the distributions of Unterthiner et
//! al. 2020, "Predicting Neural Network Accuracy from Weights" (arXiv 2002.11448, §3 / Table 1),
//! with the option names of the reference trainer (`dnn_predict_accuracy/train_network.py`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The optimizer of one network (Keras defaults, only the learning rate is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZooOptimizer {
    /// Adam, β = (0.9, 0.999), ε = 1e-7 (TF's "ε-hat" form).
    Adam,
    /// RMSProp, ρ = 0.9, no momentum, ε = 1e-7 (outside the square root, TF 2 `OptimizerV2`).
    RmsProp,
    /// Plain SGD, no momentum.
    Sgd,
}

impl ZooOptimizer {
    /// The name the reference's `config.optimizer` column uses.
    pub fn name(self) -> &'static str {
        match self {
            ZooOptimizer::Adam => "adam",
            ZooOptimizer::RmsProp => "rmsprop",
            ZooOptimizer::Sgd => "sgd",
        }
    }
}

/// The hidden activation of one network (after each conv layer; the dense layer is linear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZooActivation {
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
}

impl ZooActivation {
    /// The `config.activation` name.
    pub fn name(self) -> &'static str {
        match self {
            ZooActivation::Relu => "relu",
            ZooActivation::Tanh => "tanh",
        }
    }

    /// The same activation for [`nfn_weightspace::evaluate_cnn`].
    pub fn activation(self) -> nfn_weightspace::Activation {
        match self {
            ZooActivation::Relu => nfn_weightspace::Activation::Relu,
            ZooActivation::Tanh => nfn_weightspace::Activation::Tanh,
        }
    }
}

/// The kernel initializer of one network (Keras semantics; biases always start at zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WeightInit {
    /// `N(0, init_std²)`.
    RandomNormal,
    /// `N(0, init_std²)` redrawn beyond 2 standard deviations.
    TruncatedNormal,
    /// Truncated normal with std `sqrt(2 / (fan_in + fan_out)) / 0.8796`.
    GlorotNormal,
    /// Uniform on `±sqrt(6 / (fan_in + fan_out))`.
    GlorotUniform,
    /// Truncated normal with std `sqrt(2 / fan_in) / 0.8796`.
    HeNormal,
    /// Orthogonal rows or columns of the `(kh·kw·in, out)` matrix, gain 1.
    Orthogonal,
}

impl WeightInit {
    /// The `config.w_init` name (as `tf.keras.initializers.get` takes it).
    pub fn name(self) -> &'static str {
        match self {
            WeightInit::RandomNormal => "RandomNormal",
            WeightInit::TruncatedNormal => "TruncatedNormal",
            WeightInit::GlorotNormal => "glorot_normal",
            WeightInit::GlorotUniform => "glorot_uniform",
            WeightInit::HeNormal => "he_normal",
            WeightInit::Orthogonal => "orthogonal",
        }
    }
}

/// The distributions the hyperparameters are drawn from. Defaults: the paper's (see the module
/// docs); categorical choices are uniform over the listed values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HyperSpace {
    /// Optimizers (uniform choice).
    pub optimizers: Vec<ZooOptimizer>,
    /// Learning rate, log-uniform on `[lo, hi]`.
    pub learning_rate: [f64; 2],
    /// L2 penalty on the kernels, log-uniform on `[lo, hi]`.
    pub l2reg: [f64; 2],
    /// Init std (used by `RandomNormal` / `TruncatedNormal`), log-uniform on `[lo, hi]`.
    pub init_std: [f64; 2],
    /// Kernel initializers (uniform choice).
    pub w_inits: Vec<WeightInit>,
    /// Dropout rate after each conv layer, uniform on `[lo, hi]`.
    pub dropout: [f64; 2],
    /// Activations (uniform choice).
    pub activations: Vec<ZooActivation>,
    /// Fractions of the training images each network sees (uniform choice).
    pub train_fractions: Vec<f64>,
}

impl Default for HyperSpace {
    fn default() -> Self {
        use WeightInit::*;
        HyperSpace {
            optimizers: vec![ZooOptimizer::Adam, ZooOptimizer::RmsProp, ZooOptimizer::Sgd],
            learning_rate: [5e-4, 5e-2],
            l2reg: [1e-8, 1e-2],
            init_std: [1e-3, 0.5],
            w_inits: vec![
                RandomNormal,
                TruncatedNormal,
                GlorotNormal,
                GlorotUniform,
                HeNormal,
                Orthogonal,
            ],
            dropout: [0.0, 0.7],
            activations: vec![ZooActivation::Relu, ZooActivation::Tanh],
            train_fractions: vec![0.1, 0.25, 0.5, 1.0],
        }
    }
}

/// The hyperparameters of network `index` of a zoo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooHyper {
    /// Network index in the zoo (`modeldir` is `net-{index:06}`).
    pub index: usize,
    /// Optimizer.
    pub optimizer: ZooOptimizer,
    /// Learning rate.
    pub learning_rate: f64,
    /// L2 penalty `l2reg * sum(kernel²)` added to the loss (Keras `regularizers.l2`).
    pub l2reg: f64,
    /// Init std (recorded for every network, used only by the normal initializers).
    pub init_std: f64,
    /// Kernel initializer.
    pub w_init: WeightInit,
    /// Dropout rate after each conv layer.
    pub dropout: f64,
    /// Hidden activation.
    pub activation: ZooActivation,
    /// Fraction of the training images this network trains on.
    pub train_fraction: f64,
}

/// What a per-network random stream is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Hyper = 0,
    Weights = 1,
    Data = 2,
    Dropout = 3,
    Split = 4,
}

/// A seed for (`seed`, `index`, `stream`) (SplitMix64 finaliser), so every network's randomness
/// depends on the zoo seed and its own index only.
pub(crate) fn stream_seed(seed: u64, index: usize, stream: Stream) -> u64 {
    let mut z = seed
        ^ (stream as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)
        ^ (index as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// A random generator for (`seed`, `index`, `stream`).
pub(crate) fn stream_rng(seed: u64, index: usize, stream: Stream) -> StdRng {
    StdRng::seed_from_u64(stream_seed(seed, index, stream))
}

fn log_uniform(rng: &mut StdRng, [lo, hi]: [f64; 2]) -> f64 {
    let u: f64 = rng.gen();
    (lo.ln() + u * (hi.ln() - lo.ln())).exp()
}

fn choose<T: Copy>(rng: &mut StdRng, xs: &[T]) -> T {
    xs[rng.gen_range(0..xs.len())]
}

impl HyperSpace {
    /// Check that ranges are positive (log-uniform) or within `[0, 1)` (dropout), lists non-empty
    /// and fractions in `(0, 1]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("hyperparameter space: {m}")));
        for (name, [lo, hi]) in [
            ("learning_rate", self.learning_rate),
            ("l2reg", self.l2reg),
            ("init_std", self.init_std),
        ] {
            if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
                return bad(format!("{name} range [{lo}, {hi}] must be positive and ordered"));
            }
        }
        let [d0, d1] = self.dropout;
        if !(0.0 <= d0 && d0 <= d1 && d1 < 1.0) {
            return bad(format!("dropout range [{d0}, {d1}] must lie in [0, 1)"));
        }
        if self.optimizers.is_empty() || self.w_inits.is_empty() || self.activations.is_empty() {
            return bad("optimizers, w_inits and activations must not be empty".into());
        }
        if self.train_fractions.is_empty()
            || self.train_fractions.iter().any(|&f| !(f > 0.0 && f <= 1.0))
        {
            return bad(format!("train_fractions {:?} must lie in (0, 1]", self.train_fractions));
        }
        Ok(())
    }

    /// The hyperparameters of network `index` of the zoo with seed `seed`: a function of
    /// (`self`, `seed`, `index`) only, so shards and reruns agree.
    pub fn sample(&self, seed: u64, index: usize) -> ZooHyper {
        let mut rng = stream_rng(seed, index, Stream::Hyper);
        let optimizer = choose(&mut rng, &self.optimizers);
        let learning_rate = log_uniform(&mut rng, self.learning_rate);
        let l2reg = log_uniform(&mut rng, self.l2reg);
        let init_std = log_uniform(&mut rng, self.init_std);
        let w_init = choose(&mut rng, &self.w_inits);
        let [d0, d1] = self.dropout;
        let dropout = d0 + rng.gen::<f64>() * (d1 - d0);
        let activation = choose(&mut rng, &self.activations);
        let train_fraction = choose(&mut rng, &self.train_fractions);
        ZooHyper {
            index,
            optimizer,
            learning_rate,
            l2reg,
            init_std,
            w_init,
            dropout,
            activation,
            train_fraction,
        }
    }
}

/// [`HyperSpace::sample`] of the default (paper) space.
pub fn sample_hyper(seed: u64, index: usize) -> ZooHyper {
    HyperSpace::default().sample(seed, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_lie_in_the_space_and_depend_on_seed_and_index_only() {
        let space = HyperSpace::default();
        for i in 0..200 {
            let h = space.sample(7, i);
            assert_eq!(h, sample_hyper(7, i));
            assert!((5e-4..=5e-2).contains(&h.learning_rate));
            assert!((1e-8..=1e-2).contains(&h.l2reg));
            assert!((1e-3..=0.5).contains(&h.init_std));
            assert!((0.0..0.7).contains(&h.dropout));
            assert!(space.train_fractions.contains(&h.train_fraction));
        }
        assert_ne!(sample_hyper(7, 0), sample_hyper(8, 0));
        assert_ne!(sample_hyper(7, 0).learning_rate, sample_hyper(7, 1).learning_rate);
    }

    #[test]
    fn validate_rejects_bad_ranges() {
        assert!(HyperSpace::default().validate().is_ok());
        let bad = HyperSpace { learning_rate: [0.0, 1.0], ..Default::default() };
        assert!(bad.validate().is_err());
        let bad = HyperSpace { train_fractions: vec![1.5], ..Default::default() };
        assert!(bad.validate().is_err());
    }
}
