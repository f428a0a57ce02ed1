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

/// How `calibrate` places the cut between the pairs' scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The cut that classifies the most items right (`best_cut`).
    Best,
    /// The equal-error-rate cut (`eer_cut`).
    Eer,
}

impl Cut {
    pub const NAMES: &'static str = "\"best\" (the most pairs right) or \"eer\" (equal error rates)";

    pub fn parse(name: &str) -> Result<Cut> {
        match name {
            "best" => Ok(Cut::Best),
            "eer" => Ok(Cut::Eer),
            other => bail!("unknown cut `{other}`: use {}", Cut::NAMES),
        }
    }
}

/// Every cut worth trying on sorted scores: midway between neighbouring distinct scores,
/// one unit outside them at the ends; each with the number of same and of different
/// items below it (called different).
fn candidate_cuts(logits: &[f64], same: &[bool]) -> Vec<(f64, usize, usize)> {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
    let s: Vec<f64> = idx.iter().map(|&i| logits[i]).collect();
    let (mut out, mut same_below, mut diff_below) = (Vec::new(), 0, 0);
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
        out.push((cut, same_below, diff_below));
    }
    out
}

/// The candidate cut with the lowest `cost`; of equal ones the one nearest 0 (p = 0.5),
/// so that a tie keeps the default.
fn cheapest_cut(cuts: &[(f64, usize, usize)], cost: impl Fn(usize, usize) -> f64) -> (f64, f64) {
    let mut best = (0.0f64, f64::INFINITY);
    for &(cut, same_below, diff_below) in cuts {
        let c = cost(same_below, diff_below);
        if c < best.1 || (c == best.1 && cut.abs() < best.0.abs()) {
            best = (cut, c);
        }
    }
    best
}

/// The cut on "same" logits that classifies the most items right (same above the cut).
/// Returns the cut and the number of items it gets right.
pub fn best_cut(logits: &[f64], same: &[bool]) -> (f64, usize) {
    let n_same = same.iter().filter(|x| **x).count();
    let (cut, wrong) =
        cheapest_cut(&candidate_cuts(logits, same), |same_below, diff_below| (same_below + (logits.len() - n_same - diff_below)) as f64);
    (cut, logits.len() - wrong as usize)
}

/// The equal-error-rate cut: where the share of different items above it (false accepts)
/// comes nearest the share of same items below it (false rejects). It weighs the two
/// kinds of error alike whatever the mix of items, and it sits where the two score
/// distributions cross rather than on a few lucky items, so it moves less than the best
/// cut does when the people it is fitted on are few.
pub fn eer_cut(logits: &[f64], same: &[bool]) -> f64 {
    let n_same = same.iter().filter(|x| **x).count().max(1) as f64;
    let n_diff = (logits.len() as f64 - n_same).max(1.0);
    let cuts = candidate_cuts(logits, same);
    cheapest_cut(&cuts, |same_below, diff_below| {
        let false_accepts = (n_diff - diff_below as f64) / n_diff;
        (false_accepts - same_below as f64 / n_same).abs()
    })
    .0
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Learner {
    /// Fits the threshold on the training pairs (epoch 0's batches, model in eval mode)
    /// by the rule `cut` and sets it, so that `validate`, the metrics of later fits,
    /// `predict` and the interpretation use it.
    pub fn calibrate(&mut self, rule: Cut) -> Result<Calibration> {
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
        let cut = match rule {
            Cut::Best => best_cut(&logits, &same).0,
            Cut::Eer => eer_cut(&logits, &same),
        }
        .clamp(-30.0, 30.0);
        let right = logits.iter().zip(&same).filter(|(l, s)| (**l > cut) == **s).count();
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
    use super::{best_cut, eer_cut, Cut};

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

    #[test]
    fn the_eer_cut_balances_the_two_error_rates() {
        // 2 different pairs, 6 same (sorted: d -2.0, s 0.5, d 1.0, s 1.2, ...). Cuts at
        // -0.75 and 1.1 both get 7 right; the best cut keeps the one nearer 0, accepting
        // half the different pairs (false accepts 1/2, false rejects 0). Equal error
        // rates take 1.1 (0 and 1/6), the nearest the two rates come.
        let logits = [-2.0, 1.0, 0.5, 1.2, 2.0, 2.5, 3.0, 3.5];
        let same = [false, false, true, true, true, true, true, true];
        assert_eq!(best_cut(&logits, &same), (-0.75, 7));
        assert_eq!(eer_cut(&logits, &same), 1.1);
        // separable: both rates 0 at the cut nearest 0 that separates
        assert_eq!(eer_cut(&[-1.0, 1.0], &[false, true]), 0.0);
        assert_eq!(Cut::parse("eer").unwrap(), Cut::Eer);
        assert_eq!(
            Cut::parse("median").unwrap_err().to_string(),
            "unknown cut `median`: use \"best\" (the most pairs right) or \"eer\" (equal error rates)"
        );
    }
}
