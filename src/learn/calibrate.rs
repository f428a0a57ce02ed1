//! Fitting the decision threshold of a two-class (pair) model on its training pairs.
//! A pair head outputs a score (a logit, or a distance for the contrastive loss);
//! `accuracy` and every other metric call a pair "same" when p(same) = sigmoid(logit of
//! same) is above the threshold, 0.5 by default (for a distance head: d < margin / 2).
//! A head trained on one set of people or characters and used on others is often best
//! cut elsewhere: `calibrate` finds the cut that classifies the most training pairs right.
use super::learner::Learner;
use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

/// What `calibrate` found: the new threshold and the training accuracy before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// p(same) above which a pair is called same.
    pub threshold: f64,
    /// Training-pair accuracy at the threshold used before.
    pub accuracy_before: f64,
    /// Training-pair accuracy at the fitted threshold.
    pub accuracy: f64,
    /// Training pairs used.
    pub n: usize,
    /// For a distance head (contrastive loss): the distance below which a pair is same.
    pub distance: Option<f64>,
}

/// The cut on "same" logits that classifies the most items right (same above the cut):
/// midway between neighbouring distinct scores, one unit outside them at the ends; of
/// equally good cuts the one nearest 0 (p = 0.5), so that a tie keeps the default.
/// Returns the cut and the number of items it gets right.
pub fn best_cut(logits: &[f64], same: &[bool]) -> (f64, usize) {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
    let s: Vec<f64> = idx.iter().map(|&i| logits[i]).collect();
    let n_same = same.iter().filter(|x| **x).count();
    // Cut before sorted position k: items below are called different, the rest same.
    let (mut best, mut best_right) = (0.0f64, usize::MAX);
    let (mut diff_below, mut same_below) = (0, 0);
    for k in 0..=s.len() {
        if k > 0 {
            if same[idx[k - 1]] {
                same_below += 1;
            } else {
                diff_below += 1;
            }
        }
        if k > 0 && k < s.len() && s[k - 1] == s[k] {
            continue;
        }
        let cut = match k {
            0 => s.first().map_or(0.0, |x| x - 1.0),
            k if k == s.len() => s[k - 1] + 1.0,
            k => (s[k - 1] + s[k]) / 2.0,
        };
        let right = diff_below + (n_same - same_below);
        if best_right == usize::MAX || right > best_right || (right == best_right && cut.abs() < best.abs()) {
            (best, best_right) = (cut, right);
        }
    }
    (best, best_right)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Learner {
    /// Fits the threshold on the training pairs (epoch 0's batches, model in eval mode)
    /// and sets it, so that `validate`, the metrics of later fits, `predict` and the
    /// interpretation use it.
    pub fn calibrate(&mut self) -> Result<Calibration> {
        if !self.is_two_class() {
            bail!("calibrate needs a two-class model (pairs: same/different); this one has {} classes", self.data.vocab().len());
        }
        let (mut logits, mut targets) = (Vec::new(), Vec::new());
        tch::no_grad(|| -> Result<()> {
            for b in self.data.train(0)? {
                let b = b?;
                logits.extend(self.loss.same_logit(&self.forward(&b.xs, false)?));
                targets.push(super::data::as_targets(&b.y, self.targets));
            }
            Ok(())
        })?;
        if targets.is_empty() {
            bail!("calibrate: there are no training batches");
        }
        let logits = Vec::<f64>::try_from(Tensor::cat(&logits, 0).to_kind(Kind::Double).to_device(Device::Cpu))?;
        let same: Vec<bool> = Vec::<i64>::try_from(Tensor::cat(&targets, 0).to_device(Device::Cpu))?.into_iter().map(|t| t == 1).collect();
        let n = same.len();
        let bias = {
            let t = self.threshold();
            (t / (1.0 - t)).ln()
        };
        let right_before = logits.iter().zip(&same).filter(|(l, s)| (**l > bias) == **s).count();
        // Beyond +-30 p(same) is 1 or 0 in float32: the cut would mean nothing.
        let (cut, right) = best_cut(&logits, &same);
        let cut = cut.clamp(-30.0, 30.0);
        let threshold = sigmoid(cut);
        self.set_threshold(threshold)?;
        // The inverse of `Loss::same_logit` for distances.
        let distance = match self.loss {
            super::Loss::Contrastive { margin } => Some(margin / 2.0 - cut * margin / 10.0),
            _ => None,
        };
        Ok(Calibration { threshold, accuracy_before: right_before as f64 / n as f64, accuracy: right as f64 / n as f64, n, distance })
    }
}

#[cfg(test)]
mod tests {
    use super::best_cut;

    #[test]
    fn the_cut_separates_what_it_can_and_prefers_zero() {
        // separable, but not at 0
        let (cut, right) = best_cut(&[-3.0, -2.5, -2.0, -1.0, -0.5], &[false, false, true, true, true]);
        assert_eq!((cut, right), (-2.25, 5));
        // already right at 0: stays nearest 0
        let (cut, right) = best_cut(&[-1.0, 1.0], &[false, true]);
        assert_eq!((cut, right), (0.0, 2));
        // ties between equal scores are never split
        let (_, right) = best_cut(&[0.5, 0.5, 0.5], &[true, false, true]);
        assert_eq!(right, 2);
        // all same: the cut goes below every score
        assert_eq!(best_cut(&[2.0, 3.0], &[true, true]), (1.0, 2));
    }
}
