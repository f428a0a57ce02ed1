//! lr_find's suggestion rules, as plain functions of the recorded curve (fastai's
//! `valley`, `minimum`, `steep`); the first tenth and last 5 points are ignored.

/// The slice of the curve the rules look at.
pub fn trim(lrs: &[f64], losses: &[f64], num_it: usize) -> (Vec<f64>, Vec<f64>) {
    let start = num_it / 10;
    let end = lrs.len().saturating_sub(5);
    if start >= end {
        return (lrs.to_vec(), losses.to_vec());
    }
    (lrs[start..end].to_vec(), losses[start..end].to_vec())
}

/// About halfway along the longest decreasing run of losses (fastai's default).
pub fn valley(lrs: &[f64], losses: &[f64]) -> Option<(f64, usize)> {
    let n = losses.len();
    if n == 0 {
        return None;
    }
    let (mut max_start, mut max_end) = (0usize, 0usize);
    let mut lds = vec![1usize; n];
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
                max_start = max_end - lds[max_end];
            }
        }
    }
    let sections = (max_end - max_start) as f64 / 3.0;
    let idx = max_start + sections as usize + (sections / 2.0) as usize;
    Some((lrs[idx], idx))
}

/// The lr at the lowest loss, divided by 10.
pub fn minimum(lrs: &[f64], losses: &[f64]) -> Option<(f64, usize)> {
    let idx = (0..losses.len()).min_by(|&a, &b| losses[a].total_cmp(&losses[b]))?;
    Some((lrs[idx] / 10.0, idx))
}

/// The lr where the loss falls fastest (per unit of log lr).
pub fn steep(lrs: &[f64], losses: &[f64]) -> Option<(f64, usize)> {
    let idx = (0..losses.len().saturating_sub(1))
        .map(|i| (i, (losses[i + 1] - losses[i]) / (lrs[i + 1].ln() - lrs[i].ln())))
        .min_by(|a, b| a.1.total_cmp(&b.1))?
        .0;
    Some((lrs[idx], idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valley_on_a_known_curve() {
        // flat, a long descent over points 3..=12, then a blow-up
        let losses = [2.0, 2.1, 2.05, 2.0, 1.9, 1.8, 1.3, 1.2, 1.1, 1.0, 0.9, 0.85, 0.8, 1.5, 3.0];
        let lrs: Vec<f64> = (0..losses.len()).map(|i| 1e-5 * 10f64.powf(i as f64 / 3.0)).collect();
        // the longest decreasing run is 2.1 -> ... -> 0.8 (indices 1..=12, 12 points), so
        // lds[12] = 12, start = 12 - 12 = 0, sections = 4, idx = 0 + 4 + 2 = 6
        let (lr, idx) = valley(&lrs, &losses).unwrap();
        assert_eq!(idx, 6);
        assert_eq!(lr, lrs[6]);
        assert_eq!(minimum(&lrs, &losses).unwrap(), (lrs[12] / 10.0, 12));
        assert_eq!(steep(&lrs, &losses).unwrap().1, 5);
    }
}
