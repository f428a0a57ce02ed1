//! Regression metrics over every output against its target (fastai's `rmse`, `mae` and
//! `R2Score`, all computed on the flattened predictions as fastai's AccumMetric does).
use super::Metric;
use crate::data::targets::TargetKind;
use crate::track::Goal;
use tch::{Kind, Tensor};

#[derive(Clone, Copy)]
pub enum Regression {
    Rmse,
    Mae,
    R2,
}

pub struct RegressionMetric(pub Regression);

fn scalar(t: Tensor) -> f64 {
    t.double_value(&[])
}

impl Metric for RegressionMetric {
    fn name(&self) -> String {
        match self.0 {
            Regression::Rmse => "rmse",
            Regression::Mae => "mae",
            Regression::R2 => "r2",
        }
        .into()
    }
    fn compute(&self, preds: &Tensor, targets: &Tensor) -> f64 {
        if targets.numel() == 0 {
            return f64::NAN;
        }
        let (p, t) = (preds.flatten(0, -1).to_kind(Kind::Double), targets.flatten(0, -1).to_kind(Kind::Double));
        let err = &p - &t;
        match self.0 {
            Regression::Rmse => scalar(err.square().mean(Kind::Double)).sqrt(),
            Regression::Mae => scalar(err.abs().mean(Kind::Double)),
            // 1 - SS_res / SS_tot (sklearn's r2_score; constant targets give NaN, not a ranking).
            Regression::R2 => {
                let ss_tot = scalar((&t - t.mean(Kind::Double)).square().sum(Kind::Double));
                if ss_tot == 0.0 {
                    return f64::NAN;
                }
                1.0 - scalar(err.square().sum(Kind::Double)) / ss_tot
            }
        }
    }
    fn goal(&self) -> Goal {
        match self.0 {
            Regression::Rmse | Regression::Mae => Goal::Min,
            Regression::R2 => Goal::Max,
        }
    }
    fn targets(&self) -> TargetKind {
        TargetKind::Floats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmse_mae_r2_as_sklearn_computes_them() {
        // sklearn's example: sqrt(mean_squared_error) = 0.6123724, mean_absolute_error = 0.5, r2_score = 0.9486081
        let p = Tensor::from_slice(&[2.5f32, 0.0, 2.0, 8.0]).view([4, 1]);
        let t = Tensor::from_slice(&[3.0f32, -0.5, 2.0, 7.0]).view([4, 1]);
        let m = |r| RegressionMetric(r).compute(&p, &t);
        assert!((m(Regression::Rmse) - 0.375f64.sqrt()).abs() < 1e-9);
        assert!((m(Regression::Mae) - 0.5).abs() < 1e-9);
        assert!((m(Regression::R2) - 0.9486081370449679).abs() < 1e-9);
        assert_eq!(RegressionMetric(Regression::Rmse).goal(), Goal::Min);
        assert_eq!(RegressionMetric(Regression::R2).goal(), Goal::Max);
    }
}
