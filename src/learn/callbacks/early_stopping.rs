//! fastai's `EarlyStoppingCallback`: ends the fit when a column has not improved for
//! `patience` epochs.
use super::tracker::Watch;
use crate::learn::callback::{Callback, Cancel};
use crate::learn::Learner;
use anyhow::Result;

pub struct EarlyStopping {
    pub watch: Watch,
    pub patience: usize,
    since_best: usize,
}

impl EarlyStopping {
    pub fn new(column: &str, patience: usize) -> EarlyStopping {
        EarlyStopping { watch: Watch::new(column), patience, since_best: 0 }
    }
}

impl Callback for EarlyStopping {
    fn order(&self) -> i32 {
        72
    }
    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "watch": self.watch.state(), "since_best": self.since_best }))
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        self.watch.restore(&v["watch"])?;
        self.since_best = v["since_best"].as_u64().unwrap_or(0) as usize;
        Ok(())
    }
    fn after_epoch(&mut self, l: &mut Learner) -> Result<()> {
        if self.watch.improved(&l.state)? {
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        if self.since_best >= self.patience {
            println!("No improvement in {} for {} epochs: stopping at epoch {}.", self.watch.column, self.patience, l.state.epoch);
            return Err(Cancel::Fit.into());
        }
        Ok(())
    }
}
