//! fastai's `ParamScheduler`: sets every group's learning rate and the momentum before each
//! training batch from a schedule of the training position (0 at the first batch, 1 at
//! the end), so one-cycle, constant and any other schedule share one mechanism.
use crate::learn::callback::Callback;
use crate::learn::Learner;
use anyhow::Result;

/// Per-group learning rates and the momentum at a training position in [0, 1).
pub type Schedule<'a> = &'a dyn Fn(f64) -> (Vec<f64>, f64);

pub struct ParamScheduler<'a> {
    pub sched: Schedule<'a>,
}

impl Callback for ParamScheduler<'_> {
    fn order(&self) -> i32 {
        -10
    }
    fn before_batch(&mut self, l: &mut Learner) -> Result<()> {
        if l.state.training {
            let (lrs, mom) = (self.sched)(l.state.pct_train());
            l.opt.lrs = lrs;
            l.opt.mom = mom;
        }
        Ok(())
    }
}
