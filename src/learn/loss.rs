//! Losses matched to what a model outputs, and the conversion of outputs into class
//! probabilities `[N, C]` so that metrics and predictions treat every head alike.
use crate::model::Output;
use anyhow::{bail, Result};
use tch::{Kind, Reduction, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    CrossEntropy,
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

    /// The loss a model's output calls for, when the script names none.
    pub fn default_for(output: Output) -> Loss {
        match output {
            Output::Logits => Loss::CrossEntropy,
            Output::Logit => Loss::BinaryCrossEntropy,
            Output::Distance => Loss::Contrastive { margin: 1.0 },
        }
    }

    pub fn check(&self, output: Output) -> Result<()> {
        let ok = matches!(
            (self, output),
            (Loss::CrossEntropy, Output::Logits) | (Loss::BinaryCrossEntropy, Output::Logit) | (Loss::Contrastive { .. }, Output::Distance)
        );
        if !ok {
            bail!("loss `{self}` does not fit a model that outputs {output} (logits: cross_entropy, logit: bce, distance: contrastive)");
        }
        Ok(())
    }

    /// Mean loss of a batch.
    pub fn compute(&self, out: &Tensor, y: &Tensor) -> Tensor {
        match self {
            Loss::CrossEntropy => out.cross_entropy_for_logits(y),
            Loss::BinaryCrossEntropy => out.binary_cross_entropy_with_logits::<Tensor>(&y.to_kind(Kind::Float), None, None, Reduction::Mean),
            Loss::Contrastive { margin } => {
                let y = y.to_kind(Kind::Float);
                let same: Tensor = &y * out.square();
                let diff: Tensor = (1.0 - &y) * (*margin - out).clamp_min(0.0).square();
                ((same + diff) * 0.5).mean(Kind::Float)
            }
        }
    }

    /// Class probabilities `[N, C]`; for pair heads C = 2 (column 1 = same).
    pub fn probs(&self, out: &Tensor) -> Tensor {
        let p_same = match self {
            Loss::CrossEntropy => return out.softmax(-1, Kind::Float),
            Loss::BinaryCrossEntropy => out.sigmoid(),
            // Below half the margin counts as "same".
            Loss::Contrastive { margin } => ((*margin / 2.0 - out) * (10.0 / margin)).sigmoid(),
        };
        Tensor::stack(&[1.0 - &p_same, p_same], 1)
    }
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
