//! Binary ROC AUC: the probability that a random positive scores above a random
//! negative (Mann-Whitney U with average ranks for ties), score = P(class 1).
use super::Metric;
use tch::{Kind, Tensor};

pub struct RocAuc;

pub fn roc_auc(scores: &[f64], positive: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = avg;
        }
        i = j + 1;
    }
    let n_pos = positive.iter().filter(|p| **p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    let rank_sum: f64 = ranks.iter().zip(positive).filter(|(_, p)| **p).map(|(r, _)| r).sum();
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

impl Metric for RocAuc {
    fn name(&self) -> String {
        "roc_auc".into()
    }
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> f64 {
        let scores: Vec<f64> = Vec::try_from(probs.select(1, 1).to_kind(Kind::Double).to_device(tch::Device::Cpu)).unwrap_or_default();
        let pos: Vec<bool> = Vec::<i64>::try_from(targets.to_device(tch::Device::Cpu)).unwrap_or_default().iter().map(|t| *t == 1).collect();
        roc_auc(&scores, &pos)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn auc_counts_ordered_pairs_and_ties() {
        assert_eq!(super::roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), 0.75);
        assert_eq!(super::roc_auc(&[0.5, 0.5], &[false, true]), 0.5);
        assert_eq!(super::roc_auc(&[0.9, 0.1], &[true, false]), 1.0);
    }
}
