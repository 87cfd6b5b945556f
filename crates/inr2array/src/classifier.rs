//! The latent-array classifier (TransformerClassifier, design.md §5.5).
//!
//! `x = Linear(D, d)(z) + PosEmb[0..M)`, then pre-LN transformer encoder layers (GELU, no final
//! LayerNorm), logits `= MLP(x[:, 0])` from the first latent token (no CLS token, design.md §8.21).

use nft_model::Forward;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init, Module};
use tch::Tensor;

use crate::decoder::torch_linear;
use crate::error::{Error, Result};

/// Configuration of [`TransformerClassifier`]; the default is the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    /// Width `D` of the input latents.
    pub latent_dim: i64,
    /// Transformer width.
    pub d_model: i64,
    /// Number of encoder layers.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: i64,
    /// Feed-forward width.
    pub ff_dim: i64,
    /// Dropout (attention probabilities and both residual branches, and inside the feed-forward).
    pub dropout: f64,
    /// Rows of the learned positional table (the most latents supported).
    pub max_tokens: i64,
    /// Hidden width of the output MLP.
    pub head_hidden: i64,
    /// Number of classes.
    pub num_classes: i64,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            latent_dim: 256,  // Inr2Array latent width
            d_model: 512,     // Linear(256, 512)
            num_layers: 12,   // 12 encoder layers
            num_heads: 4,     // 4 heads
            ff_dim: 2048,     // ff 2048
            dropout: 0.1,     // dropout 0.1
            max_tokens: 64,   // 64-row table (up to 8 x 8 latents)
            head_hidden: 512, // Linear(512, 512) -> ReLU -> Linear(512, 10)
            num_classes: 10,
        }
    }
}

impl ClassifierConfig {
    /// A CPU-sized classifier for 64-wide latents: width 128, 2 layers, ff 256.
    pub fn small() -> Self {
        ClassifierConfig {
            latent_dim: 64,
            d_model: 128,
            num_layers: 2,
            ff_dim: 256,
            head_hidden: 128,
            ..Default::default()
        }
    }

    /// Check positive sizes, `d_model % num_heads == 0` and `0 <= dropout < 1`.
    ///
    /// # Errors
    /// [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            self.latent_dim,
            self.d_model,
            self.num_heads,
            self.ff_dim,
            self.max_tokens,
            self.head_hidden,
            self.num_classes,
        ];
        if sizes.iter().any(|&s| s < 1)
            || self.d_model % self.num_heads != 0
            || !(0.0..1.0).contains(&self.dropout)
        {
            return Err(Error::Config(format!("invalid classifier config {self:?}")));
        }
        Ok(())
    }
}

/// One pre-LN transformer encoder layer (PyTorch `TransformerEncoderLayer(norm_first=True)`, GELU).
///
/// Parameters: `ln_attn`, `in_proj` (`d -> 3d`, q then k then v), `out_proj`, `ln_ff`, `ff_in`, `ff_out`.
#[derive(Debug)]
struct EncoderLayer {
    ln_attn: nn::LayerNorm,
    in_proj: nn::Linear,
    out_proj: nn::Linear,
    ln_ff: nn::LayerNorm,
    ff_in: nn::Linear,
    ff_out: nn::Linear,
    num_heads: i64,
    dropout: f64,
}

impl EncoderLayer {
    fn new(vs: &nn::Path, cfg: &ClassifierConfig) -> Self {
        let d = cfg.d_model;
        let ln = |name: &str| nn::layer_norm(vs / name, vec![d], Default::default());
        let xavier = (6.0 / (d + 3 * d) as f64).sqrt();
        EncoderLayer {
            ln_attn: ln("ln_attn"),
            in_proj: nn::linear(
                vs / "in_proj",
                d,
                3 * d,
                nn::LinearConfig {
                    ws_init: Init::Uniform { lo: -xavier, up: xavier },
                    bs_init: Some(Init::Const(0.0)),
                    bias: true,
                },
            ),
            out_proj: nn::linear(
                vs / "out_proj",
                d,
                d,
                nn::LinearConfig {
                    ws_init: Init::Uniform {
                        lo: -(d as f64).recip().sqrt(),
                        up: (d as f64).recip().sqrt(),
                    },
                    bs_init: Some(Init::Const(0.0)),
                    bias: true,
                },
            ),
            ln_ff: ln("ln_ff"),
            ff_in: torch_linear(vs / "ff_in", d, cfg.ff_dim),
            ff_out: torch_linear(vs / "ff_out", cfg.ff_dim, d),
            num_heads: cfg.num_heads,
            dropout: cfg.dropout,
        }
    }

    /// # Shapes
    /// `[b, M, d]` → `[b, M, d]`
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let (b, m, d) = xs.size3().expect("[b, M, d] tokens");
        let (h, p) = (self.num_heads, if train { self.dropout } else { 0.0 });
        let qkv = self.in_proj.forward(&self.ln_attn.forward(xs)); // [b, M, 3d]
        let qkv = qkv.view([b, m, 3, h, d / h]).permute([2, 0, 3, 1, 4]); // [3, b, H, M, dh]
        let attn = Tensor::scaled_dot_product_attention::<Tensor>(
            &qkv.get(0),
            &qkv.get(1),
            &qkv.get(2),
            None,
            p,
            false,
            None,
            false,
        ); // [b, H, M, dh]
        let attn = attn.permute([0, 2, 1, 3]).reshape([b, m, d]);
        let xs = xs + self.out_proj.forward(&attn).dropout(p, train);
        let ff = self.ff_in.forward(&self.ln_ff.forward(&xs)).gelu("none").dropout(p, train);
        &xs + self.ff_out.forward(&ff).dropout(p, train)
    }
}

/// The latent classifier (design.md §5.5).
///
/// Parameters: `embed`, `pos_emb` `[max_tokens, d]` (init `N(0, 1)`), `layers/<i>`, `head/{fc1,fc2}`.
#[derive(Debug)]
pub struct TransformerClassifier {
    cfg: ClassifierConfig,
    embed: nn::Linear,
    pos_emb: Tensor,
    layers: Vec<EncoderLayer>,
    head_fc1: nn::Linear,
    head_fc2: nn::Linear,
}

impl TransformerClassifier {
    /// Build the classifier.
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid.
    pub fn new(vs: &nn::Path, cfg: &ClassifierConfig) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.d_model;
        let layers_vs = vs / "layers";
        Ok(TransformerClassifier {
            cfg: cfg.clone(),
            embed: torch_linear(vs / "embed", cfg.latent_dim, d),
            pos_emb: vs.var("pos_emb", &[cfg.max_tokens, d], Init::Randn { mean: 0.0, stdev: 1.0 }),
            layers: (0..cfg.num_layers)
                .map(|i| EncoderLayer::new(&(&layers_vs / i), cfg))
                .collect(),
            head_fc1: torch_linear(vs / "head" / "fc1", d, cfg.head_hidden),
            head_fc2: torch_linear(vs / "head" / "fc2", cfg.head_hidden, cfg.num_classes),
        })
    }

    /// The config.
    pub fn config(&self) -> &ClassifierConfig {
        &self.cfg
    }

    /// Class logits.
    ///
    /// # Shapes
    /// `[b, M, D]` (or `[b, D]`, read as `M = 1`) → `[b, num_classes]`
    pub fn forward_t(&self, zs: &Tensor, train: bool) -> Tensor {
        let zs = if zs.dim() == 2 { zs.unsqueeze(1) } else { zs.shallow_clone() };
        let m = zs.size()[1];
        debug_assert!(m <= self.cfg.max_tokens);
        let xs = self.embed.forward(&zs) + self.pos_emb.narrow(0, 0, m); // [b, M, d]
        let xs = self.layers.iter().fold(xs, |xs, layer| layer.forward_t(&xs, train));
        let first = xs.select(1, 0); // [b, d]
        self.head_fc2.forward(&self.head_fc1.forward(&first).relu()) // [b, classes]
    }
}

impl Forward for TransformerClassifier {
    type Input = Tensor;

    fn apply_t(&self, zs: &Tensor, train: bool) -> Tensor {
        self.forward_t(zs, train)
    }
}
