//! Stops a fit at a batch boundary when the process was asked to stop (Ctrl-C, SIGTERM),
//! saving `models/last` first so the run can be resumed or inspected.
use crate::learn::callback::Callback;
use crate::learn::Learner;
use anyhow::{bail, Result};

pub struct Interrupt {
    /// Whether to save `models/last` before stopping (not during lr_find, whose weights
    /// are about to be restored).
    pub save: bool,
}

impl Callback for Interrupt {
    fn order(&self) -> i32 {
        -20
    }
    fn before_batch(&mut self, l: &mut Learner) -> Result<()> {
        // In a data-parallel run all ranks stop at one batch, when the group has heard of it.
        let asked = if l.group().is_some() { l.state.group_stop } else { (l.out.interrupted)() };
        let Some(signal) = asked else { return Ok(()) };
        let (epoch, batch) = (l.state.epoch, l.state.iter);
        if !self.save {
            bail!("interrupted by {signal} during lr_find");
        }
        let at = l.save("last")?;
        bail!("interrupted by {signal} at epoch {epoch}, batch {batch}; weights saved to {}", at.display())
    }
}
