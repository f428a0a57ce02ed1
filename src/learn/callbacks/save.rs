//! Checkpoints: `models/last` after every epoch (what an interrupted or crashed run
//! resumes from) and fastai's `SaveModelCallback` (`models/best` whenever a column
//! improves, reloaded when the fit ends).
use super::tracker::Watch;
use crate::learn::callback::Callback;
use crate::learn::Learner;
use anyhow::Result;

pub struct SaveLast;

impl Callback for SaveLast {
    fn order(&self) -> i32 {
        70
    }
    fn after_epoch(&mut self, l: &mut Learner) -> Result<()> {
        if l.out.metrics.is_some() {
            l.save("last")?;
        }
        Ok(())
    }
}

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
    fn after_fit(&mut self, l: &mut Learner) -> Result<()> {
        if self.0.best.is_some() {
            l.load("best")?;
        }
        Ok(())
    }
}
