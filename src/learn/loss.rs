//! Losses matched to what a model outputs, and the conversion of outputs into class
//! probabilities `[N, C]` so that metrics and predictions treat every head alike.
use crate::model::{Model, Output};
use anyhow::{bail, Result};
use tch::{Kind, Reduction, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    CrossEntropy,
    /// CosFace (Wang et al. 2018): cross-entropy after `margin` (in logits, a cosine
    /// head's `scale * m`) is taken off each item's target-class logit, so that training
    /// asks for a margin between classes that predictions (no margin) then enjoy.
    MarginCrossEntropy {
        margin: f64,
    },
    BinaryCrossEntropy,
    /// Hadsell et al.: same pairs pulled together, different pairs pushed past `margin`.
    Contrastive {
        margin: f64,
    },
}

/// The name a script gives the loss, for messages.
impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loss::CrossEntropy => f.write_str("cross_entropy"),
            Loss::MarginCrossEntropy { margin } => write!(f, "cross_entropy (target-class margin {margin})"),
            Loss::BinaryCrossEntropy => f.write_str("bce"),
            Loss::Contrastive { margin } => write!(f, "contrastive (margin {margin})"),
        }
    }
}

impl Loss {
    pub fn parse(name: &str, margin: f64) -> Result<Loss> {
        Ok(match name {
            "cross_entropy" | "ce" => Loss::CrossEntropy,
            "bce" | "binary_cross_entropy" => Loss::BinaryCrossEntropy,
            "contrastive" => Loss::Contrastive { margin },
            other => bail!("unknown loss `{other}`: use cross_entropy, bce or contrastive"),
        })
    }

    /// The loss a learner uses when the script names none, as fastai's Learner infers it
    /// from the model: what its output calls for, with CosFace's margin when the model
    /// trains with one (a cosine classifier's `scale * m`).
    pub fn default_for(model: &Model) -> Loss {
        match (model.output(), model.train_margin()) {
            (Output::Logits, Some(margin)) => Loss::MarginCrossEntropy { margin },
            (Output::Logits, None) => Loss::CrossEntropy,
            (Output::Logit, _) => Loss::BinaryCrossEntropy,
            (Output::Distance, _) => Loss::Contrastive { margin: 1.0 },
        }
    }

    pub fn check(&self, output: Output) -> Result<()> {
        let ok = matches!(
            (self, output),
            (Loss::CrossEntropy | Loss::MarginCrossEntropy { .. }, Output::Logits)
                | (Loss::BinaryCrossEntropy, Output::Logit)
                | (Loss::Contrastive { .. }, Output::Distance)
        );
        if !ok {
            bail!("loss `{self}` does not fit a model that outputs {output} (logits: cross_entropy, logit: bce, distance: contrastive)");
        }
        Ok(())
    }

    /// Mean loss of a batch (libtorch's fused reductions where it has them).
    pub fn compute(&self, out: &Tensor, y: &Tensor) -> Tensor {
        match self {
            Loss::CrossEntropy => out.cross_entropy_for_logits(y),
            Loss::MarginCrossEntropy { margin } => with_target_margin(out, y, *margin).cross_entropy_for_logits(y),
            Loss::BinaryCrossEntropy => out.binary_cross_entropy_with_logits::<Tensor>(&y.to_kind(Kind::Float), None, None, Reduction::Mean),
            Loss::Contrastive { .. } => self.per_item(out, y).mean(Kind::Float),
        }
    }

    /// Each item's loss `[N]` (fastai's `reduction='none'`), for top losses.
    pub fn per_item(&self, out: &Tensor, y: &Tensor) -> Tensor {
        match self {
            Loss::CrossEntropy => out.cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0),
            Loss::MarginCrossEntropy { margin } => {
                with_target_margin(out, y, *margin).cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0)
            }
            Loss::BinaryCrossEntropy => out.binary_cross_entropy_with_logits::<Tensor>(&y.to_kind(Kind::Float), None, None, Reduction::None),
            Loss::Contrastive { margin } => {
                let y = y.to_kind(Kind::Float);
                let same: Tensor = &y * out.square();
                let diff: Tensor = (1.0 - &y) * (*margin - out).clamp_min(0.0).square();
                (same + diff) * 0.5
            }
        }
    }

    /// The logit of "same" (class 1) of a two-class output `[N]`: the logit of a pair head,
    /// `l1 - l0` of two class logits, and `(margin/2 - d) * 10/margin` of a distance, so
    /// that a distance below half the margin counts as "same".
    pub fn same_logit(&self, out: &Tensor) -> Tensor {
        match self {
            Loss::CrossEntropy | Loss::MarginCrossEntropy { .. } => out.select(1, 1) - out.select(1, 0),
            Loss::BinaryCrossEntropy => out.shallow_clone(),
            Loss::Contrastive { margin } => (*margin / 2.0 - out) * (10.0 / margin),
        }
    }

    /// Class probabilities `[N, C]`; for pair heads C = 2 (column 1 = same). `bias` is
    /// subtracted from the logit of "same" (two-class outputs only): the decision
    /// `argmax` makes then flips where the unbiased p(same) is `sigmoid(bias)`.
    pub fn probs(&self, out: &Tensor, bias: f64) -> Tensor {
        let p_same = match self {
            Loss::CrossEntropy | Loss::MarginCrossEntropy { .. } if bias == 0.0 => return out.softmax(-1, Kind::Float),
            Loss::CrossEntropy | Loss::MarginCrossEntropy { .. } => {
                return (out - Tensor::from_slice(&[0.0, bias as f32]).to_device(out.device())).softmax(-1, Kind::Float)
            }
            _ => (self.same_logit(out) - bias).sigmoid(),
        };
        Tensor::stack(&[1.0 - &p_same, p_same], 1)
    }
}

/// Logits `[N, C]` with `margin` subtracted from each row's target class `y` `[N]`.
fn with_target_margin(out: &Tensor, y: &Tensor, margin: f64) -> Tensor {
    out - out.zeros_like().scatter_value(1, &y.unsqueeze(1), margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_names_the_loss_and_output_as_scripts_write_them() {
        let e = Loss::Contrastive { margin: 1.0 }.check(Output::Logits).unwrap_err().to_string();
        assert!(e.contains("`contrastive (margin 1)`") && e.contains("[N, C] class logits"), "{e}");
        let e = Loss::BinaryCrossEntropy.check(Output::Distance).unwrap_err().to_string();
        assert!(e.contains("`bce`") && !e.contains("BinaryCrossEntropy") && !e.contains("Distance"), "{e}");
    }
}
