//! The one trait every model kind implements (burn's one module per model): what its
//! output means, how many image batches it takes and which batches it refuses, its forward
//! pass and its summary rows. `Model` holds one behind a `Box` and asks only this, so a
//! new kind is a new file with its struct, this trait and a `Model` constructor.
use super::layers::Seq;
use anyhow::{bail, Result};
use std::any::Any;
use tch::nn::ModuleT;
use tch::Tensor;

/// What the model's output means, which decides the matching loss and metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Output {
    /// `[N, C]` class logits (cross-entropy).
    Logits,
    /// `[N]` logit of "same" (binary cross-entropy).
    Logit,
    /// `[N]` distance, small = same (contrastive).
    Distance,
}

/// What a script reads in messages: `[N, C] logits`, not `Logits`.
impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Output::Logits => "[N, C] class logits",
            Output::Logit => "[N] logit of same",
            Output::Distance => "[N] distances",
        })
    }
}

/// One row of `summary`: layer name, type, output shape.
pub type SummaryRow = (String, String, Vec<i64>);

/// A kind of model over a body: classifier, Siamese model, prototypical network.
pub trait Net: Any {
    /// Its name in messages and summaries (`Classifier`, `SiameseModel`, ...).
    fn kind(&self) -> &'static str;

    /// What its output means (the learner picks the loss from it).
    fn output(&self) -> Output;

    /// Image batches one forward pass takes: one, or two for a pair.
    fn n_inputs(&self) -> usize {
        1
    }

    /// Refuses batches the kind cannot read (right count already checked), before the body
    /// meets them.
    fn check_batch(&self, _xs: &[Tensor]) -> Result<()> {
        Ok(())
    }

    /// The forward pass over batches `check_batch` accepted.
    fn forward(&self, xs: &[Tensor], train: bool) -> Tensor;

    /// The body (encoder) the kind runs each image through.
    fn body(&self) -> &Seq;

    /// The body alone: a feature map or an embedding.
    fn features(&self, x: &Tensor, train: bool) -> Tensor {
        self.body().forward_t(x, train)
    }

    /// `summary`'s rows for one eval-mode batch `x` (the body's children, then the head's).
    fn summary_rows(&self, x: &Tensor, rows: &mut Vec<SummaryRow>) -> Result<()>;

    /// `(n_way, k_shot)` of the episodes it reads each batch as; None when a batch is items.
    fn episode_shape(&self) -> Option<(usize, usize)> {
        None
    }

    /// A margin that training applies to each item's target-class logit (CosFace's,
    /// ArcFace's); None when it trains on its plain output.
    fn train_margin(&self) -> Option<super::Margin> {
        None
    }
}

/// `net`'s forward pass after its input checks, with libtorch's shape errors (which reach
/// us as panics through tch) turned into errors.
pub fn checked_forward(net: &dyn Net, xs: &[Tensor], train: bool) -> Result<Tensor> {
    if xs.len() != net.n_inputs() {
        bail!("{} takes {} image batch(es), got {}", net.kind(), net.n_inputs(), xs.len());
    }
    net.check_batch(xs)?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| net.forward(xs, train))).map_err(|e| {
        let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
        anyhow::anyhow!(
            "{} forward failed for inputs {:?}: {}",
            net.kind(),
            xs.iter().map(|x| x.size()).collect::<Vec<_>>(),
            crate::torch_errors::short_message(&msg)
        )
    })
}
