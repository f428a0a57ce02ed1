//! fastai's `Recorder`: the smoothed training loss, the epoch's validation loss and metrics,
//! and their rows in the run's metrics.jsonl (one per batch, one per epoch). With the
//! fit's first row it notes in `run.toml` what the fit trains with (batches per epoch,
//! batch size) and which way its columns are better, for comparisons and plots.
use crate::learn::callback::Callback;
use crate::learn::Learner;
use crate::track::metrics::{f64_of_json, json_f64};
use crate::track::{FitInfo, Goal};
use anyhow::{Context, Result};
use serde_json::Map;

/// fastai's `AvgSmoothLoss`: exponential moving average (beta 0.98), debiased.
#[derive(Default, Debug, Clone, Copy, PartialEq)]
pub struct SmoothLoss {
    val: f64,
    count: i32,
}

impl SmoothLoss {
    pub const BETA: f64 = 0.98;
    pub fn add(&mut self, loss: f64) -> f64 {
        self.count += 1;
        self.val = Self::BETA * self.val + (1.0 - Self::BETA) * loss;
        self.value()
    }
    pub fn value(&self) -> f64 {
        self.val / (1.0 - Self::BETA.powi(self.count))
    }

    /// For a resume checkpoint: the average exactly, NaN and infinities included.
    pub fn state(&self) -> serde_json::Value {
        serde_json::json!({ "val": json_f64(self.val), "count": self.count })
    }

    pub fn restore(v: &serde_json::Value) -> Result<SmoothLoss> {
        let val = v.get("val").and_then(f64_of_json).context("the checkpoint's smoothed loss has no value")?;
        let count = v.get("count").and_then(serde_json::Value::as_i64).context("the checkpoint's smoothed loss has no count")? as i32;
        Ok(SmoothLoss { val, count })
    }
}

pub struct Recorder {
    /// Whether rows go to metrics.jsonl (off for lr_find, as fastai's `no_logging`).
    pub log: bool,
    smooth: SmoothLoss,
    /// Whether this fit is noted in `run.toml` yet.
    noted: bool,
}

impl Recorder {
    pub fn new(log: bool) -> Recorder {
        Recorder { log, smooth: SmoothLoss::default(), noted: false }
    }

    /// The fit and its columns' goals, in the run's record (once per fit).
    fn note_fit(&mut self, l: &Learner) -> Result<()> {
        self.noted = true;
        let (Some(record), Some(batch)) = (&l.out.record, &l.state.batch) else { return Ok(()) };
        let s = &l.state;
        let fit = FitInfo {
            seq: s.seq,
            epochs: s.n_epoch,
            batches_per_epoch: s.n_iter,
            batch_size: batch.xs[0].size()[0] as usize,
            bf16: l.bf16,
            channels_last: s.channels_last,
        };
        let goals: Vec<(String, Goal)> = s.columns.iter().zip(&s.goals).filter_map(|(c, g)| Some((c.clone(), (*g)?))).collect();
        record.update(|r| r.note_fit(fit, goals))
    }
}

impl Callback for Recorder {
    fn order(&self) -> i32 {
        50
    }
    fn before_fit(&mut self, l: &mut Learner) -> Result<()> {
        self.smooth = SmoothLoss::default();
        self.noted = false;
        l.state.columns = ["train_loss".to_string(), "valid_loss".into()].into_iter().chain(l.metric_names()).collect();
        l.state.goals = [Some(Goal::Min), Some(Goal::Min)].into_iter().chain(l.metrics.iter().map(|m| Some(m.goal()))).collect();
        Ok(())
    }
    fn state(&self) -> Option<serde_json::Value> {
        Some(self.smooth.state())
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        self.smooth = SmoothLoss::restore(v)?;
        Ok(())
    }
    fn after_loss_read(&mut self, l: &mut Learner) -> Result<()> {
        let Some(b) = l.state.loss else { return Ok(()) };
        let s = self.smooth.add(b.loss);
        l.state.smooth_loss = s;
        if !self.log {
            return Ok(());
        }
        if !self.noted {
            self.note_fit(l)?;
        }
        let mut rec = Map::new();
        rec.insert("kind".into(), "batch".into());
        rec.insert("fit".into(), l.state.fit.into());
        rec.insert("iter".into(), (b.epoch * l.state.n_iter + b.iter).into());
        rec.insert("lr".into(), json_f64(b.lr));
        rec.insert("mom".into(), json_f64(b.mom));
        rec.insert("loss".into(), json_f64(b.loss));
        rec.insert("smooth_loss".into(), json_f64(s));
        l.record(rec)
    }
    fn after_validate(&mut self, l: &mut Learner) -> Result<()> {
        let Some((valid_loss, probs, targets)) = &l.state.valid else { return Ok(()) };
        let mut values = vec![self.smooth.value(), *valid_loss];
        values.extend(l.metric_values(probs, targets));
        l.state.values = values;
        Ok(())
    }
    fn after_epoch(&mut self, l: &mut Learner) -> Result<()> {
        let s = &l.state;
        if !self.log || s.values.len() != s.columns.len() {
            return Ok(());
        }
        let mut rec = Map::new();
        rec.insert("kind".into(), "epoch".into());
        rec.insert("fit".into(), s.fit.into());
        rec.insert("epoch".into(), s.epoch.into());
        for (c, v) in s.columns.iter().zip(&s.values) {
            rec.insert(c.clone(), json_f64(*v));
        }
        // Timings vary between reruns: they go to log.jsonl, never to metrics.jsonl.
        tracing::info!(
            fit = s.fit,
            epoch = s.epoch,
            seconds = s.epoch_start.elapsed().as_secs_f64(),
            train_seconds = s.train_time.as_secs_f64(),
            data_wait_seconds = s.data_wait.as_secs_f64(),
            "epoch done"
        );
        l.record(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_smoothed_loss_survives_a_checkpoint_bit_for_bit() {
        // A resumed fit goes on from the state its checkpoint file kept: one bit off shows in
        // metrics.jsonl.
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200_000 {
            let mut rec = Recorder::new(true);
            rec.smooth = SmoothLoss { val: r.gen::<f64>() * 10.0, count: r.gen_range(1..1000) };
            let mut back = Recorder::new(true);
            let text = serde_json::to_string(&rec.state().unwrap()).unwrap();
            back.restore(&serde_json::from_str(&text).unwrap()).unwrap();
            assert_eq!(back.smooth.val.to_bits(), rec.smooth.val.to_bits(), "{}", rec.smooth.val);
        }
    }
}
