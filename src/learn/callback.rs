//! fastai's callback design: the training loop only fires events, and everything else a fit
//! does (the schedule, the recorder, progress, checkpoints, early stopping, the NaN guard,
//! interruption, the loss plot, the LR finder) is a callback that reads and changes the
//! learner between them. Callbacks run in ascending `order` (fastai's `order`); a callback
//! stops part of the loop by returning a [`Cancel`] error, as fastai raises its
//! `Cancel*Exception`s.
use super::data::XY;
use super::learner::Learner;
use anyhow::Result;
use std::time::Instant;
use tch::Tensor;

/// The events of one fit, in the order the loop fires them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    BeforeFit,
    BeforeEpoch,
    BeforeTrain,
    BeforeBatch,
    AfterPred,
    AfterLoss,
    AfterStep,
    AfterBatch,
    AfterTrain,
    BeforeValidate,
    AfterValidate,
    AfterEpoch,
    AfterFit,
}

/// A request to skip the rest of one part of the loop (fastai's `CancelBatchException`,
/// `CancelTrainException`, `CancelValidException`, `CancelEpochException`,
/// `CancelFitException`). The part's `after_*` event still fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Cancel {
    #[error("batch cancelled")]
    Batch,
    #[error("training phase cancelled")]
    Train,
    #[error("validation cancelled")]
    Validate,
    #[error("epoch cancelled")]
    Epoch,
    #[error("fit cancelled")]
    Fit,
}

impl Cancel {
    /// The cancel request, if `e` is one.
    pub fn of(e: &anyhow::Error) -> Option<Cancel> {
        e.downcast_ref::<Cancel>().copied()
    }
}

/// One hook per event, each a no-op by default. Every hook gets the learner, whose
/// `state` holds the loop's position, the current batch, its loss and the epoch's values.
#[allow(unused_variables)]
pub trait Callback {
    /// Lower runs first at every event (fastai's `order`).
    fn order(&self) -> i32 {
        0
    }
    fn before_fit(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn before_epoch(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn before_train(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn before_batch(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn after_pred(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn after_loss(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn after_step(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn after_batch(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn after_train(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn before_validate(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn after_validate(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn after_epoch(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn after_fit(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
}

/// Fires `event` on `cb`.
pub fn fire(cb: &mut dyn Callback, event: Event, l: &mut Learner) -> Result<()> {
    match event {
        Event::BeforeFit => cb.before_fit(l),
        Event::BeforeEpoch => cb.before_epoch(l),
        Event::BeforeTrain => cb.before_train(l),
        Event::BeforeBatch => cb.before_batch(l),
        Event::AfterPred => cb.after_pred(l),
        Event::AfterLoss => cb.after_loss(l),
        Event::AfterStep => cb.after_step(l),
        Event::AfterBatch => cb.after_batch(l),
        Event::AfterTrain => cb.after_train(l),
        Event::BeforeValidate => cb.before_validate(l),
        Event::AfterValidate => cb.after_validate(l),
        Event::AfterEpoch => cb.after_epoch(l),
        Event::AfterFit => cb.after_fit(l),
    }
}

/// Where the loop is and what it has computed, for the callbacks to read (and change:
/// a `before_batch` may replace the batch, an `after_loss` the loss).
pub struct FitState {
    /// This fit's number in the learner (1, 2, ...; lr_find takes none).
    pub fit: usize,
    pub n_epoch: usize,
    /// The epoch within this fit (0-based, as fastai prints it).
    pub epoch: usize,
    /// Training batches per epoch.
    pub n_iter: usize,
    /// The batch within the epoch.
    pub iter: usize,
    /// Training batches done in this fit before the current one.
    pub train_iter: usize,
    /// Whether the current batch is a training batch.
    pub training: bool,
    /// Whether the current batch's optimizer step ran (false for a cancelled batch), so
    /// `after_batch` hooks know `loss` is this batch's.
    pub stepped: bool,
    pub batch: Option<XY>,
    pub pred: Option<Tensor>,
    pub loss_t: Option<Tensor>,
    /// The current training batch's loss, read back after the step.
    pub loss: f64,
    /// fastai's smoothed training loss (kept by the recorder).
    pub smooth_loss: f64,
    /// The epoch table's value columns: train_loss, valid_loss, then every metric.
    pub columns: Vec<String>,
    /// Whether smaller is better, per column (losses, error rates).
    pub lower_is_better: Vec<bool>,
    /// This epoch's values of `columns`, filled in after validation.
    pub values: Vec<f64>,
    /// This epoch's validation loss, probabilities and targets.
    pub valid: Option<(f64, Tensor, Tensor)>,
    pub epoch_start: Instant,
}

impl FitState {
    pub fn new(fit: usize, n_epoch: usize, n_iter: usize) -> FitState {
        FitState {
            fit,
            n_epoch,
            epoch: 0,
            n_iter,
            iter: 0,
            train_iter: 0,
            training: false,
            stepped: false,
            batch: None,
            pred: None,
            loss_t: None,
            loss: f64::NAN,
            smooth_loss: f64::NAN,
            columns: vec![],
            lower_is_better: vec![],
            values: vec![],
            valid: None,
            epoch_start: Instant::now(),
        }
    }

    /// Position in the fit's training, 0 at the first batch and 1 after the last.
    pub fn pct_train(&self) -> f64 {
        self.train_iter as f64 / (self.n_epoch * self.n_iter).max(1) as f64
    }
}
