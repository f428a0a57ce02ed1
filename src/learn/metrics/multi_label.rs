//! Multi-label metrics over label probabilities `[N, C]` (the sigmoid of the logits, as
//! fastai's `sigmoid=True` applies it) and multi-hot targets: a label is predicted where
//! its probability exceeds `thresh`. fastai's `accuracy_multi` and `F1ScoreMulti`
//! (macro average: the mean of each label's F1).
use super::Metric;
use crate::data::targets::TargetKind;
use tch::{Kind, Tensor};

/// The share of (item, label) decisions that are right.
pub struct AccuracyMulti {
    pub thresh: f64,
}

/// Each label's F1 over the items, averaged over the labels; a label never present nor
/// predicted scores 0 (sklearn's `zero_division` default).
pub struct F1Multi {
    pub thresh: f64,
}

impl Metric for AccuracyMulti {
    fn name(&self) -> String {
        "accuracy_multi".into()
    }
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> f64 {
        if targets.numel() == 0 {
            return f64::NAN;
        }
        probs.gt(self.thresh).eq_tensor(&targets.gt(0.5)).to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
    }
    fn targets(&self) -> TargetKind {
        TargetKind::MultiHot
    }
}

impl Metric for F1Multi {
    fn name(&self) -> String {
        "f1_multi".into()
    }
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> f64 {
        if targets.numel() == 0 {
            return f64::NAN;
        }
        let (pred, truth) = (probs.gt(self.thresh).to_kind(Kind::Double), targets.gt(0.5).to_kind(Kind::Double));
        let per_label = |t: Tensor| t.sum_dim_intlist(0, false, Kind::Double);
        let tp = per_label(&pred * &truth);
        let (n_pred, n_true) = (per_label(pred), per_label(truth));
        // F1 = 2 tp / (predicted + present); 0 where a label is neither.
        let denom = &n_pred + &n_true;
        let f1 = (tp * 2.0 / denom.clamp_min(1.0)).where_self(&denom.gt(0.0), &denom.zeros_like());
        f1.mean(Kind::Double).double_value(&[])
    }
    fn targets(&self) -> TargetKind {
        TargetKind::MultiHot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_and_macro_f1_as_fastai_and_sklearn_compute_them() {
        let probs = Tensor::from_slice(&[0.9f32, 0.2, 0.6, 0.4, 0.7, 0.1, 0.8, 0.3, 0.2]).view([3, 3]);
        let hot = Tensor::from_slice(&[1f32, 0., 1., 0., 1., 0., 1., 1., 0.]).view([3, 3]);
        // Decisions at 0.5: [1,0,1],[0,1,0],[1,0,0]: 8 of 9 right.
        assert!((AccuracyMulti { thresh: 0.5 }.compute(&probs, &hot) - 8.0 / 9.0).abs() < 1e-9);
        // At 0.75: [1,0,0],[0,0,0],[1,0,0]: 6 of 9 right.
        assert!((AccuracyMulti { thresh: 0.75 }.compute(&probs, &hot) - 6.0 / 9.0).abs() < 1e-9);
        // sklearn f1_score(hot, probs > 0.5, average="macro") = (1 + 2/3 + 1) / 3
        assert!((F1Multi { thresh: 0.5 }.compute(&probs, &hot) - (1.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-9);
        let none = Tensor::zeros([3, 3], (Kind::Float, tch::Device::Cpu));
        assert_eq!(F1Multi { thresh: 0.5 }.compute(&none, &none), 0.0, "labels neither present nor predicted score 0");
    }
}
