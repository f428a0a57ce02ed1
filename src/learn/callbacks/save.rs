//! fastai's `SaveModelCallback`: `models/best` whenever a column improves, reloaded when
//! the fit ends. (`models/last` and the resume checkpoints are the loop's, see `learn::resume`.)
use super::tracker::Watch;
use crate::learn::callback::Callback;
use crate::learn::Learner;
use anyhow::Result;

pub struct SaveBest(pub Watch);

impl Callback for SaveBest {
    fn order(&self) -> i32 {
        71
    }
    fn after_epoch(&mut self, l: &mut Learner) -> Result<()> {
        if self.0.improved(&l.state)? {
            l.save("best")?;
        }
        Ok(())
    }
    fn state(&self) -> Option<serde_json::Value> {
        Some(self.0.state())
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        self.0.restore(v)
    }
    fn after_fit(&mut self, l: &mut Learner) -> Result<()> {
        if self.0.best.is_some() {
            l.load("best")?;
        }
        Ok(())
    }
}
