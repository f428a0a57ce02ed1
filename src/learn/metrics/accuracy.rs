//! Accuracy and error rate: how often the most probable class is the target.
use super::Metric;
use crate::track::Goal;
use tch::{Kind, Tensor};

pub struct Accuracy;
pub struct ErrorRate;

fn accuracy(probs: &Tensor, targets: &Tensor) -> f64 {
    if targets.numel() == 0 {
        return f64::NAN;
    }
    probs.argmax(-1, false).eq_tensor(targets).to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
}

impl Metric for Accuracy {
    fn name(&self) -> String {
        "accuracy".into()
    }
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> f64 {
        accuracy(probs, targets)
    }
}

impl Metric for ErrorRate {
    fn name(&self) -> String {
        "error_rate".into()
    }
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> f64 {
        1.0 - accuracy(probs, targets)
    }
    fn goal(&self) -> Goal {
        Goal::Min
    }
}
