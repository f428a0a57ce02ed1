//! `run.toml`: what a run was (script, params, seed, versions, machine, user), how it
//! ended and after how many attempts, and what its metrics mean (which way is better).
//! Written atomically (temp file + rename) so a crash never leaves half a record, and
//! read leniently: fields a later version adds are kept in `extra`, never dropped.
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const FORMAT_VERSION: u32 = 1;
pub const RECORD_FILE: &str = "run.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Completed,
    Failed,
    Interrupted,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        })
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "running" => Ok(Status::Running),
            "completed" => Ok(Status::Completed),
            "failed" => Ok(Status::Failed),
            "interrupted" => Ok(Status::Interrupted),
            _ => Err(format!("unknown status `{s}` (running, completed, failed, interrupted)")),
        }
    }
}

/// Which way a metric is better. A metric without one (a `log_metric` name nothing
/// defines, a closure metric whose options do not say) is not ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    Min,
    Max,
}

impl Goal {
    /// The better of two values; NaN never wins.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Goal::Min => a < b,
            Goal::Max => a > b,
        }
    }
}

impl std::str::FromStr for Goal {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Goal, String> {
        match s {
            "min" => Ok(Goal::Min),
            "max" => Ok(Goal::Max),
            _ => Err(format!("unknown goal `{s}`: min (lower is better) or max (higher is better)")),
        }
    }
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Goal::Min => "min",
            Goal::Max => "max",
        })
    }
}

/// One process's go at a run: a run stopped (a signal, a killed task) and resumed has
/// several, and its `duration_s` is their sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// completed, failed, interrupted, or crashed (the process died without closing it).
    pub status: String,
    pub host: String,
    /// The signal that interrupted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
}

/// What one logged fit trained with: enough to place its batches on an epoch axis and a
/// samples-seen axis, so that curves of runs with different batch sizes line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FitInfo {
    /// The fit's number in the run (over all its learners, lr_find included).
    pub seq: usize,
    pub epochs: usize,
    pub batches_per_epoch: usize,
    /// Items in a training batch (pairs for pair models, images of an episode).
    pub batch_size: usize,
    /// What it computed in: bf16 mixed precision, NHWC (channels_last) memory order. Both
    /// change the last digits, so two fits differing here are not expected to agree.
    #[serde(default)]
    pub bf16: bool,
    #[serde(default)]
    pub channels_last: bool,
}

/// Where a parameter's value came from, most specific last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamSource {
    Default,
    Config,
    Cli,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub value: toml::Value,
    pub source: ParamSource,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub format_version: u32,
    pub id: String,
    pub name: String,
    pub script: String,
    pub script_sha256: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seed: u64,
    pub command: Vec<String>,
    pub runner_version: String,
    pub runner_commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_dirty: Option<bool>,
    pub libtorch: String,
    pub device: String,
    pub host: String,
    /// Who ran it (the login name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<String>,
    /// Copies of the script and of every module it imported, relative to the run folder.
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub params: BTreeMap<String, Param>,
    /// The data sets the run resolved with `untar_data`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<super::DataUse>,
    /// Every attempt at the run, in order (one unless it was stopped and resumed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// The logged fits, in the order their rows appear in metrics.jsonl.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fits: Vec<FitInfo>,
    /// Which way each metric is better, by name; metrics not listed are not ranked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub goals: BTreeMap<String, Goal>,
    /// The weights each body started from, in the order the script made the bodies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<super::WeightsUse>,
    /// Fields this version does not know, kept so that rewriting a record loses nothing.
    #[serde(flatten)]
    pub extra: toml::Table,
}

impl RunRecord {
    pub fn read(dir: &Path) -> Result<RunRecord> {
        let path = dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is not a valid run record", path.display()))
    }

    /// Writes `run.toml` atomically: readers see the old or the new record, never a mix.
    /// Every string in it is bounded (`bounded_value`), so a 100 MB `--config` value
    /// cannot make a 100 MB record.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(RECORD_FILE), &self.text()?)
    }

    /// The last write of a run: atomic where it can be, else (a full disk has no room for
    /// the temp file) over the old record in place, reusing its blocks, so that the record
    /// says how the run ended rather than `running`.
    pub fn write_final(&self, dir: &Path) -> Result<()> {
        self.write(dir).or_else(|atomic| {
            let path = dir.join(RECORD_FILE);
            std::fs::write(&path, self.text()?).map_err(|e| atomic.context(format!("nor in place: cannot write {}: {e}", path.display())))
        })
    }

    fn text(&self) -> Result<String> {
        let mut value = toml::Value::try_from(self).context("cannot serialise run record")?;
        bound_strings(&mut value, max_record_value()?);
        toml::to_string_pretty(&value).context("cannot serialise run record")
    }

    /// Notes a logged fit (once per fit: a resumed run replays its fits) and the goals of
    /// its metrics; returns whether anything changed.
    pub fn note_fit(&mut self, fit: FitInfo, goals: impl IntoIterator<Item = (String, Goal)>) -> bool {
        let mut changed = false;
        if !self.fits.iter().any(|f| f.seq == fit.seq) {
            self.fits.push(fit);
            self.fits.sort_by_key(|f| f.seq);
            changed = true;
        }
        for (name, goal) in goals {
            changed |= self.note_goal(&name, goal);
        }
        changed
    }

    /// Notes which way `name` is better; returns whether it changed.
    pub fn note_goal(&mut self, name: &str, goal: Goal) -> bool {
        self.goals.insert(name.to_string(), goal) != Some(goal)
    }

    /// The record as TOML, to read fields by name whether this version knows them or not.
    pub fn field(&self, key: &str) -> Option<toml::Value> {
        match self.extra.get(key) {
            Some(v) => Some(v.clone()),
            None => toml::Value::try_from(self).ok()?.get(key).cloned(),
        }
    }

    /// Param values as plain strings, for tables.
    pub fn param_strings(&self) -> BTreeMap<String, String> {
        self.params.iter().map(|(k, p)| (k.clone(), value_string(&p.value))).collect()
    }
}

/// The default most bytes a record keeps of one string (a param value, the error, one
/// word of the command line).
pub const DEFAULT_MAX_RECORD_VALUE: usize = 64 << 10;

/// `RUNNER_MAX_RECORD_VALUE` (bytes, 0: no limit), else `DEFAULT_MAX_RECORD_VALUE`.
pub fn max_record_value() -> Result<usize> {
    match std::env::var("RUNNER_MAX_RECORD_VALUE") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| anyhow::anyhow!("RUNNER_MAX_RECORD_VALUE=`{v}` is not a number of bytes")),
        _ => Ok(DEFAULT_MAX_RECORD_VALUE),
    }
}

/// `s` cut to at most `max` bytes (0: no limit; at least 256), saying so and how long it
/// was; a string already cut stays as it is.
pub fn bounded_value(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let max = if max == 0 { usize::MAX } else { max.max(256) };
    if s.len() <= max {
        return s.into();
    }
    let note = format!("… [cut by the runner: {} bytes in all; RUNNER_MAX_RECORD_VALUE keeps more]", s.len());
    let mut end = max.saturating_sub(note.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{note}", &s[..end]).into()
}

fn bound_strings(v: &mut toml::Value, max: usize) {
    match v {
        toml::Value::String(s) => {
            if let std::borrow::Cow::Owned(cut) = bounded_value(s, max) {
                *s = cut;
            }
        }
        toml::Value::Array(a) => a.iter_mut().for_each(|x| bound_strings(x, max)),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, x)| bound_strings(x, max)),
        _ => {}
    }
}

/// Writes `path` through a temporary file and a rename, so that readers (and a crash
/// half-way) see the old or the new text, never a mix.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp: PathBuf = path.with_file_name(format!(".{name}.tmp"));
    let written = std::fs::write(&tmp, text)
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|()| std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display())));
    if written.is_err() {
        // A full disk leaves a half-written temp file: not left behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The record of a run in progress, shared by everything that notes something in it (the
/// session, the learner's fits, `log_metric`): each change is written at once.
pub struct LiveRecord {
    dir: PathBuf,
    record: Mutex<RunRecord>,
}

impl LiveRecord {
    /// Takes over `record`, already written in `dir`.
    pub fn new(dir: &Path, record: RunRecord) -> LiveRecord {
        LiveRecord { dir: dir.to_path_buf(), record: Mutex::new(record) }
    }

    pub fn get(&self) -> RunRecord {
        self.record.lock().unwrap().clone()
    }

    /// Applies `change` and writes the record when `change` says it changed something.
    pub fn update(&self, change: impl FnOnce(&mut RunRecord) -> bool) -> Result<()> {
        let mut rec = self.record.lock().unwrap();
        if change(&mut rec) {
            rec.write(&self.dir)?;
        }
        Ok(())
    }

    /// Applies the run's last `change` and writes it with [`RunRecord::write_final`].
    pub fn finish(&self, change: impl FnOnce(&mut RunRecord)) -> Result<()> {
        let mut rec = self.record.lock().unwrap();
        change(&mut rec);
        rec.write_final(&self.dir)
    }
}

pub fn value_string(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunRecord {
        RunRecord {
            format_version: FORMAT_VERSION,
            id: "abc123".into(),
            name: "x".into(),
            script: "s.rhai".into(),
            script_sha256: "00".into(),
            status: Status::Running,
            error: None,
            seed: 1,
            command: vec!["runner".into()],
            runner_version: "0".into(),
            runner_commit: "c".into(),
            git_commit: None,
            git_dirty: None,
            libtorch: "2.11.0".into(),
            device: "cpu".into(),
            host: "h".into(),
            user: None,
            started: "t".into(),
            ended: None,
            duration_s: None,
            sweep: None,
            rerun_of: None,
            sources: vec![],
            params: BTreeMap::from([("lr".into(), Param { value: toml::Value::Float(1e-3), source: ParamSource::Cli })]),
            data: vec![],
            attempts: vec![],
            fits: vec![],
            goals: BTreeMap::new(),
            weights: vec![],
            extra: toml::Table::new(),
        }
    }

    #[test]
    fn unknown_fields_survive_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        sample().write(dir.path()).unwrap();
        let path = dir.path().join(RECORD_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("future_field = \"kept\"\n{text}\n[future_table]\nx = 1\n")).unwrap();
        let rec = RunRecord::read(dir.path()).unwrap();
        assert_eq!(rec.params["lr"].source, ParamSource::Cli);
        rec.write(dir.path()).unwrap();
        let again = std::fs::read_to_string(&path).unwrap();
        assert!(again.contains("future_field = \"kept\""), "{again}");
        assert!(again.contains("[future_table]"), "{again}");
    }

    #[test]
    fn a_write_on_a_full_disk_leaves_no_temp_file_and_the_last_one_still_lands() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = sample();
        rec.write(dir.path()).unwrap();
        // Writes to /dev/full fail as on a full disk (ENOSPC).
        let tmp = dir.path().join(".run.toml.tmp");
        std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
        rec.status = Status::Failed;
        let e = format!("{:#}", rec.write(dir.path()).unwrap_err());
        assert!(e.contains(".run.toml.tmp") && e.contains("No space left"), "{e}");
        assert!(std::fs::symlink_metadata(&tmp).is_err(), "the temp file is cleaned up");
        assert_eq!(RunRecord::read(dir.path()).unwrap().status, Status::Running, "the old record stands");
        std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
        rec.write_final(dir.path()).unwrap();
        assert_eq!(RunRecord::read(dir.path()).unwrap().status, Status::Failed, "written in place");
    }

    #[test]
    fn a_record_keeps_a_bounded_part_of_each_value_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = sample();
        rec.extra.insert("nested".into(), toml::Value::Array(vec![toml::Value::String("ok".into())]));
        rec.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(RECORD_FILE)).unwrap();
        assert_eq!(text, toml::to_string_pretty(&rec).unwrap(), "a record without long values is written as before");
        let huge = "é".repeat(3_000_000);
        rec.params.insert("big".into(), Param { value: toml::Value::String(huge.clone()), source: ParamSource::Config });
        rec.command.push(format!("big={huge}"));
        rec.error = Some(huge.clone());
        rec.write(dir.path()).unwrap();
        let len = std::fs::metadata(dir.path().join(RECORD_FILE)).unwrap().len();
        assert!(len < 4 * DEFAULT_MAX_RECORD_VALUE as u64, "{len} bytes");
        let back = RunRecord::read(dir.path()).unwrap();
        let kept = back.params["big"].value.as_str().unwrap().to_string();
        assert!(
            kept.len() <= DEFAULT_MAX_RECORD_VALUE
                && kept.starts_with("éé")
                && kept.ends_with("[cut by the runner: 6000000 bytes in all; RUNNER_MAX_RECORD_VALUE keeps more]"),
            "{}",
            &kept[kept.len() - 100..]
        );
        assert!(back.error.as_deref().unwrap().contains("cut by the runner"));
        back.write(dir.path()).unwrap();
        assert_eq!(RunRecord::read(dir.path()).unwrap().params["big"].value.as_str().unwrap(), kept, "a cut value is not cut again");
    }

    #[test]
    fn fits_are_noted_once_and_goals_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = sample();
        let fit = FitInfo { seq: 2, epochs: 3, batches_per_epoch: 36, batch_size: 32, bf16: false, channels_last: true };
        assert!(rec.note_fit(fit, [("valid_loss".to_string(), Goal::Min), ("accuracy".to_string(), Goal::Max)]));
        assert!(!rec.note_fit(fit, [("accuracy".to_string(), Goal::Max)]), "a replayed fit changes nothing");
        assert!(rec.note_fit(FitInfo { seq: 1, ..fit }, []));
        assert_eq!(rec.fits.iter().map(|f| f.seq).collect::<Vec<_>>(), [1, 2], "in run order");
        rec.extra.insert("threads".into(), toml::Value::Integer(4));
        rec.write(dir.path()).unwrap();
        let back = RunRecord::read(dir.path()).unwrap();
        assert_eq!(back.fits, rec.fits);
        assert_eq!(back.goals["accuracy"], Goal::Max);
        assert_eq!(back.field("threads"), Some(toml::Value::Integer(4)), "fields this version does not know");
        assert_eq!(back.field("seed"), Some(toml::Value::Integer(1)), "and fields it knows");
        assert_eq!(back.field("nothing"), None);
        assert!(Goal::Min.better(1.0, 2.0) && !Goal::Max.better(1.0, 2.0) && !Goal::Max.better(f64::NAN, 2.0));
    }
}
