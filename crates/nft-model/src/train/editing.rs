//! The INR-editing task (NFT paper, INR editing; design.md §6.2): an editor maps a SIREN's weights
//! `θ` to `θ + Δθ`; the edited SIREN is rendered on the pixel grid and compared with the edited
//! image. Loss and metric are the MSE over pixels and channels; the best checkpoint is the one with
//! the lowest validation MSE.

use nfn_layers::WsModuleT;
use nfn_weightspace::{render_siren, WeightSpaceFeatures};
use tch::Tensor;

use super::metrics::Metric;
use super::task::{Batch, EvalOutput, Task};

/// Editing of SIRENs by `model`, rendered at `image_size`.
#[derive(Debug, Clone, Copy)]
pub struct Editing<'a> {
    /// The editor (returns the edited weights `θ + Δθ`).
    pub model: &'a dyn WsModuleT,
    /// Rendered height and width.
    pub image_size: [i64; 2],
}

impl Editing<'_> {
    /// The edited SIRENs rendered on the grid.
    ///
    /// # Shapes
    /// raw SIRENs of a batch `b` with `c` outputs → `[b, c, h, w]`
    ///
    /// # Panics
    /// If the inputs are not raw SIRENs (the experiment checks the INR set's spec when it loads).
    pub fn render(&self, sirens: &WeightSpaceFeatures, train: bool) -> Tensor {
        let edited = self.model.forward_t(sirens, train);
        let [h, w] = self.image_size;
        render_siren(&edited, h, w).expect("editors keep the SIREN spec")
    }
}

impl Task for Editing<'_> {
    type Input = WeightSpaceFeatures;

    /// # Shapes
    /// `batch.targets` `[b, c, h, w]`, the edited images in `[-1, 1]`.
    fn loss(&self, batch: &Batch, train: bool) -> Tensor {
        self.render(&batch.inputs, train).mse_loss(&batch.targets, tch::Reduction::Mean)
    }

    fn eval_batch(&self, batch: &Batch) -> EvalOutput {
        let outputs = self.render(&batch.inputs, false);
        let loss = outputs.mse_loss(&batch.targets, tch::Reduction::Mean).double_value(&[]);
        EvalOutput { loss, outputs, targets: batch.targets.shallow_clone() }
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![Metric::Mse]
    }

    fn selection(&self) -> Metric {
        Metric::Mse
    }
}
