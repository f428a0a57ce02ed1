//! Hyper-parameter schedules as plain functions of the training position (0..1), so
//! they can be checked against fastai's closed forms at any iteration.
use std::f64::consts::PI;

/// Cosine annealing from `start` to `end` at fraction `pos` (fastai `SchedCos`).
pub fn cos(start: f64, end: f64, pos: f64) -> f64 {
    end + (start - end) / 2.0 * (1.0 + (PI * pos).cos())
}

/// Two cosine phases, `start -> middle` over `pct` then `middle -> end` (fastai `combined_cos`).
pub fn combined_cos(pct: f64, start: f64, middle: f64, end: f64, pos: f64) -> f64 {
    if pos < pct {
        cos(start, middle, pos / pct)
    } else {
        cos(middle, end, (pos - pct) / (1.0 - pct))
    }
}

/// Exponential sweep used by `lr_find`: `start * (end/start)^pos`.
pub fn exp(start: f64, end: f64, pos: f64) -> f64 {
    start * (end / start).powf(pos)
}

crate::options! {
    /// fastai's one-cycle policy for one parameter group.
    #[derive(Debug, Clone, Copy)]
    pub struct OneCycle {
        /// The peak learning rate (the fit's argument).
        field lr_max: f64 = 1.0,
        /// the first learning rate is lr_max / div
        opt div: f64 = 25.0,
        /// the last learning rate is lr_max / (div * div_final)
        opt div_final: f64 = 1e5,
        /// the share of the fit spent warming up
        opt pct_start: f64 = 0.25,
        /// momentum at the start, the peak and the end
        opt moms: (f64, f64, f64) = (0.95, 0.85, 0.95),
    }
}

impl OneCycle {
    pub fn new(lr_max: f64) -> OneCycle {
        OneCycle { lr_max, ..OneCycle::default() }
    }

    pub fn lr(&self, pos: f64) -> f64 {
        combined_cos(self.pct_start, self.lr_max / self.div, self.lr_max, self.lr_max / (self.div * self.div_final), pos)
    }

    pub fn mom(&self, pos: f64) -> f64 {
        combined_cos(self.pct_start, self.moms.0, self.moms.1, self.moms.2, pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_matches_closed_forms() {
        let s = OneCycle::new(1e-3);
        // start, peak at pct_start, end
        assert!((s.lr(0.0) - 1e-3 / 25.0).abs() < 1e-15);
        assert!((s.lr(0.25) - 1e-3).abs() < 1e-15);
        assert!((s.lr(1.0) - 1e-3 / 25.0 / 1e5).abs() < 1e-18);
        assert!((s.mom(0.0) - 0.95).abs() < 1e-12 && (s.mom(0.25) - 0.85).abs() < 1e-12);
        // halfway through warm-up: the cosine midpoint
        let mid = 1e-3 + (1e-3 / 25.0 - 1e-3) / 2.0 * (1.0 + (PI * 0.5).cos());
        assert!((s.lr(0.125) - mid).abs() < 1e-15);
        // iteration 30 of 100 in the annealing phase
        let p = (0.30 - 0.25) / 0.75;
        let end = 1e-3 / 25.0 / 1e5;
        let want = end + (1e-3 - end) / 2.0 * (1.0 + (PI * p).cos());
        assert!((s.lr(0.30) - want).abs() < 1e-15, "{} vs {want}", s.lr(0.30));
        assert!((s.mom(0.30) - (0.95 + (0.85 - 0.95) / 2.0 * (1.0 + (PI * p).cos()))).abs() < 1e-12);
        assert!((exp(1e-7, 10.0, 0.5) - (1e-7f64 * 1e8f64.sqrt())).abs() < 1e-12);
    }
}
