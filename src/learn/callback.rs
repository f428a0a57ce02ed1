//! fastai's callback design: the training loop only fires events, and everything else a fit
//! does (the schedule, the recorder, progress, checkpoints, early stopping, the NaN guard,
//! interruption, the loss plot, the LR finder) is a callback that reads and changes the
//! learner between them. Callbacks run in ascending `order` (fastai's `order`); a callback
//! stops part of the loop by returning a [`Cancel`] error, as fastai raises its
//! `Cancel*Exception`s.
use super::learner::Learner;
use anyhow::Result;

/// The events of one fit, in the order the loop fires them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    BeforeFit,
    BeforeEpoch,
    BeforeTrain,
    BeforeBatch,
    AfterPred,
    AfterLoss,
    /// Gradients are computed, not yet clipped or stepped (a data-parallel fit averages
    /// them over its group here).
    AfterBackward,
    AfterStep,
    AfterBatch,
    /// A stepped training batch's loss was read back (`state.loss`): after the next batch,
    /// or at the end of the training phase for its last batch. Reading it one batch late
    /// keeps the next step queued on the device while the host waits for the value.
    AfterLossRead,
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
    /// What this callback must keep across an interruption (see `learn::resume`).
    fn state(&self) -> Option<serde_json::Value> {
        None
    }
    /// Takes back what `state` gave, when a fit resumes from its checkpoint.
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        Ok(())
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
    fn after_backward(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn after_step(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn after_batch(&mut self, l: &mut Learner) -> Result<()> {
        Ok(())
    }
    fn after_loss_read(&mut self, l: &mut Learner) -> Result<()> {
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
        Event::AfterBackward => cb.after_backward(l),
        Event::AfterStep => cb.after_step(l),
        Event::AfterBatch => cb.after_batch(l),
        Event::AfterLossRead => cb.after_loss_read(l),
        Event::AfterTrain => cb.after_train(l),
        Event::BeforeValidate => cb.before_validate(l),
        Event::AfterValidate => cb.after_validate(l),
        Event::AfterEpoch => cb.after_epoch(l),
        Event::AfterFit => cb.after_fit(l),
    }
}
