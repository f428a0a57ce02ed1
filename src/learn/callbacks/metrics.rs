//! Metrics computed outside Rust (script closures `|preds, targets| ...`) as epoch-table
//! columns after the built-in ones.
use crate::learn::callback::Callback;
use crate::learn::metrics::ExtraMetrics;
use crate::learn::Learner;
use anyhow::Result;

/// Adds extra metrics' columns and values to the recorder's.
pub struct ExtraMetricsCb<'a>(pub &'a dyn ExtraMetrics);

impl Callback for ExtraMetricsCb<'_> {
    fn order(&self) -> i32 {
        51
    }
    fn before_fit(&mut self, l: &mut Learner) -> Result<()> {
        l.state.goals.extend(self.0.goals());
        l.state.columns.extend(self.0.names());
        Ok(())
    }
    fn after_validate(&mut self, l: &mut Learner) -> Result<()> {
        if let Some((_, probs, targets)) = &l.state.valid {
            let v = self.0.compute(probs, targets)?;
            l.state.values.extend(v);
        }
        Ok(())
    }
}
