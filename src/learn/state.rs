//! What a fit's callbacks see of the loop: its position, the current batch and its loss,
//! and the epoch's values. It lives on the learner (fastai's `learn.epoch`, `learn.loss`).
use super::data::XY;
use crate::track::Goal;
use std::time::{Duration, Instant};
use tch::Tensor;

/// Where the loop is and what it has computed, for the callbacks to read (and change:
/// a `before_batch` may replace the batch, an `after_loss` the loss).
pub struct FitState {
    /// This fit's number in the learner (1, 2, ...; lr_find takes none).
    pub fit: usize,
    /// This fit's number in the run, over all its learners (lr_find too).
    pub seq: usize,
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
    /// Whether the current batch's optimizer step ran (false for a cancelled batch).
    pub stepped: bool,
    pub batch: Option<XY>,
    pub pred: Option<Tensor>,
    pub loss_t: Option<Tensor>,
    /// The newest training loss read back from the device, for `after_loss_read`.
    pub loss: Option<BatchLoss>,
    /// The last stepped batch's loss, not read yet: the loop reads it once the next batch's
    /// step is queued, so that reading never makes the device wait.
    pub unread: Option<(BatchLoss, Tensor)>,
    /// The stop signal the data-parallel group heard of (see `DataParallel`).
    pub group_stop: Option<&'static str>,
    /// fastai's smoothed training loss (kept by the recorder).
    pub smooth_loss: f64,
    /// The epoch table's value columns: train_loss, valid_loss, then every metric.
    pub columns: Vec<String>,
    /// Which way each column is better (losses and error rates lower); None: not ranked.
    pub goals: Vec<Option<Goal>>,
    /// This epoch's values of `columns`, filled in after validation.
    pub values: Vec<f64>,
    /// This epoch's validation loss, probabilities and targets.
    pub valid: Option<(f64, Tensor, Tensor)>,
    pub epoch_start: Instant,
    /// This epoch's time blocked waiting for the next training batch (the loader is the
    /// bottleneck when this is a large part of `train_time`).
    pub data_wait: Duration,
    /// This epoch's training phase, batches and waits together.
    pub train_time: Duration,
    /// Whether this fit's inputs and conv weights are NHWC (for its record).
    pub channels_last: bool,
}

/// One training batch's loss and where it was taken: what the recorder, the NaN guard, the
/// loss plot and the LR finder see of a batch, one batch after it ran.
#[derive(Debug, Clone, Copy)]
pub struct BatchLoss {
    pub epoch: usize,
    /// The batch within the epoch.
    pub iter: usize,
    /// The learning rate (last param group) and momentum the step ran with.
    pub lr: f64,
    pub mom: f64,
    pub loss: f64,
}

impl FitState {
    pub fn new(fit: usize, n_epoch: usize, n_iter: usize) -> FitState {
        FitState {
            fit,
            seq: 0,
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
            loss: None,
            unread: None,
            group_stop: None,
            smooth_loss: f64::NAN,
            columns: vec![],
            goals: vec![],
            values: vec![],
            valid: None,
            epoch_start: Instant::now(),
            data_wait: Duration::ZERO,
            train_time: Duration::ZERO,
            channels_last: false,
        }
    }

    /// Position in the fit's training, 0 at the first batch and 1 after the last.
    pub fn pct_train(&self) -> f64 {
        self.train_iter as f64 / (self.n_epoch * self.n_iter).max(1) as f64
    }
}
