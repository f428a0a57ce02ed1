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
    fn after_batch(&mut self, l: &mut Learner) -> Result<()> {
        let loss = l.state.loss;
        if !l.state.stepped || loss.is_finite() {
            return Ok(());
        }
        bail!(
            "loss is {loss} at epoch {}, batch {} (lr {:.3e}); training stopped{}",
            l.state.epoch,
            l.state.iter,
            l.opt.lrs.last().unwrap_or(&0.0),
            if l.epochs_done > 0 { "; the last good weights are in models/last.safetensors" } else { "" }
        )
    }
}
