//! MLP heads: the classifier / regressor that follows an invariant pooling (design.md §3.5).

use serde::{Deserialize, Serialize};
use tch::nn::{self, Init, Module};
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
    /// How the linear layers' weights are drawn (not written when it is the default, so that the
    /// configs of runs made before the option read back the same).
    #[serde(skip_serializing_if = "HeadInit::is_default")]
    pub init: HeadInit,
}

impl Default for MlpHeadConfig {
    fn default() -> Self {
        MlpHeadConfig { hidden: vec![1000, 1000], dropout: 0.0, init: HeadInit::default() }
    }
}

/// How an [`MlpHead`]'s weights are drawn; the biases are `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`
/// either way. The two differ by a factor sqrt(6) in scale: `torch` is what a model rebuilt from
/// the reference's PyTorch code starts from (`cargo xtask bench learn --learn-head-init`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadInit {
    /// LibTorch's `nn::linear` default: Kaiming uniform with gain sqrt(2), bound
    /// `sqrt(6 / fan_in)`. Every reported run of this project uses it.
    #[default]
    Kaiming,
    /// PyTorch's `nn.Linear` default, which the reference's heads use: bound `1 / sqrt(fan_in)`.
    Torch,
}

impl HeadInit {
    fn is_default(&self) -> bool {
        *self == HeadInit::default()
    }

    fn linear_config(self, fan_in: i64) -> nn::LinearConfig {
        match self {
            HeadInit::Kaiming => nn::LinearConfig::default(),
            HeadInit::Torch => {
                let bound = 1.0 / (fan_in as f64).sqrt();
                nn::LinearConfig {
                    ws_init: Init::Uniform { lo: -bound, up: bound },
                    ..Default::default()
                }
            }
        }
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
            .map(|(i, d)| {
                nn::linear(vs / format!("layer{i}"), d[0], d[1], cfg.init.linear_config(d[0]))
            })
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

#[cfg(test)]
mod tests {
    use tch::nn::VarStore;
    use tch::{Device, Kind};

    use super::*;

    /// Each layer's weight spread and bound: `U(-a, a)` has std `a / sqrt(3)`.
    fn weight_stats(init: HeadInit) -> Vec<(f64, f64)> {
        let vs = VarStore::new(Device::Cpu);
        tch::manual_seed(0);
        let cfg = MlpHeadConfig { hidden: vec![256], dropout: 0.0, init };
        let _head = MlpHead::new(&vs.root(), 64, 10, &cfg);
        ["layer0.weight", "layer1.weight"]
            .iter()
            .map(|name| {
                let w = vs.variables()[*name].to_kind(Kind::Double);
                (w.std(true).double_value(&[]), w.abs().max().double_value(&[]))
            })
            .collect()
    }

    #[test]
    fn torch_init_draws_as_pytorch_linear_and_kaiming_sqrt6_wider() {
        for (fan_in, (torch, kaiming)) in [64.0f64, 256.0]
            .iter()
            .zip(weight_stats(HeadInit::Torch).into_iter().zip(weight_stats(HeadInit::Kaiming)))
        {
            let (torch_bound, kaiming_bound) = (1.0 / fan_in.sqrt(), (6.0 / fan_in).sqrt());
            // the max of thousands of uniform draws sits just under the bound; the std within 5%
            assert!(torch.1 <= torch_bound && torch.1 > 0.97 * torch_bound, "{torch:?}");
            assert!((torch.0 * 3f64.sqrt() / torch_bound - 1.0).abs() < 0.05, "{torch:?}");
            assert!(kaiming.1 <= kaiming_bound && kaiming.1 > 0.97 * kaiming_bound, "{kaiming:?}");
            assert!((kaiming.0 * 3f64.sqrt() / kaiming_bound - 1.0).abs() < 0.05, "{kaiming:?}");
        }
    }

    #[test]
    fn init_is_read_from_configs_and_defaults_to_kaiming() {
        let cfg: MlpHeadConfig =
            toml::from_str("hidden = [8]\ninit = \"torch\"").expect("a head config");
        assert_eq!(cfg.init, HeadInit::Torch);
        let cfg: MlpHeadConfig = toml::from_str("hidden = [8]").expect("a head config");
        assert_eq!(cfg.init, HeadInit::Kaiming);
        // the default is not written: a run's stored config from before the option stays equal
        assert!(!toml::to_string(&cfg).expect("serialises").contains("init"));
        let torch = MlpHeadConfig { init: HeadInit::Torch, ..cfg };
        assert!(toml::to_string(&torch).expect("serialises").contains("init = \"torch\""));
        assert!(toml::from_str::<MlpHeadConfig>("init = \"xavier\"").is_err());
    }
}
