//! Progress displays behind a small trait: a terminal bar with the live smoothed loss when
//! stderr is a terminal, plain lines (at most one every `RUNNER_PROGRESS_SECS` seconds,
//! default 30, and one at the end) when it is not; and fastai's epoch table on stdout.
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub trait Progress {
    fn start(&mut self, len: usize, title: &str);
    fn tick(&mut self, loss: f64);
    fn finish(&mut self);
}

/// The display that suits where stderr goes.
pub fn progress_display() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(TerminalBar::default())
    } else {
        let secs = std::env::var("RUNNER_PROGRESS_SECS").ok().and_then(|s| s.parse::<f64>().ok()).filter(|s| *s >= 0.0).unwrap_or(30.0);
        Box::new(PlainLines::new(Duration::from_secs_f64(secs)))
    }
}

/// `mm:ss`, or `h:mm:ss` past an hour.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

#[derive(Default)]
pub struct TerminalBar {
    bar: Option<ProgressBar>,
}

impl Progress for TerminalBar {
    fn start(&mut self, len: usize, title: &str) {
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed}<{eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(title.to_string());
        self.bar = Some(bar);
    }
    fn tick(&mut self, loss: f64) {
        if let Some(b) = &self.bar {
            b.set_message(format!("loss {loss:.4}"));
            b.inc(1);
        }
    }
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Plain progress lines on stderr, for logs: `fit 1 epoch 2/4: batch 120/500, loss 0.4312,
/// 01:02 elapsed, ETA 03:17`.
pub struct PlainLines {
    every: Duration,
    title: String,
    len: usize,
    done: usize,
    loss: f64,
    started: Instant,
    last: Instant,
    active: bool,
}

impl PlainLines {
    pub fn new(every: Duration) -> PlainLines {
        let now = Instant::now();
        PlainLines { every, title: String::new(), len: 0, done: 0, loss: f64::NAN, started: now, last: now, active: false }
    }

    /// The line for the current position.
    pub fn line(&self) -> String {
        let spent = self.started.elapsed().as_secs_f64();
        let eta = if self.done > 0 { spent / self.done as f64 * self.len.saturating_sub(self.done) as f64 } else { f64::NAN };
        let eta = if eta.is_finite() { clock(eta) } else { "?".into() };
        format!("{}: batch {}/{}, loss {:.4}, {} elapsed, ETA {eta}", self.title, self.done, self.len, self.loss, clock(spent))
    }
}

impl Progress for PlainLines {
    fn start(&mut self, len: usize, title: &str) {
        *self = PlainLines { title: title.to_string(), len, active: true, ..PlainLines::new(self.every) };
    }
    fn tick(&mut self, loss: f64) {
        self.done += 1;
        self.loss = loss;
        if self.last.elapsed() >= self.every && self.done < self.len {
            self.last = Instant::now();
            eprintln!("{}", self.line());
        }
    }
    fn finish(&mut self) {
        if std::mem::take(&mut self.active) && self.done > 0 {
            eprintln!("{}", self.line());
        }
    }
}

/// Prints fastai's per-epoch table: a header once, then aligned rows.
pub struct EpochTable {
    columns: Vec<String>,
}

impl EpochTable {
    /// Prints the header: `epoch`, the value columns (train_loss, valid_loss, metrics), `time`,
    /// and `data_wait`: how much of the training phase went to waiting for batches.
    pub fn new(value_columns: &[String]) -> EpochTable {
        let mut columns = vec!["epoch".to_string()];
        columns.extend(value_columns.iter().cloned());
        columns.extend(["time".into(), "data_wait".into()]);
        let t = EpochTable { columns };
        println!("{}", t.line(&t.columns));
        t
    }

    fn line(&self, cells: &[String]) -> String {
        cells.iter().zip(&self.columns).map(|(c, h)| format!("{c:<w$}", w = h.len().max(10))).collect::<Vec<_>>().join("  ").trim_end().to_string()
    }

    pub fn row(&self, epoch: usize, values: &[f64], secs: f64, wait: Duration, train: Duration) {
        let mut cells = vec![epoch.to_string()];
        cells.extend(values.iter().map(|v| format!("{v:.6}")));
        cells.extend([clock(secs), data_wait(wait, train)]);
        println!("{}", self.line(&cells));
    }
}

/// The time spent waiting for batches and its share of the training phase: `0.4s 12%`.
pub fn data_wait(wait: Duration, train: Duration) -> String {
    let pct = 100.0 * wait.as_secs_f64() / train.as_secs_f64().max(1e-9);
    format!("{:.1}s {:.0}%", wait.as_secs_f64(), pct.min(100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_say_where_and_how_long() {
        let mut p = PlainLines::new(Duration::ZERO);
        p.start(4, "fit 1 epoch 1/2");
        p.tick(0.5);
        p.tick(0.25);
        let line = p.line();
        assert!(line.starts_with("fit 1 epoch 1/2: batch 2/4, loss 0.2500, 00:00 elapsed, ETA 00:00"), "{line}");
    }

    #[test]
    fn data_wait_gives_seconds_and_share() {
        assert_eq!(data_wait(Duration::from_millis(400), Duration::from_secs(4)), "0.4s 10%");
        assert_eq!(data_wait(Duration::ZERO, Duration::ZERO), "0.0s 0%");
    }

    #[test]
    fn clock_reads_like_fastai() {
        assert_eq!(clock(75.4), "01:15");
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
