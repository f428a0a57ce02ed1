//! The margins a cosine head can train with, between an item's own class and the others:
//! CosFace's in cosine and ArcFace's in angle. The model says which it trains with
//! (`Net::train_margin`) and the loss applies it, so the two need not know each other.
use std::f64::consts::PI;
use tch::Tensor;

/// A margin between an item's own class and the others that training asks of a cosine
/// head (whose logits are `scale * cos`); predictions never see it, so they enjoy it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Margin {
    /// CosFace (Wang et al. 2018): `scale * m` off the own-class logit.
    Cos { scale: f64, m: f64 },
    /// ArcFace (Deng et al. 2019): the own class's angle widened by `m` radians, its logit
    /// `scale * cos(theta + m)`: the same push at every angle, where CosFace's is the same
    /// in cosine.
    Arc { scale: f64, m: f64 },
}

impl Margin {
    /// Logits `[N, C]` with the margin applied to each row's target class `y` `[N]`.
    pub fn apply(&self, logits: &Tensor, y: &Tensor) -> Tensor {
        let y = y.unsqueeze(1);
        match *self {
            Margin::Cos { scale, m } => logits - logits.zeros_like().scatter_value(1, &y, scale * m),
            Margin::Arc { scale, m } => {
                // Clamped inside [-1, 1] so that sin's gradient stays finite.
                let cos = (logits.gather(1, &y, false) / scale).clamp(-1.0 + 1e-6, 1.0 - 1e-6);
                let sin = (cos.square() * -1.0 + 1.0).sqrt();
                let widened = &cos * m.cos() - sin * m.sin();
                // Past theta = pi - m, cos(theta + m) would turn back up (a smaller penalty
                // for a worse angle): there ArcFace goes on linearly in the cosine instead.
                let linear = &cos - (PI - m).sin() * m;
                let target = widened.where_self(&cos.gt((PI - m).cos()), &linear);
                logits.scatter(1, &y, &(target * scale))
            }
        }
    }
}

impl std::fmt::Display for Margin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Margin::Cos { scale, m } => write!(f, "CosFace margin {m} at scale {scale}"),
            Margin::Arc { scale, m } => write!(f, "ArcFace margin {m} rad at scale {scale}"),
        }
    }
}
