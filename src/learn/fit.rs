//! The one training loop. It only fires events (fastai's `_do_fit`, `_do_epoch`,
//! `_do_one_batch`) and lets callbacks do the rest; `fit`, `fit_one_cycle`, `fine_tune`
//! and `lr_find` are this loop with different callbacks.
use super::callback::{fire, Callback, Cancel, Event};
use super::callbacks::{DataParallel, EarlyStopping, Interrupt, LossPlot, ParamScheduler, ProgressCb, Recorder, SaveBest, TerminateOnNan};
use super::data::XY;
use super::learner::{Learner, Lrs};
use super::resume;
use super::schedule::OneCycle;
use super::state::{BatchLoss, FitState};
use anyhow::{bail, Context, Result};
use std::time::Instant;
use tch::Tensor;

pub use super::callbacks::recorder::SmoothLoss;
pub use super::metrics::ExtraMetrics;

/// The callbacks a caller adds to a fit (script closures, metric closures, its own).
pub type Cbs<'a, 'b> = &'a mut [&'b mut dyn Callback];

crate::options! {
    /// When a fit stops early: `monitor` has not improved for `patience` epochs.
    #[derive(Debug, Clone, PartialEq)]
    pub struct EarlyStop {
        /// the epoch-table column to watch
        opt monitor: String = "valid_loss".into(),
        /// epochs without improvement before stopping
        opt patience: usize = 1,
    }
}

crate::options! {
    /// Options of one fit.
    #[derive(Debug, Clone)]
    pub struct FitOptions {
        /// weight decay for this fit and after
        opt wd: Option<f64> = None => "the learner's",
        /// clip the gradient norm to this
        opt grad_clip: Option<f64> = None,
        /// #{ monitor, patience }: stop when the column stops improving
        opt early_stopping: Option<EarlyStop> = None,
        /// save models/best when this column improves; reload it at the end
        opt save_best: Option<String> = None,
        /// NHWC memory order for inputs and conv weights
        opt channels_last: bool = false,
        /// bf16 mixed precision for this fit
        opt bf16: bool = false,
    }
}

impl Learner {
    /// `fit_one_cycle(n_epoch, lr_max)`: fastai's one-cycle schedule, per batch.
    pub fn fit_one_cycle(&mut self, epochs: usize, lrs: &Lrs, cycle: OneCycle, opts: &FitOptions, cbs: Cbs) -> Result<()> {
        let maxes = lrs.for_groups(self.n_groups())?;
        let cycles: Vec<OneCycle> = maxes.iter().map(|&m| OneCycle { lr_max: m, ..cycle }).collect();
        self.fit_with(epochs, &|pos| (cycles.iter().map(|c| c.lr(pos)).collect(), cycles[0].mom(pos)), opts, cbs)
    }

    /// `fit(n_epoch, lr)`: constant learning rates, momentum 0.9.
    pub fn fit(&mut self, epochs: usize, lrs: &Lrs, opts: &FitOptions, cbs: Cbs) -> Result<()> {
        let v = lrs.for_groups(self.n_groups())?;
        self.fit_with(epochs, &|_| (v.clone(), 0.9), opts, cbs)
    }

    /// fastai's `fine_tune`: one frozen one-cycle epoch (pct_start 0.99), then unfrozen
    /// one-cycle epochs at `slice(base_lr/2/lr_mult, base_lr/2)`.
    pub fn fine_tune(&mut self, epochs: usize, base_lr: f64, freeze_epochs: usize, opts: &FitOptions, cbs: Cbs) -> Result<()> {
        super::learner::check_lr(base_lr, "learning rate")?;
        self.freeze();
        let frozen = OneCycle { pct_start: 0.99, ..OneCycle::new(base_lr) };
        self.fit_one_cycle(freeze_epochs, &Lrs::SliceHi(base_lr), frozen, opts, cbs)?;
        let base_lr = base_lr / 2.0;
        self.unfreeze();
        let cycle = OneCycle { pct_start: 0.3, div: 5.0, ..OneCycle::new(base_lr) };
        self.fit_one_cycle(epochs, &Lrs::Slice(base_lr / 100.0, base_lr), cycle, opts, cbs)
    }

    /// One training step on one batch, with no callbacks; returns the batch loss.
    pub fn train_step(&mut self, xs: &[Tensor], y: &Tensor, grad_clip: Option<f64>) -> Result<f64> {
        self.state.batch = Some(XY { xs: xs.iter().map(Tensor::shallow_clone).collect(), y: y.shallow_clone() });
        self.one_batch(&mut [], grad_clip)?;
        let (_, loss) = self.state.unread.take().context("the step left no loss")?;
        Ok(loss.double_value(&[]))
    }

    /// A fit with the standard callbacks (schedule `sched(pos)` of the training position in
    /// [0, 1), recorder, progress, checkpoints, the NaN guard, interruption, loss plot) plus
    /// the caller's.
    pub fn fit_with(&mut self, epochs: usize, sched: &dyn Fn(f64) -> (Vec<f64>, f64), opts: &FitOptions, cbs: Cbs) -> Result<()> {
        if let Some(wd) = opts.wd {
            self.opt.wd = wd;
        }
        self.fits += 1;
        let (mut scheduler, mut recorder, mut progress) = (ParamScheduler { sched }, Recorder::new(true), ProgressCb::epochs());
        let (mut interrupt, mut nan, mut plot) = (Interrupt { save: true }, TerminateOnNan, LossPlot::default());
        let mut best = opts.save_best.as_deref().map(|c| SaveBest(super::callbacks::tracker::Watch::new(c)));
        let mut early = opts.early_stopping.as_ref().map(|e| EarlyStopping::new(&e.monitor, e.patience));
        let mut parallel = self.group().cloned().map(DataParallel::new);
        let mut all: Vec<&mut dyn Callback> = vec![&mut scheduler, &mut recorder, &mut progress, &mut interrupt, &mut nan, &mut plot];
        if let Some(p) = parallel.as_mut() {
            all.push(p);
        }
        if let Some(b) = best.as_mut() {
            all.push(b);
        }
        if let Some(e) = early.as_mut() {
            all.push(e);
        }
        all.extend(cbs.iter_mut().map(|c| &mut **c as &mut dyn Callback));
        let saved = self.bf16;
        self.bf16 |= opts.bf16;
        let result = self.run_fit(self.fits, epochs, opts, &mut all);
        self.bf16 = saved;
        result
    }

    /// The loop: `n_epoch` epochs of training then validation, firing every event on `cbs`
    /// in their `order`. A `Cancel` error skips the rest of its part of the loop. Inside a
    /// run, a fit (`fit` > 0; lr_find passes 0) checkpoints after every epoch and at its
    /// end, and a resumed run restores those checkpoints instead of training again.
    pub fn run_fit(&mut self, fit: usize, n_epoch: usize, opts: &FitOptions, cbs: Cbs) -> Result<()> {
        let opts = &FitOptions { channels_last: opts.channels_last || self.channels_last, ..opts.clone() };
        if opts.channels_last {
            self.model.to_channels_last();
        }
        let n_iter = self.loop_data().train_len();
        if n_iter == 0 && self.loop_data().valid_len() == 0 {
            bail!("this learner has no data to train on (a learner from load_learner only predicts: build loaders and a learner to train)");
        }
        if n_iter == 0 {
            bail!("no training batches: the training set is smaller than one batch (drop_last)");
        }
        cbs.sort_by_key(|c| c.order());
        let seq = self.out.next_fit();
        self.state = FitState::new(fit, n_epoch, n_iter);
        self.state.seq = seq;
        self.state.channels_last = opts.channels_last;
        let checkpoints = fit > 0 && self.out.metrics.is_some();
        let restored = if checkpoints { resume::read(&self.out.dir, seq)? } else { None };
        if let Some(c) = restored.as_ref().filter(|c| c.done) {
            self.restore_checkpoint(c, cbs)?;
            resume::reseed(self.seed, seq, n_epoch);
            return Ok(());
        }
        // Whether the weights changed since the last checkpoint (an early stop, a reload of `best`).
        let mut unsaved = false;
        self.with_events(cbs, Event::BeforeFit, Event::AfterFit, Cancel::Fit, |l, cbs| {
            let start = match &restored {
                Some(c) => {
                    l.restore_checkpoint(c, cbs)?;
                    c.epochs
                }
                None => 0,
            };
            for epoch in start..n_epoch {
                resume::reseed(l.seed, seq, epoch);
                unsaved = true;
                l.state.epoch = epoch;
                l.state.epoch_start = Instant::now();
                l.state.values.clear();
                l.state.valid = None;
                l.with_events(cbs, Event::BeforeEpoch, Event::AfterEpoch, Cancel::Epoch, |l, cbs| l.one_epoch(cbs, opts))?;
                if checkpoints {
                    l.write_checkpoint(seq, epoch + 1, false, true, cbs)?;
                    unsaved = false;
                }
            }
            Ok(())
        })?;
        if checkpoints {
            let epochs = if n_epoch == 0 { 0 } else { self.state.epoch + 1 };
            self.write_checkpoint(seq, epochs, true, unsaved || opts.save_best.is_some(), cbs)?;
        }
        resume::reseed(self.seed, seq, n_epoch);
        Ok(())
    }

    fn one_epoch(&mut self, cbs: Cbs, opts: &FitOptions) -> Result<()> {
        self.with_events(cbs, Event::BeforeTrain, Event::AfterTrain, Cancel::Train, |l, cbs| {
            let done = l.all_batches(cbs, opts);
            if done.as_ref().is_err_and(|e| Cancel::of(e).is_none()) {
                return done;
            }
            // The last stepped batch's loss, also when a callback cut the phase short.
            let read = l.read_loss(cbs);
            done.and(read)
        })?;
        self.state.training = false;
        self.state.stepped = false;
        self.epochs_done += 1;
        self.with_events(cbs, Event::BeforeValidate, Event::AfterValidate, Cancel::Validate, |l, _| {
            l.state.valid = Some(l.validate()?);
            Ok(())
        })
    }

    fn all_batches(&mut self, cbs: Cbs, opts: &FitOptions) -> Result<()> {
        let data = self.loop_data();
        let start = Instant::now();
        (self.state.data_wait, self.state.train_time) = Default::default();
        let mut batches = data.train(self.epochs_done)?.enumerate();
        loop {
            let waiting = Instant::now();
            let Some((i, batch)) = batches.next() else { break };
            self.state.data_wait += waiting.elapsed();
            self.state.iter = i;
            self.state.training = true;
            let batch = batch?;
            let y = super::data::as_targets(&batch.y, self.targets);
            let xs = if opts.channels_last { batch.xs.iter().map(crate::model::channels_last).collect() } else { batch.xs };
            self.state.batch = Some(XY { xs, y });
            self.state.stepped = false;
            self.with_events(cbs, Event::BeforeBatch, Event::AfterBatch, Cancel::Batch, |l, cbs| l.one_batch(cbs, opts.grad_clip))?;
            self.state.train_iter += 1;
            self.state.train_time = start.elapsed();
        }
        Ok(())
    }

    /// Forward, loss, backward, step; `after_pred`, `after_loss`, `after_backward` and
    /// `after_step` between.
    fn one_batch(&mut self, cbs: Cbs, grad_clip: Option<f64>) -> Result<()> {
        let batch = self.state.batch.as_ref().context("no batch to train on")?;
        let pred = self.forward(&batch.xs, true)?;
        if self.state.train_iter == 0 {
            self.check_output(&pred)?;
        }
        self.state.pred = Some(pred);
        self.fire(cbs, Event::AfterPred)?;
        let (pred, batch) = (self.state.pred.as_ref().context("no prediction")?, self.state.batch.as_ref().context("no batch")?);
        self.state.loss_t = Some(self.loss.compute(pred, &batch.y)?);
        self.fire(cbs, Event::AfterLoss)?;
        let loss = self.state.loss_t.as_ref().context("no loss")?.shallow_clone();
        self.opt.zero_grad();
        loss.f_backward().map_err(|e| match self.group().filter(|_| self.sync_bn) {
            Some(g) => g.explain("backward (synchronised BatchNorm)", e.to_string()),
            None => anyhow::anyhow!("backward failed: {e}"),
        })?;
        self.fire(cbs, Event::AfterBackward)?;
        // The loss to record: a data-parallel fit's is the group's mean.
        let loss = self.state.loss_t.as_ref().context("no loss")?.detach();
        if let Some(max) = grad_clip {
            let grads: Vec<Tensor> = self.opt.groups.iter().flatten().map(|p| p.tensor.grad()).filter(|g| g.defined()).collect();
            crate::torch_ext::clip_grad_norm(&grads.iter().collect::<Vec<_>>(), max)?;
        }
        self.opt.step()?;
        self.state.stepped = true;
        // This step is queued: reading the previous one's loss now leaves the device busy.
        self.read_loss(cbs)?;
        let s = &self.state;
        let at = BatchLoss { epoch: s.epoch, iter: s.iter, lr: *self.opt.lrs.last().unwrap_or(&0.0), mom: self.opt.mom, loss: f64::NAN };
        self.state.unread = Some((at, loss));
        self.fire(cbs, Event::AfterStep)
    }

    /// Reads back the unread batch loss, if any, and fires `after_loss_read` with it.
    fn read_loss(&mut self, cbs: Cbs) -> Result<()> {
        let Some((at, loss)) = self.state.unread.take() else { return Ok(()) };
        self.state.loss = Some(BatchLoss { loss: loss.double_value(&[]), ..at });
        self.fire(cbs, Event::AfterLossRead)
    }

    /// Fires `event` on every callback, in order.
    fn fire(&mut self, cbs: Cbs, event: Event) -> Result<()> {
        for cb in cbs.iter_mut() {
            fire(&mut **cb, event, self)?;
        }
        Ok(())
    }

    /// fastai's `_with_events`: `before`, the body, then `after`, also when the body was
    /// cancelled with `cancel`; other errors pass through.
    fn with_events(
        &mut self,
        cbs: Cbs,
        before: Event,
        after: Event,
        cancel: Cancel,
        body: impl FnOnce(&mut Learner, Cbs) -> Result<()>,
    ) -> Result<()> {
        let r = match self.fire(cbs, before) {
            Ok(()) => body(self, cbs),
            Err(e) => Err(e),
        };
        match r {
            Err(e) if Cancel::of(&e) != Some(cancel) => return Err(e),
            _ => {}
        }
        self.fire(cbs, after)
    }
}
