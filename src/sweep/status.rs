//! Where each point of a sweep stands, reconciled from the runner's own records (the
//! truth: many clusters have no accounting, and finished jobs leave `squeue` within
//! minutes) and what the queue still says (pending, running, or a finished state); and
//! what follows from it: what a resubmit runs again, and waiting until all have finished.
use super::manifest::{Backend, Manifest, Point};
use super::slurm::{self, Queued};
use crate::track::{find_run, RunEntry, RunRecord, Status};
use anyhow::Result;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PointState {
    Pending,
    Running,
    Completed,
    Failed,
    Missing,
}

impl PointState {
    pub fn finished(self) -> bool {
        !matches!(self, PointState::Pending | PointState::Running)
    }
    /// What `resubmit` runs again.
    pub fn needs_resubmit(self) -> bool {
        matches!(self, PointState::Failed | PointState::Missing)
    }
}

impl std::fmt::Display for PointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PointState::Pending => "pending",
            PointState::Running => "running",
            PointState::Completed => "completed",
            PointState::Failed => "failed",
            PointState::Missing => "missing",
        })
    }
}

/// One row of `runner sweep status`.
#[derive(Debug, Clone, Serialize)]
pub struct PointStatus {
    pub index: usize,
    pub params: BTreeMap<String, String>,
    pub state: PointState,
    /// The run's id (from its record, once the task has started).
    pub run_id: Option<String>,
    /// The run folder of the latest attempt.
    pub run: Option<String>,
    /// `<array job>_<task>` as Slurm names array tasks (squeue, scancel).
    pub slurm_job_id: Option<String>,
    pub slurm_array_job_id: Option<String>,
    pub slurm_array_task_id: Option<usize>,
    pub attempts: usize,
    /// Why a point failed or is missing (the error's first line, or what Slurm said).
    pub reason: Option<String>,
}

/// Every point's status; asks `squeue` once for Slurm sweeps.
pub fn status(m: &Manifest) -> Result<Vec<PointStatus>> {
    let queue = match m.backend {
        Backend::Slurm if m.arrays.iter().any(|a| a.job.is_some()) => slurm::queue(&slurm::job_name(&m.id))?,
        _ => HashMap::new(),
    };
    Ok(m.points.iter().map(|p| point_status(m, p, &queue)).collect())
}

fn point_status(m: &Manifest, p: &Point, queue: &HashMap<(String, usize), Queued>) -> PointStatus {
    let mut s = PointStatus {
        index: p.index,
        params: p.params().into_iter().collect(),
        state: PointState::Missing,
        run_id: None,
        run: None,
        slurm_job_id: None,
        slurm_array_job_id: None,
        slurm_array_task_id: None,
        attempts: p.attempts.len(),
        reason: None,
    };
    let Some(attempt) = p.attempts.last() else {
        s.reason = Some("never submitted".into());
        return s;
    };
    s.run = Some(attempt.run.clone());
    let sub = &m.arrays[attempt.array];
    if let Some(job) = &sub.job {
        s.slurm_job_id = Some(format!("{job}_{}", attempt.task));
        s.slurm_array_job_id = Some(job.clone());
        s.slurm_array_task_id = Some(attempt.task);
    }
    let queued = sub.job.as_ref().and_then(|j| queue.get(&(j.clone(), attempt.task)));
    let dir = m.runs_dir().join(&attempt.run);
    let record = RunRecord::read(&dir).ok().filter(|_| dir.join(crate::track::record::RECORD_FILE).exists());
    if let Some(r) = &record {
        s.run_id = Some(r.id.clone());
    }
    let active = queued.filter(|q| q.active());
    let local_alive = m.backend == Backend::Local && local_batch_alive(sub);
    (s.state, s.reason) = match (record, active) {
        (Some(r), _) if r.status == Status::Completed => (PointState::Completed, None),
        (Some(r), _) if r.status == Status::Failed => (PointState::Failed, Some(first_line(r.error.as_deref().unwrap_or("failed")))),
        (Some(_), Some(q)) if q.pending() => (PointState::Pending, None),
        (Some(_), Some(_)) => (PointState::Running, None),
        (Some(r), None) if r.status == Status::Interrupted => {
            let sig = r.extra.get("signal").and_then(|v| v.as_str()).unwrap_or("a signal");
            (PointState::Failed, Some(format!("interrupted by {sig}; `runner sweep resubmit` resumes it from its last epoch")))
        }
        (Some(r), None) => {
            // The queue no longer runs it, but its process may still be closing its record
            // (a cancelled task writing its checkpoint): alive on this host means running.
            // On another host, a record the queue has let go of is a dead task.
            let here = r.host == crate::track::runs::host_name();
            let entry = RunEntry { dir: dir.clone(), record: r };
            if here && entry.shown_status() == "running" {
                (PointState::Running, None)
            } else {
                let slurm = queued.map(|q| format!(" (Slurm: {})", q.state)).unwrap_or_default();
                (PointState::Failed, Some(format!("the task ended without closing its record: killed or its node died{slurm}")))
            }
        }
        (None, Some(q)) if q.pending() => (PointState::Pending, None),
        (None, Some(_)) => (PointState::Running, None),
        (None, None) if local_alive => (PointState::Pending, None),
        (None, None) => {
            let output = last_output_line(&dir);
            match queued {
                Some(q) => (PointState::Failed, Some(format!("Slurm: {} before the run started{output}", q.state))),
                None => (PointState::Missing, Some(format!("no record and no longer queued{output}"))),
            }
        }
    };
    s
}

fn first_line(s: &str) -> String {
    s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string()
}

/// The last line the task printed (its Slurm output or local log), to say why it never ran.
fn last_output_line(run_dir: &Path) -> String {
    let Ok(rd) = std::fs::read_dir(run_dir) else { return String::new() };
    let mut last = String::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("slurm-") || name == super::local::OUTPUT_FILE {
            if let Some(l) =
                std::fs::read_to_string(e.path()).ok().and_then(|t| t.lines().rev().map(str::trim).find(|l| !l.is_empty()).map(String::from))
            {
                last = format!(": {l}");
            }
        }
    }
    last
}

fn local_batch_alive(sub: &super::manifest::ArraySub) -> bool {
    match (sub.pid, sub.pid_start) {
        (Some(pid), Some(start)) => crate::track::runs::process_start_time(pid) == Some(start),
        _ => false,
    }
}

/// The points a resubmit runs again (failed and missing), and every point's status.
pub fn to_resubmit(m: &Manifest) -> Result<(Vec<usize>, Vec<PointStatus>)> {
    let rows = status(m)?;
    let points = rows.iter().filter(|r| r.state.needs_resubmit()).map(|r| r.index).collect();
    Ok((points, rows))
}

/// The run of each point's latest attempt, where it has a readable record.
pub fn latest_runs(m: &Manifest) -> Vec<RunEntry> {
    m.points.iter().filter_map(|p| p.attempts.last()).filter_map(|a| find_run(&m.runs_dir(), &a.run).ok()).collect()
}

/// How often `wait` looks: `RUNNER_SWEEP_POLL_SECS`, else 5 s.
fn poll() -> Duration {
    Duration::from_secs(std::env::var("RUNNER_SWEEP_POLL_SECS").ok().and_then(|v| v.parse().ok()).filter(|&s| s > 0).unwrap_or(5))
}

/// Waits until no point of the sweep in `sweep_dir` is pending or running, saying on
/// stderr as each one finishes; returns the manifest and the final rows.
pub fn wait(sweep_dir: &Path) -> Result<(Manifest, Vec<PointStatus>)> {
    let poll = poll();
    let mut last: Vec<PointState> = Vec::new();
    let mut queue_errors = 0;
    loop {
        let m = Manifest::read(sweep_dir)?;
        let rows = match status(&m) {
            Ok(r) => r,
            // squeue can fail for a moment (slurmctld busy or restarting): try again.
            Err(e) if queue_errors < 5 => {
                queue_errors += 1;
                eprintln!("runner: {e:#} (retrying)");
                std::thread::sleep(poll);
                continue;
            }
            Err(e) => return Err(e),
        };
        queue_errors = 0;
        for r in &rows {
            if last.get(r.index) != Some(&r.state) && r.state.finished() {
                let why = r.reason.as_deref().map(|w| format!(": {w}")).unwrap_or_default();
                let params = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
                eprintln!("point {} ({}): {}{}", r.index, crate::text_table::safe(&params), r.state, crate::text_table::safe(&why));
            }
        }
        last = rows.iter().map(|r| r.state).collect();
        if rows.iter().all(|r| r.state.finished()) {
            return Ok((m, rows));
        }
        std::thread::sleep(poll);
    }
}

/// Counts per state, in a fixed order, for one-line summaries.
pub fn summary(rows: &[PointStatus]) -> String {
    let states = [PointState::Completed, PointState::Running, PointState::Pending, PointState::Failed, PointState::Missing];
    states
        .iter()
        .filter_map(|st| {
            let n = rows.iter().filter(|r| r.state == *st).count();
            (n > 0).then(|| format!("{n} {st}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
