//! The fit's loss curves (smoothed training loss per batch, validation loss per epoch) as
//! `loss_fitN.png` in the run folder.
use crate::learn::callback::Callback;
use crate::learn::Learner;
use crate::plot::{line_chart, Series};
use crate::track::metrics::{f64_of_json, json_f64};
use anyhow::Result;

#[derive(Default)]
pub struct LossPlot {
    train: Vec<(f64, f64)>,
    valid: Vec<(f64, f64)>,
}

impl Callback for LossPlot {
    fn order(&self) -> i32 {
        90
    }
    fn state(&self) -> Option<serde_json::Value> {
        let points = |v: &[(f64, f64)]| v.iter().map(|&(x, y)| serde_json::json!([json_f64(x), json_f64(y)])).collect::<Vec<_>>();
        Some(serde_json::json!({ "train": points(&self.train), "valid": points(&self.valid) }))
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let points = |key: &str| -> Option<Vec<(f64, f64)>> {
            v.get(key)?.as_array()?.iter().map(|p| Some((f64_of_json(p.get(0)?)?, f64_of_json(p.get(1)?)?))).collect()
        };
        // A checkpoint of an older runner wrote NaN as null: its curve is drawn from the resumed epochs only.
        (self.train, self.valid) = (points("train").unwrap_or_default(), points("valid").unwrap_or_default());
        Ok(())
    }
    fn after_loss_read(&mut self, l: &mut Learner) -> Result<()> {
        if let Some(b) = l.state.loss {
            self.train.push(((b.epoch * l.state.n_iter + b.iter) as f64, l.state.smooth_loss));
        }
        Ok(())
    }
    fn after_validate(&mut self, l: &mut Learner) -> Result<()> {
        if let Some((loss, _, _)) = &l.state.valid {
            self.valid.push((((l.state.epoch + 1) * l.state.n_iter) as f64 - 1.0, *loss));
        }
        Ok(())
    }
    fn after_fit(&mut self, l: &mut Learner) -> Result<()> {
        if l.out.metrics.is_none() {
            return Ok(());
        }
        let fit = l.state.fit;
        let series = vec![
            Series { name: "train (smoothed)".into(), points: std::mem::take(&mut self.train) },
            Series { name: "valid".into(), points: std::mem::take(&mut self.valid) },
        ];
        line_chart(&l.out.dir.join(format!("loss_fit{fit}.png")), &format!("losses, fit {fit}"), "batch", "loss", series, vec![], false)
    }
}
