//! Progress of a fit: a bar per epoch with the live smoothed loss on a terminal, plain
//! lines elsewhere (logs, Slurm, CI), an estimate of the fit's duration once the first
//! batches are timed, and fastai's epoch table on stdout.
use crate::learn::callback::Callback;
use crate::learn::progress::{progress_display, EpochTable, Progress};
use crate::learn::Learner;
use anyhow::Result;
use std::time::{Duration, Instant};

pub struct ProgressCb {
    display: Box<dyn Progress>,
    /// One bar over the whole fit (lr_find), instead of one per epoch.
    whole: Option<(String, usize)>,
    table: Option<EpochTable>,
    started: Instant,
    estimated: bool,
}

impl ProgressCb {
    /// A bar per epoch and the epoch table.
    pub fn epochs() -> ProgressCb {
        ProgressCb::new(None)
    }

    /// One bar of `len` batches for the whole fit, titled `title`, and no table.
    pub fn whole(title: &str, len: usize) -> ProgressCb {
        ProgressCb::new(Some((title.to_string(), len)))
    }

    fn new(whole: Option<(String, usize)>) -> ProgressCb {
        ProgressCb { display: progress_display(), whole, table: None, started: Instant::now(), estimated: false }
    }

    /// Once, after the first batches of a long fit: about how long it will take.
    fn estimate(&mut self, l: &Learner) {
        let done = l.state.train_iter + 1;
        let spent = self.started.elapsed();
        if self.estimated || (done < 5 && spent < Duration::from_secs(10)) {
            return;
        }
        self.estimated = true;
        let total = match &self.whole {
            Some((_, len)) => *len,
            None => l.state.n_epoch * l.state.n_iter,
        };
        let secs = spent.as_secs_f64() / done as f64 * total as f64;
        if secs >= 60.0 {
            let what = self.whole.as_ref().map(|(t, _)| t.clone()).unwrap_or_else(|| format!("fit {}", l.state.fit));
            eprintln!(
                "{what}: {:.2} s per batch; {total} batches take about {} (validation not counted)",
                spent.as_secs_f64() / done as f64,
                crate::learn::progress::clock(secs)
            );
        }
    }
}

impl Callback for ProgressCb {
    fn order(&self) -> i32 {
        60
    }
    fn before_fit(&mut self, l: &mut Learner) -> Result<()> {
        self.started = Instant::now();
        match &self.whole {
            Some((title, len)) => self.display.start(*len, title),
            None => self.table = Some(EpochTable::new(&l.state.columns)),
        }
        Ok(())
    }
    fn before_train(&mut self, l: &mut Learner) -> Result<()> {
        if self.whole.is_none() {
            let s = &l.state;
            self.display.start(s.n_iter, &format!("fit {} epoch {}/{}", s.fit, s.epoch + 1, s.n_epoch));
        }
        Ok(())
    }
    fn after_batch(&mut self, l: &mut Learner) -> Result<()> {
        if l.state.stepped {
            self.display.tick(l.state.smooth_loss);
            self.estimate(l);
        }
        Ok(())
    }
    fn after_train(&mut self, _: &mut Learner) -> Result<()> {
        if self.whole.is_none() {
            self.display.finish();
        }
        Ok(())
    }
    fn after_epoch(&mut self, l: &mut Learner) -> Result<()> {
        if let Some(t) = &self.table {
            if l.state.values.len() == l.state.columns.len() {
                let s = &l.state;
                t.row(s.epoch, &s.values, s.epoch_start.elapsed().as_secs_f64(), s.data_wait, s.train_time);
            }
        }
        Ok(())
    }
    fn after_fit(&mut self, _: &mut Learner) -> Result<()> {
        self.display.finish();
        Ok(())
    }
}

impl Drop for ProgressCb {
    /// A fit that stopped with an error leaves no half-drawn bar behind.
    fn drop(&mut self) {
        self.display.finish();
    }
}
