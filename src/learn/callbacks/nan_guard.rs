//! fastai's `TerminateOnNaNCallback`: a NaN or infinite training loss stops the fit with
//! the epoch, batch and learning rate named, before the bad step is recorded.
use crate::learn::callback::Callback;
use crate::learn::Learner;
use anyhow::{bail, Result};

pub struct TerminateOnNan;

impl Callback for TerminateOnNan {
    fn order(&self) -> i32 {
        -9
    }
    fn after_loss_read(&mut self, l: &mut Learner) -> Result<()> {
        let Some(b) = l.state.loss.filter(|b| !b.loss.is_finite()) else { return Ok(()) };
        bail!(
            "loss is {} at epoch {}, batch {} (lr {:.3e}); training stopped{}",
            b.loss,
            b.epoch,
            b.iter,
            b.lr,
            if l.epochs_done > 0 { "; the last good weights are in models/last.safetensors" } else { "" }
        )
    }
}
