//! A run in progress: its folder, record, logs and metrics. Created before the script
//! starts and finished whatever happens (completed, failed, interrupted), so every run
//! leaves a readable record.
use crate::device::{device_name, libtorch_version};
use crate::track::lock::{lock, FolderLock};
use crate::track::{MetricsLog, Param, RunRecord, Status};
use anyhow::{Context, Result};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
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
    record: Mutex<RunRecord>,
    started: Instant,
    /// Time spent by earlier attempts of a resumed run.
    earlier_s: f64,
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
            started: now.to_rfc3339(),
            ended: None,
            duration_s: None,
            sweep: spec.sweep.as_ref().map(|s| s.id.clone()),
            rerun_of: spec.rerun_of.clone(),
            sources: vec![],
            params,
            data: vec![],
            extra,
        };
        record.write(&dir)?;
        let metrics = Arc::new(MetricsLog::create(&dir)?);
        Ok(Session {
            dir,
            seed: spec.seed,
            device: spec.device,
            metrics,
            record: Mutex::new(record),
            started: Instant::now(),
            earlier_s: 0.0,
            fits: Arc::default(),
            group: None,
            _lock: lock,
        })
    }

    /// Reopens an interrupted (or killed) run's folder to resume it: the record goes back
    /// to `running` with this process's pid and one more entry in `resumed`, and
    /// metrics.jsonl keeps what the last checkpoint had written.
    pub fn resume(dir: &Path, device: Device, sweep: Option<&SweepPoint>) -> Result<Session> {
        // Before anything is read: two resumes of one run must not both continue it.
        let lock = lock(dir, &format!("run {}", dir.display()))?;
        let mut record = RunRecord::read(dir)?;
        let keep = crate::learn::resume::metrics_lines_kept(dir)?;
        let mut extra = std::mem::take(&mut record.extra);
        extra.insert("pid".into(), toml::Value::Integer(std::process::id() as i64));
        match crate::track::runs::process_start_time(std::process::id()) {
            Some(t) => extra.insert("pid_start".into(), toml::Value::Integer(t as i64)),
            None => extra.remove("pid_start"),
        };
        extra.remove("signal");
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
        let earlier_s = record.duration_s.take().unwrap_or(0.0);
        record.write(dir)?;
        let metrics = Arc::new(MetricsLog::resume(dir, keep)?);
        Ok(Session {
            dir: dir.to_path_buf(),
            seed: record.seed,
            device,
            metrics,
            record: Mutex::new(record),
            started: Instant::now(),
            earlier_s,
            fits: Arc::default(),
            group: None,
            _lock: lock,
        })
    }

    pub fn record(&self) -> RunRecord {
        self.record.lock().unwrap().clone()
    }

    /// Copies a source file (the script or a module) into `script/` of the run folder.
    pub fn keep_source(&self, path: &Path, rel: &Path) -> Result<()> {
        let dest = self.dir.join("script").join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(path, &dest).with_context(|| format!("cannot copy {} into the run", path.display()))?;
        let mut rec = self.record.lock().unwrap();
        let rel = format!("script/{}", rel.display());
        if !rec.sources.contains(&rel) {
            rec.sources.push(rel);
            rec.write(&self.dir)?;
        }
        Ok(())
    }

    /// Records a parameter the script resolved while running.
    pub fn set_param(&self, name: &str, p: Param) -> Result<()> {
        let mut rec = self.record.lock().unwrap();
        if rec.params.get(name) != Some(&p) {
            rec.params.insert(name.to_string(), p);
            rec.write(&self.dir)?;
        }
        Ok(())
    }

    /// Sets a table or value of the record's own (e.g. `dist`, the data-parallel group).
    pub fn set_extra(&self, key: &str, value: toml::Value) -> Result<()> {
        let mut rec = self.record.lock().unwrap();
        rec.extra.insert(key.to_string(), value);
        rec.write(&self.dir)
    }

    /// Records a data set the script resolved (once per name and folder).
    pub fn record_data(&self, d: crate::track::DataUse) -> Result<()> {
        let mut rec = self.record.lock().unwrap();
        if !rec.data.iter().any(|x| x.name == d.name && x.folder == d.folder) {
            rec.data.push(d);
            rec.write(&self.dir)?;
        }
        Ok(())
    }

    /// Writes the final status; called exactly once whatever happened.
    pub fn finish(&self, status: Status, error: Option<String>) -> Result<()> {
        let mut rec = self.record.lock().unwrap();
        rec.status = status;
        rec.error = error;
        if let (Status::Interrupted, Some(sig)) = (status, interrupt_signal()) {
            rec.extra.insert("signal".into(), toml::Value::String(sig.into()));
        }
        let ops = crate::torch_ext::nondeterministic_ops();
        if !ops.is_empty() {
            rec.extra.insert("nondeterministic_ops".into(), toml::Value::Array(ops.into_iter().map(toml::Value::String).collect()));
        }
        rec.ended = Some(chrono::Local::now().to_rfc3339());
        rec.duration_s = Some(((self.earlier_s + self.started.elapsed().as_secs_f64()) * 1000.0).round() / 1000.0);
        rec.write(&self.dir)
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
