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

/// How many leading points of an lr_find curve to plot, as fastai does: the sweep ends at
/// the first loss above 4x the best so far (or not finite; fastai's `stop_div`), and the last
/// 5 points of what remains are dropped (`skip_end=5`), so that the blow-up does not squash
/// the useful part of the curve into a flat line. Curves too short to trim are kept whole.
pub fn plot_end(losses: &[f64]) -> usize {
    let mut best = f64::INFINITY;
    let mut n = losses.len();
    for (i, &l) in losses.iter().enumerate() {
        best = best.min(l);
        if !l.is_finite() || l > 4.0 * best {
            n = i + 1;
            break;
        }
    }
    if n > 5 + 2 {
        n - 5
    } else {
        n
    }
}

/// About halfway along the longest decreasing run of losses (fastai's default).
pub fn valley(lrs: &[f64], losses: &[f64]) -> Option<(f64, usize)> {
    let n = losses.len();
    if n == 0 {
        return None;
    }
    let mut max_end = 0usize;
    let mut lds = vec![1usize; n];
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
            }
        }
    }
    // As fastai computes it, `max_start` is one before the run's first point (-1 when the
    // run starts the curve); the index is kept on the curve.
    let max_start = max_end as isize - lds[max_end] as isize;
    let sections = (max_end as isize - max_start) as f64 / 3.0;
    let idx = (max_start + sections as isize + (sections / 2.0) as isize).clamp(0, n as isize - 1) as usize;
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

    #[test]
    fn valley_of_a_short_falling_curve_stays_on_the_curve() {
        // a run that starts the curve: fastai's max_start is -1, the index -1 + 1 + 0 (for 3
        // points) or -1 (for 2, where Python would wrap to the last point): kept on the curve
        let lrs = [1e-4, 1e-3, 1e-2];
        assert_eq!(valley(&lrs, &[3.0, 2.0, 1.0]), Some((1e-4, 0)));
        assert_eq!(valley(&lrs[..2], &[3.0, 2.0]), Some((1e-4, 0)));
        assert_eq!(valley(&lrs[..1], &[3.0]), Some((1e-4, 0)));
    }

    #[test]
    fn plot_end_cuts_the_blow_up() {
        // 20 points falling, then a divergence at index 20 (> 4x the best), then noise
        let mut losses: Vec<f64> = (0..20).map(|i| 2.0 - 0.05 * i as f64).collect();
        losses.extend([5.0, 50.0, f64::NAN]);
        // the sweep as fastai records it ends at the diverged point (21 points), minus 5
        assert_eq!(plot_end(&losses), 16);
        assert!(losses[..plot_end(&losses)].iter().all(|l| *l < 2.1));
        // a sweep that never diverged still drops its last 5 points
        assert_eq!(plot_end(&[1.0; 30]), 25);
        // too short to trim: kept whole
        assert_eq!(plot_end(&[1.0, 0.9, 0.8]), 3);
        assert_eq!(plot_end(&[]), 0);
    }
}
