//! fastai's `LRFinder`: a fit whose learning rate rises exponentially from `start_lr` to
//! `end_lr` over `num_it` batches, without validation, stopped once the smoothed loss
//! passes 4x its best; the weights, optimizer state and data position are snapshotted
//! before and restored after, so `lr_find` leaves the learner as it found it.
use crate::learn::callback::{Callback, Cancel};
use crate::learn::schedule;
use crate::learn::Learner;
use anyhow::Result;
use tch::Tensor;

crate::options! {
    /// The sweep `lr_find` runs.
    #[derive(Debug, Clone)]
    pub struct LrFindOptions {
        /// the first learning rate
        opt start_lr: f64 = 1e-7,
        /// the last learning rate
        opt end_lr: f64 = 10.0,
        /// batches in the sweep
        opt num_it: usize = 100,
        /// stop once the smoothed loss passes 4x its best
        opt stop_div: bool = true,
    }
}

/// What the learner was before the sweep.
struct Snapshot {
    weights: Vec<(String, Tensor)>,
    opt_state: Vec<(String, Tensor)>,
    mom: f64,
    epochs_done: usize,
}

pub struct LrFinder {
    pub opts: LrFindOptions,
    /// The learning rate and smoothed loss of every batch of the sweep.
    pub lrs: Vec<f64>,
    pub losses: Vec<f64>,
    best: f64,
    stopped: bool,
    snapshot: Option<Snapshot>,
}

impl LrFinder {
    pub fn new(opts: LrFindOptions) -> LrFinder {
        LrFinder { opts, lrs: vec![], losses: vec![], best: f64::INFINITY, stopped: false, snapshot: None }
    }

    /// Puts back what `before_fit` saw; the caller runs it whatever the fit's outcome.
    pub fn restore(&mut self, l: &mut Learner) -> Result<()> {
        let Some(s) = self.snapshot.take() else { return Ok(()) };
        tch::no_grad(|| {
            let vars = l.model.vs.variables();
            for (k, w) in &s.weights {
                vars[k].shallow_clone().copy_(w);
            }
        });
        l.opt.load_state(s.opt_state)?;
        l.opt.mom = s.mom;
        l.epochs_done = s.epochs_done;
        Ok(())
    }
}

impl Callback for LrFinder {
    fn order(&self) -> i32 {
        55
    }
    fn before_fit(&mut self, l: &mut Learner) -> Result<()> {
        let weights = l.model.vs.variables().into_iter().map(|(k, v)| (k, v.copy())).collect();
        self.snapshot = Some(Snapshot { weights, opt_state: l.opt.snapshot(), mom: l.opt.mom, epochs_done: l.epochs_done });
        Ok(())
    }
    fn before_batch(&mut self, l: &mut Learner) -> Result<()> {
        let lr = schedule::exp(self.opts.start_lr, self.opts.end_lr, l.state.train_iter as f64 / self.opts.num_it as f64);
        l.opt.lrs = vec![lr; l.n_groups()];
        l.opt.mom = 0.9;
        Ok(())
    }
    fn after_loss_read(&mut self, l: &mut Learner) -> Result<()> {
        // The batch stepped while the stopping one's loss was read comes too late to count.
        let Some(b) = l.state.loss.filter(|_| !self.stopped) else { return Ok(()) };
        let s = l.state.smooth_loss;
        self.lrs.push(b.lr);
        self.losses.push(s);
        self.best = self.best.min(s);
        let diverged = self.opts.stop_div && (s > 4.0 * self.best || !s.is_finite());
        if diverged || self.lrs.len() >= self.opts.num_it {
            self.stopped = true;
            return Err(Cancel::Fit.into());
        }
        Ok(())
    }
    fn before_validate(&mut self, _: &mut Learner) -> Result<()> {
        Err(Cancel::Validate.into())
    }
}
