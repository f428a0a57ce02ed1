//! Precision, recall and F1 of the positive class (index 1: "same" for pairs).
use super::Metric;
use tch::{Kind, Tensor};

#[derive(Clone, Copy)]
pub enum Score {
    Precision,
    Recall,
    F1,
}

pub struct BinaryScore(pub Score);

impl Metric for BinaryScore {
    fn name(&self) -> String {
        match self.0 {
            Score::Precision => "precision",
            Score::Recall => "recall",
            Score::F1 => "f1",
        }
        .into()
    }
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> f64 {
        let pred = probs.argmax(-1, false).eq(1);
        let truth = targets.eq(1);
        let count = |t: Tensor| t.to_kind(Kind::Double).sum(Kind::Double).double_value(&[]);
        let tp = count(pred.logical_and(&truth));
        let fp = count(pred.logical_and(&truth.logical_not()));
        let fn_ = count(pred.logical_not().logical_and(&truth));
        let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        let (p, r) = (ratio(tp, tp + fp), ratio(tp, tp + fn_));
        match self.0 {
            Score::Precision => p,
            Score::Recall => r,
            Score::F1 => ratio(2.0 * p * r, p + r),
        }
    }
}
