//! fastai's `TrackerCallback` core: the best value so far of one epoch-table column, better
//! meaning lower or higher as the column's metric says.
use crate::learn::state::FitState;
use crate::track::Goal;
use anyhow::{bail, Result};

pub struct Watch {
    pub column: String,
    pub best: Option<f64>,
}

impl Watch {
    pub fn new(column: &str) -> Watch {
        Watch { column: column.to_string(), best: None }
    }

    /// The best value so far, for a resume checkpoint.
    pub fn state(&self) -> serde_json::Value {
        serde_json::json!({ "best": self.best.map(crate::track::metrics::json_f64) })
    }

    pub fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        self.best = v.get("best").and_then(crate::track::metrics::f64_of_json);
        Ok(())
    }

    /// Whether this epoch's value beats the best so far (lower for losses and error rates).
    pub fn improved(&mut self, s: &FitState) -> Result<bool> {
        let Some(i) = s.columns.iter().position(|c| *c == self.column) else {
            bail!("cannot monitor `{}`: the columns are {}", self.column, s.columns.join(", "));
        };
        let Some(&v) = s.values.get(i) else { return Ok(false) };
        let better = match self.best {
            None => true,
            // A column nothing ranks (a closure metric without a goal) counts as higher-is-better, as fastai's default.
            Some(b) => s.goals[i].unwrap_or(Goal::Max).better(v, b),
        };
        if better {
            self.best = Some(v);
        }
        Ok(better)
    }
}
