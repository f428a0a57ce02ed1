//! A run in progress: its folder, record, logs and metrics. Created before the script
//! starts and finished whatever happens (completed, failed, interrupted), so every run
//! leaves a readable record.
use crate::device::{device_name, libtorch_version};
use crate::precision::Resolved;
use crate::threads::Threads;
use crate::track::lock::{lock, FolderLock};
use crate::track::{Attempt, Goal, LiveRecord, MetricsLog, Param, RunRecord, Status};
use anyhow::{Context, Result};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Instant;
use tch::Device;

/// The signal (SIGINT from Ctrl-C, SIGTERM from `kill`, Slurm or systemd) that asked the
/// run to stop, 0 while none came; long loops (script operations, training batches) poll it.
static INTERRUPT: AtomicI32 = AtomicI32::new(0);

pub fn interrupted() -> bool {
    INTERRUPT.load(Ordering::Relaxed) != 0
}

/// The name of the signal that interrupted the run: "SIGINT" or "SIGTERM".
pub fn interrupt_signal() -> Option<&'static str> {
    signal_name(INTERRUPT.load(Ordering::Relaxed))
}

/// The number of the signal that interrupted the run (2 SIGINT, 15 SIGTERM), if one did.
pub fn interrupt_signal_number() -> Option<i32> {
    Some(INTERRUPT.load(Ordering::Relaxed)).filter(|&s| s != 0)
}

fn signal_name(sig: i32) -> Option<&'static str> {
    match sig {
        signal_hook::consts::SIGINT => Some("SIGINT"),
        signal_hook::consts::SIGTERM => Some("SIGTERM"),
        _ => None,
    }
}

/// SIGINT or SIGTERM once asks the run to stop at the next batch or script step, so that
/// it checkpoints and records `interrupted`; a second signal exits at once.
pub fn handle_stop_signals() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
            Ok(s) => s,
            Err(e) => return tracing::warn!("cannot handle SIGINT/SIGTERM: {e}"),
        };
        std::thread::spawn(move || {
            for sig in signals.forever() {
                let name = signal_name(sig).unwrap_or("a signal");
                if INTERRUPT.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                    eprintln!("\nrunner: {name} again, exiting now");
                    std::process::exit(128 + sig);
                }
                tracing::info!("{name} received: stopping after the current step");
                eprintln!("\nrunner: {name}: stopping after the current step (again to exit now)");
            }
        });
    });
}

/// What a run is started with.
pub struct RunSpec {
    pub script: PathBuf,
    pub seed: u64,
    pub device: Device,
    pub threads: Threads,
    /// The run's precision on its device (learners follow it unless a script says otherwise).
    pub precision: Resolved,
    pub runs_dir: PathBuf,
    pub command: Vec<String>,
    pub sweep: Option<SweepPoint>,
    pub rerun_of: Option<String>,
}

/// The sweep point a run is, and which attempt at it.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    pub id: String,
    pub index: usize,
    pub attempt: usize,
}

/// Makes a new run folder `<runs>/<timestamp>-<stem>-<id>/`; the id is fresh for each
/// attempt and `create_dir` fails on an existing folder, so two runs never share one.
/// Returns the folder, the id and the folder's name.
pub fn new_run_dir(runs_dir: &Path, stem: &str) -> Result<(PathBuf, String, String)> {
    std::fs::create_dir_all(runs_dir).with_context(|| format!("cannot create runs dir {}", runs_dir.display()))?;
    let now = chrono::Local::now();
    loop {
        let id = format!("{:06x}", rand::thread_rng().gen::<u32>() & 0xff_ffff);
        let name = format!("{}-{stem}-{id}", now.format("%Y%m%d-%H%M%S"));
        let dir = runs_dir.join(&name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((dir, id, name)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
}

/// The Slurm job this process runs in, as users name it (`<array job>_<task>` for an array task).
fn slurm_job_name() -> Option<String> {
    let var = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// The threads and precision the run computes with, and where each came from: both
/// change the numbers, so a rerun needs them.
fn record_compute(extra: &mut toml::Table, spec: &RunSpec) {
    extra.insert("threads".into(), toml::Value::Integer(spec.threads.count as i64));
    extra.insert("threads_from".into(), toml::Value::String(spec.threads.from.to_string()));
    extra.insert("precision".into(), toml::Value::String(spec.precision.precision.to_string()));
    extra.insert("precision_from".into(), toml::Value::String(spec.precision.why.clone()));
    extra.insert("channels_last".into(), toml::Value::Boolean(spec.precision.channels_last));
}

/// The Slurm job this process runs in (job id, array job and task, restart count, node).
fn slurm_info() -> Option<toml::Table> {
    let job = std::env::var("SLURM_JOB_ID").ok()?;
    let mut t = toml::Table::new();
    t.insert("job_id".into(), job.parse::<i64>().map(toml::Value::Integer).unwrap_or(toml::Value::String(job)));
    for (key, var) in [
        ("array_job_id", "SLURM_ARRAY_JOB_ID"),
        ("array_task_id", "SLURM_ARRAY_TASK_ID"),
        ("restart_count", "SLURM_RESTART_COUNT"),
        ("node", "SLURMD_NODENAME"),
    ] {
        if let Ok(v) = std::env::var(var) {
            t.insert(key.into(), v.parse::<i64>().map(toml::Value::Integer).unwrap_or(toml::Value::String(v)));
        }
    }
    Some(t)
}

pub struct Session {
    pub dir: PathBuf,
    pub seed: u64,
    pub device: Device,
    pub metrics: Arc<MetricsLog>,
    pub record: Arc<LiveRecord>,
    started: Instant,
    /// When this attempt started (a resumed run's earlier ones are in the record).
    attempt_started: String,
    /// Fits so far, over all the run's learners (see `RunOut::fits`).
    pub fits: Arc<AtomicUsize>,
    /// The data-parallel group the run trains in (None: one process).
    pub group: Option<Arc<crate::dist::ProcessGroup>>,
    /// No other process runs in this folder while the session lives.
    _lock: FolderLock,
}

impl Session {
    /// Starts a run in a new folder `runs/<timestamp>-<stem>-<id>/`, or in `into`, a folder
    /// made for it beforehand (a sweep point's, which holds its Slurm output), and writes
    /// the first `running` record.
    pub fn start(spec: &RunSpec, params: BTreeMap<String, Param>, into: Option<&Path>) -> Result<Session> {
        let source = std::fs::read(&spec.script).with_context(|| format!("cannot read script {}", spec.script.display()))?;
        let stem = spec.script.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let now = chrono::Local::now();
        let (dir, id, name) = match into {
            Some(dir) => {
                let name = dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                let id = name.rsplit('-').next().unwrap_or_default().to_string();
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                (dir.to_path_buf(), id, name)
            }
            None => new_run_dir(&spec.runs_dir, &stem)?,
        };
        let lock = lock(&dir, &format!("run {}", dir.display()))?;
        let (git_commit, git_dirty) = git_state(&spec.script);
        let mut extra = toml::Table::new();
        extra.insert("pid".into(), toml::Value::Integer(std::process::id() as i64));
        // With the pid, the start time tells this process from a later one that reuses the pid.
        if let Some(t) = crate::track::runs::process_start_time(std::process::id()) {
            extra.insert("pid_start".into(), toml::Value::Integer(t as i64));
        }
        extra.insert("deterministic".into(), toml::Value::Boolean(crate::torch_ext::deterministic()));
        record_compute(&mut extra, spec);
        if let Some(slurm) = slurm_info() {
            extra.insert("slurm".into(), toml::Value::Table(slurm));
        }
        if let Some(sweep) = &spec.sweep {
            extra.insert("sweep_index".into(), toml::Value::Integer(sweep.index as i64));
            extra.insert("attempt".into(), toml::Value::Integer(sweep.attempt as i64));
        }
        let record = RunRecord {
            format_version: crate::track::record::FORMAT_VERSION,
            id,
            name,
            script: spec.script.display().to_string(),
            script_sha256: hex::encode(Sha256::digest(&source)),
            status: Status::Running,
            error: None,
            seed: spec.seed,
            command: spec.command.clone(),
            runner_version: env!("CARGO_PKG_VERSION").into(),
            runner_commit: env!("RUNNER_GIT_COMMIT").into(),
            git_commit,
            git_dirty,
            libtorch: libtorch_version().into(),
            device: device_name(spec.device),
            host: crate::track::runs::host_name(),
            user: crate::track::runs::user_name(),
            started: now.to_rfc3339(),
            ended: None,
            duration_s: None,
            sweep: spec.sweep.as_ref().map(|s| s.id.clone()),
            rerun_of: spec.rerun_of.clone(),
            sources: vec![],
            params,
            data: vec![],
            attempts: vec![],
            fits: vec![],
            goals: BTreeMap::new(),
            weights: vec![],
            extra,
        };
        record.write(&dir)?;
        let metrics = Arc::new(MetricsLog::create(&dir)?);
        Ok(Session {
            seed: spec.seed,
            device: spec.device,
            metrics,
            record: Arc::new(LiveRecord::new(&dir, record)),
            dir,
            started: Instant::now(),
            attempt_started: now.to_rfc3339(),
            fits: Arc::default(),
            group: None,
            _lock: lock,
        })
    }

    /// Reopens an interrupted (or killed) run's folder to resume it: the record goes back
    /// to `running` with this process's pid and one more entry in `resumed`, the attempt
    /// before is listed in `attempts` (as `crashed` when its process died without closing
    /// the record), and metrics.jsonl keeps what the last checkpoint had written.
    pub fn resume(dir: &Path, spec: &RunSpec) -> Result<Session> {
        let (device, sweep) = (spec.device, spec.sweep.as_ref());
        // Before anything is read: two resumes of one run must not both continue it.
        let lock = lock(dir, &format!("run {}", dir.display()))?;
        let mut record = RunRecord::read(dir)?;
        if record.attempts.is_empty() || record.status == Status::Running {
            let earlier = unlisted_attempt(&record, dir);
            record.attempts.push(earlier);
        }
        let keep = crate::learn::resume::metrics_lines_kept(dir)?;
        let mut extra = std::mem::take(&mut record.extra);
        extra.insert("pid".into(), toml::Value::Integer(std::process::id() as i64));
        match crate::track::runs::process_start_time(std::process::id()) {
            Some(t) => extra.insert("pid_start".into(), toml::Value::Integer(t as i64)),
            None => extra.remove("pid_start"),
        };
        extra.remove("signal");
        record_compute(&mut extra, spec);
        if let Some(slurm) = slurm_info() {
            extra.insert("slurm".into(), toml::Value::Table(slurm));
        }
        if let Some(sweep) = sweep {
            extra.insert("attempt".into(), toml::Value::Integer(sweep.attempt as i64));
        }
        let mut resumed = extra.get("resumed").and_then(|v| v.as_array()).cloned().unwrap_or_default();
        resumed.push(toml::Value::String(chrono::Local::now().to_rfc3339()));
        extra.insert("resumed".into(), toml::Value::Array(resumed));
        record.extra = extra;
        record.status = Status::Running;
        record.error = None;
        record.ended = None;
        record.host = crate::track::runs::host_name();
        record.duration_s = None;
        record.write(dir)?;
        let metrics = Arc::new(MetricsLog::resume(dir, keep)?);
        Ok(Session {
            dir: dir.to_path_buf(),
            seed: record.seed,
            device,
            metrics,
            record: Arc::new(LiveRecord::new(dir, record)),
            started: Instant::now(),
            attempt_started: chrono::Local::now().to_rfc3339(),
            fits: Arc::default(),
            group: None,
            _lock: lock,
        })
    }

    pub fn record(&self) -> RunRecord {
        self.record.get()
    }

    /// Copies a source file (the script or a module) into `script/` of the run folder.
    pub fn keep_source(&self, path: &Path, rel: &Path) -> Result<()> {
        let dest = self.dir.join("script").join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(path, &dest).with_context(|| format!("cannot copy {} into the run", path.display()))?;
        let rel = format!("script/{}", rel.display());
        self.record.update(|rec| {
            let new = !rec.sources.contains(&rel);
            if new {
                rec.sources.push(rel);
            }
            new
        })
    }

    /// Records a parameter the script resolved while running.
    pub fn set_param(&self, name: &str, p: Param) -> Result<()> {
        self.record.update(|rec| {
            let changed = rec.params.get(name) != Some(&p);
            if changed {
                rec.params.insert(name.to_string(), p);
            }
            changed
        })
    }

    /// Sets a table or value of the record's own (e.g. `dist`, the data-parallel group).
    pub fn set_extra(&self, key: &str, value: toml::Value) -> Result<()> {
        self.record.update(|rec| {
            rec.extra.insert(key.to_string(), value);
            true
        })
    }

    /// Records a data set the script resolved (once per name and folder).
    pub fn record_data(&self, d: crate::track::DataUse) -> Result<()> {
        self.record.update(|rec| {
            let new = !rec.data.iter().any(|x| x.name == d.name && x.folder == d.folder);
            if new {
                rec.data.push(d);
            }
            new
        })
    }

    /// Records which way a logged metric is better.
    pub fn note_goal(&self, name: &str, goal: Goal) -> Result<()> {
        self.record.update(|rec| rec.note_goal(name, goal))
    }

    /// Records the weights body `index` (in the order the script makes bodies) started
    /// from. A resumed run keeps what its first attempt recorded: its bodies are restored
    /// from the checkpoints, whatever they start from now.
    pub fn record_weights(&self, index: usize, w: crate::track::WeightsUse) -> Result<()> {
        self.record.update(|rec| {
            let new = index >= rec.weights.len();
            if new {
                rec.weights.push(w);
            }
            new
        })
    }

    /// Writes the final status and lists this attempt; called exactly once whatever happened.
    pub fn finish(&self, status: Status, error: Option<String>) -> Result<()> {
        let signal = interrupt_signal().filter(|_| status == Status::Interrupted);
        self.record.finish(|rec| {
            rec.status = status;
            rec.error = error;
            if let Some(sig) = signal {
                rec.extra.insert("signal".into(), toml::Value::String(sig.into()));
            }
            let ops = crate::torch_ext::nondeterministic_ops();
            if !ops.is_empty() {
                rec.extra.insert("nondeterministic_ops".into(), toml::Value::Array(ops.into_iter().map(toml::Value::String).collect()));
            }
            let ended = chrono::Local::now().to_rfc3339();
            rec.attempts.push(Attempt {
                started: self.attempt_started.clone(),
                ended: Some(ended.clone()),
                duration_s: Some(millis(self.started.elapsed().as_secs_f64())),
                status: status.to_string(),
                host: rec.host.clone(),
                signal: signal.map(String::from),
                slurm_job_id: slurm_job_name(),
            });
            rec.ended = Some(ended);
            rec.duration_s = Some(millis(rec.attempts.iter().filter_map(|a| a.duration_s).sum()));
        })
    }
}

fn millis(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// The attempt a record does not list yet, seen from the record when resuming: a record
/// still `running` is one whose process died (it ended when its files were last written);
/// one of an older runner that closed it without listing attempts is taken from its
/// `started`, `ended` and `duration_s`.
fn unlisted_attempt(rec: &RunRecord, dir: &Path) -> Attempt {
    let started = rec.extra.get("resumed").and_then(|v| v.as_array()).and_then(|a| a.last()).and_then(|v| v.as_str()).unwrap_or(&rec.started);
    let slurm = rec.extra.get("slurm").and_then(|s| s.as_table());
    let slurm_job_id = slurm.and_then(|s| match (s.get("array_job_id"), s.get("array_task_id")) {
        (Some(j), Some(t)) => Some(format!("{}_{}", crate::track::record::value_string(j), crate::track::record::value_string(t))),
        _ => s.get("job_id").map(crate::track::record::value_string),
    });
    if rec.status != Status::Running {
        return Attempt {
            started: started.to_string(),
            ended: rec.ended.clone(),
            duration_s: rec.duration_s,
            status: rec.status.to_string(),
            host: rec.host.clone(),
            signal: rec.extra.get("signal").and_then(|v| v.as_str()).map(String::from),
            slurm_job_id,
        };
    }
    let last_write = ["log.jsonl", crate::track::metrics::METRICS_FILE, crate::track::record::RECORD_FILE]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).and_then(|m| m.modified()).ok())
        .max()
        .map(chrono::DateTime::<chrono::Local>::from);
    let start = chrono::DateTime::parse_from_rfc3339(started).ok();
    let duration_s = match (start, last_write) {
        (Some(s), Some(e)) => Some(millis(((e.timestamp_millis() - s.timestamp_millis()).max(0)) as f64 / 1000.0)),
        _ => None,
    };
    Attempt {
        started: started.to_string(),
        ended: last_write.map(|t| t.to_rfc3339()),
        duration_s,
        status: "crashed".into(),
        host: rec.host.clone(),
        signal: None,
        slurm_job_id,
    }
}

/// The commit and dirty flag of the git checkout holding the script, if any.
fn git_state(script: &Path) -> (Option<String>, Option<bool>) {
    let dir = script.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
            (Some(commit), dirty)
        }
        None => (None, None),
    }
}
