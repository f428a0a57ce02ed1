//! Progress display behind a small trait: a terminal bar per epoch with the live smoothed
//! loss (hidden when stderr is not a terminal), and the fastai results table on stdout.
use indicatif::{ProgressBar, ProgressStyle};

pub trait Progress {
    fn start(&mut self, len: usize, title: &str);
    fn tick(&mut self, loss: f64);
    fn finish(&mut self);
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

/// Prints fastai's per-epoch table: a header once, then aligned rows.
pub struct EpochTable {
    columns: Vec<String>,
}

impl EpochTable {
    pub fn new(metric_names: &[String]) -> EpochTable {
        let mut columns = vec!["epoch".to_string(), "train_loss".into(), "valid_loss".into()];
        columns.extend(metric_names.iter().cloned());
        columns.push("time".into());
        let t = EpochTable { columns };
        println!("{}", t.line(&t.columns));
        t
    }

    fn line(&self, cells: &[String]) -> String {
        cells.iter().zip(&self.columns).map(|(c, h)| format!("{c:<w$}", w = h.len().max(10))).collect::<Vec<_>>().join("  ").trim_end().to_string()
    }

    pub fn row(&self, epoch: usize, values: &[f64], secs: f64) {
        let mut cells = vec![epoch.to_string()];
        cells.extend(values.iter().map(|v| format!("{v:.6}")));
        cells.push(format!("{:02}:{:02}", (secs / 60.0) as u64, secs as u64 % 60));
        println!("{}", self.line(&cells));
    }
}
