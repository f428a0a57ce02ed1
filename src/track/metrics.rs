//! `metrics.jsonl`: one JSON object per line, flushed as written, so a crashed run still
//! has every record up to the crash. Only deterministic values go here (no wall-clock
//! times), so two runs with one seed give identical files.
use anyhow::{Context, Result};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const METRICS_FILE: &str = "metrics.jsonl";

/// Append-only metrics log shared by the script and the learner.
pub struct MetricsLog {
    path: PathBuf,
    file: Mutex<File>,
    steps: Mutex<HashMap<String, u64>>,
    replay: Mutex<Replay>,
}

/// A resumed run replays its script: the lines its last checkpoint had already written
/// are kept, and the replay's writes of them are checked against them instead of
/// appended again, so the finished file equals an uninterrupted run's.
#[derive(Default)]
struct Replay {
    kept: Vec<String>,
    /// Lines written (or replayed) so far.
    written: usize,
    diverged: bool,
}

impl MetricsLog {
    pub fn create(dir: &Path) -> Result<MetricsLog> {
        Self::open(dir, Vec::new())
    }

    /// Reopens a run's log to resume it: keeps its first `keep` lines (what the last
    /// checkpoint had written) and drops the rest.
    pub fn resume(dir: &Path, keep: usize) -> Result<MetricsLog> {
        let path = dir.join(METRICS_FILE);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let kept: Vec<String> = text.split_inclusive('\n').filter(|l| l.ends_with('\n')).take(keep).map(String::from).collect();
        std::fs::write(&path, kept.concat()).with_context(|| format!("cannot rewrite {}", path.display()))?;
        Self::open(dir, kept)
    }

    fn open(dir: &Path, kept: Vec<String>) -> Result<MetricsLog> {
        let path = dir.join(METRICS_FILE);
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let replay = Replay { kept, written: 0, diverged: false };
        Ok(MetricsLog { path, file: Mutex::new(file), steps: Mutex::new(HashMap::new()), replay: Mutex::new(replay) })
    }

    /// Writes one record (a JSON object) as a line.
    pub fn write(&self, record: Map<String, Value>) -> Result<()> {
        let mut line = serde_json::to_string(&Value::Object(record))?;
        line.push('\n');
        let mut r = self.replay.lock().unwrap();
        r.written += 1;
        if let Some(old) = r.kept.get(r.written - 1) {
            if *old != line && !r.diverged {
                r.diverged = true;
                tracing::warn!("the resumed run replays differently from the first attempt at metrics.jsonl line {}", r.written);
            }
            return Ok(());
        }
        let mut f = self.file.lock().unwrap();
        f.write_all(line.as_bytes()).and_then(|_| f.flush()).with_context(|| format!("cannot append to {}", self.path.display()))
    }

    /// Where the log stands (lines written, `log_metric` steps), for a checkpoint.
    pub fn position(&self) -> (usize, HashMap<String, u64>) {
        (self.replay.lock().unwrap().written, self.steps.lock().unwrap().clone())
    }

    /// Jumps to a checkpoint's position: a resumed fit skips the epochs it restores, and
    /// with them the lines they wrote.
    pub fn restore_position(&self, written: usize, steps: HashMap<String, u64>) {
        self.replay.lock().unwrap().written = written;
        *self.steps.lock().unwrap() = steps;
    }

    /// A named scalar, numbered per name: `{"kind":"metric","name":..,"step":..,"value":..}`.
    pub fn log_metric(&self, name: &str, value: f64) -> Result<()> {
        let step = {
            let mut steps = self.steps.lock().unwrap();
            let s = steps.entry(name.to_string()).or_insert(0);
            *s += 1;
            *s - 1
        };
        let mut m = Map::new();
        m.insert("kind".into(), "metric".into());
        m.insert("name".into(), name.into());
        m.insert("step".into(), step.into());
        m.insert("value".into(), json_f64(value));
        self.write(m)
    }
}

/// JSON has no NaN/inf: they are written as strings so the line stays valid.
pub fn json_f64(v: f64) -> Value {
    if v.is_finite() {
        Value::from(v)
    } else {
        Value::from(v.to_string())
    }
}

/// The float `json_f64` wrote: a number (read back exactly: serde_json's `float_roundtrip`),
/// or `NaN`, `inf`, `-inf` as strings.
pub fn f64_of_json(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// What reading `metrics.jsonl` found: good records and the damaged lines it skipped.
#[derive(Debug, Default)]
pub struct MetricsFile {
    pub records: Vec<Map<String, Value>>,
    pub damaged: Vec<(usize, String)>,
}

/// One scalar series: the values of a `log_metric` name, or one column of one fit's
/// epoch table. Kept apart so that a `log_metric("accuracy")` never mixes with a fit's
/// `accuracy` column.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The fit (1, 2, ... in the order the file's epoch rows show them); None for `log_metric`.
    pub fit: Option<usize>,
    pub name: String,
    pub values: Vec<f64>,
}

impl Series {
    /// `accuracy` for a logged metric, `fit 2 accuracy` for an epoch column.
    pub fn label(&self) -> String {
        match self.fit {
            Some(f) => format!("fit {f} {}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The rows of one logged fit: its training batches and its epochs, in file order.
#[derive(Debug, Default)]
pub struct FitRows<'a> {
    pub batches: Vec<&'a Map<String, Value>>,
    pub epochs: Vec<&'a Map<String, Value>>,
    /// Batch rows before the first epoch row: one epoch's batches.
    first_epoch_batches: Option<usize>,
}

impl FitRows<'_> {
    /// Training batches per epoch, as the rows show it (all of them when the fit ended
    /// inside its first epoch).
    pub fn batches_per_epoch(&self) -> usize {
        self.first_epoch_batches.unwrap_or(self.batches.len()).max(1)
    }
}

fn int(r: &Map<String, Value>, key: &str) -> Option<i64> {
    r.get(key).and_then(Value::as_i64)
}

impl MetricsFile {
    /// The logged fits, in order (an `lr_find` logs no rows and is none of them). A fit
    /// starts where the `fit` number changes, or where batches or epochs count from 0
    /// again (another learner's fit of the same number).
    pub fn fits(&self) -> Vec<FitRows<'_>> {
        let mut out: Vec<FitRows> = Vec::new();
        let mut current: Option<&Value> = None;
        for r in &self.records {
            let kind = r.get("kind").and_then(Value::as_str);
            let (batch, epoch) = (kind == Some("batch"), kind == Some("epoch"));
            if !batch && !epoch {
                continue;
            }
            let restarts = match out.last() {
                None => true,
                Some(f) => {
                    r.get("fit") != current
                        || (batch && int(r, "iter") == Some(0) && (!f.batches.is_empty() || !f.epochs.is_empty()))
                        || (epoch && int(r, "epoch") == Some(0) && !f.epochs.is_empty())
                }
            };
            if restarts {
                out.push(FitRows::default());
                current = r.get("fit");
            }
            let f = out.last_mut().expect("a fit was just started");
            if batch {
                f.batches.push(r);
            } else {
                f.first_epoch_batches.get_or_insert(f.batches.len());
                f.epochs.push(r);
            }
        }
        out
    }

    /// Every scalar series: `metric` records by name first, then each fit's epoch columns
    /// (fits numbered 1, 2, ... as `fits` finds them).
    pub fn series(&self) -> Vec<Series> {
        let mut out: Vec<Series> = Vec::new();
        let mut push = |fit: Option<usize>, name: &str, v: f64| match out.iter_mut().find(|s| s.fit == fit && s.name == name) {
            Some(s) => s.values.push(v),
            None => out.push(Series { fit, name: name.to_string(), values: vec![v] }),
        };
        for r in &self.records {
            if let (Some("metric"), Some(n), Some(v)) =
                (r.get("kind").and_then(Value::as_str), r.get("name").and_then(Value::as_str), num(r.get("value")))
            {
                push(None, n, v);
            }
        }
        for (i, f) in self.fits().iter().enumerate() {
            for r in &f.epochs {
                for (k, v) in r.iter() {
                    if k != "kind" && k != "epoch" && k != "fit" {
                        if let Some(v) = num(Some(v)) {
                            push(Some(i + 1), k, v);
                        }
                    }
                }
            }
        }
        out
    }

    /// What a run ended with: the last value of each `log_metric` name, then of each column
    /// of the final fit's epoch table but its training loss (a `fine_tune`'s first fit is
    /// only its frozen epoch).
    pub fn final_values(&self) -> Vec<(String, f64)> {
        let series = self.series();
        let last_fit = series.iter().filter_map(|s| s.fit).max();
        series
            .into_iter()
            .filter(|s| s.fit.is_none() || (s.fit == last_fit && s.name != "train_loss"))
            .filter_map(|s| Some((s.name, *s.values.last()?)))
            .collect()
    }

    /// Records of one kind (`batch`, `epoch`, `metric`, ...).
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Map<String, Value>> + 'a {
        self.records.iter().filter(move |r| r.get("kind").and_then(Value::as_str) == Some(kind))
    }
}

fn num(v: Option<&Value>) -> Option<f64> {
    f64_of_json(v?)
}

/// Reads a metrics file, skipping (and reporting) lines that are not JSON objects. The file
/// is read as bytes: a line that is not UTF-8 is one damaged line, not a failed read.
pub fn read_metrics(dir: &Path) -> Result<MetricsFile> {
    let path = dir.join(METRICS_FILE);
    let mut out = MetricsFile::default();
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        let Ok(line) = std::str::from_utf8(&line) else {
            out.damaged.push((i + 1, "not valid UTF-8".into()));
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => out.records.push(m),
            Ok(_) => out.damaged.push((i + 1, "not a JSON object".into())),
            Err(e) => out.damaged.push((i + 1, e.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_lines_are_skipped_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let log = MetricsLog::create(dir.path()).unwrap();
        log.log_metric("acc", 0.5).unwrap();
        log.log_metric("acc", f64::NAN).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(METRICS_FILE))
            .unwrap()
            .write_all(b"{\"kind\":\"metric\",\"name\n{\"kind\":\"epoch\",\"epoch\":0,\"valid_loss\":0.25}\n")
            .unwrap();
        let m = read_metrics(dir.path()).unwrap();
        assert_eq!(m.damaged.len(), 1);
        assert_eq!(m.damaged[0].0, 3);
        let series = m.series();
        assert_eq!(series[0].label(), "acc");
        assert_eq!(series[0].values[0], 0.5);
        assert!(series[0].values[1].is_nan());
        assert_eq!(series[1], Series { fit: Some(1), name: "valid_loss".into(), values: vec![0.25] });
    }

    #[test]
    fn final_values_are_the_logged_metrics_and_the_last_fit() {
        let dir = tempfile::tempdir().unwrap();
        let lines = [
            r#"{"kind":"epoch","fit":1,"epoch":0,"train_loss":2.0,"valid_loss":1.5,"accuracy":0.25}"#,
            r#"{"kind":"metric","name":"test_acc","step":0,"value":0.5}"#,
            r#"{"kind":"epoch","fit":2,"epoch":0,"train_loss":1.0,"valid_loss":0.9,"accuracy":0.5}"#,
            r#"{"kind":"epoch","fit":2,"epoch":1,"train_loss":0.5,"valid_loss":0.7,"accuracy":0.75}"#,
        ];
        std::fs::write(dir.path().join(METRICS_FILE), lines.join("\n") + "\n").unwrap();
        let v = read_metrics(dir.path()).unwrap().final_values();
        assert_eq!(v, [("test_acc".to_string(), 0.5), ("valid_loss".to_string(), 0.7), ("accuracy".to_string(), 0.75)]);
    }

    #[test]
    fn a_line_that_is_not_utf8_is_one_damaged_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(METRICS_FILE),
            b"{\"kind\":\"metric\",\"name\":\"a\",\"value\":1}\n{\"x\xff\":1}\n{\"kind\":\"metric\",\"name\":\"a\",\"value\":2}\n",
        )
        .unwrap();
        let m = read_metrics(dir.path()).unwrap();
        assert_eq!(m.damaged, vec![(2, "not valid UTF-8".to_string())]);
        assert_eq!(m.series(), vec![Series { fit: None, name: "a".to_string(), values: vec![1.0, 2.0] }]);
    }
}
