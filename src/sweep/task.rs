//! One task of a submission (what each Slurm array task or local job runs): the point it
//! stands for, run with the manifest's `RunConfig` in the run folder made for it, or
//! resumed there when an earlier attempt or a requeued task stopped part-way. A point run
//! as a data-parallel group runs this in every rank (one `srun`).
use super::manifest::Manifest;
use crate::run::{execute, Folder, Launch, Outcome};
use crate::session::SweepPoint;
use crate::track::{RunEntry, RunRecord, Status};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// What a task did.
pub enum TaskRun {
    /// Its point had completed already (a requeued task): nothing ran.
    AlreadyCompleted(PathBuf),
    Ran(Outcome),
}

/// Runs task `task` of submission `array` of the sweep in `sweep_dir`.
pub fn run(sweep_dir: &Path, array: usize, task: usize) -> Result<TaskRun> {
    let dir = std::path::absolute(sweep_dir).with_context(|| format!("cannot make {} absolute", sweep_dir.display()))?;
    let m = Manifest::read(&dir)?;
    let (point, attempt, n) = m.task(array, task)?;
    let cfg = m.point_config(&dir, point);
    let run_dir = m.runs_dir().join(&attempt.run);
    // A point's group: the others learn rank 0's folder at joining, and find it in a record
    // rank 0 may be writing; only `completed` (which needs them) is theirs to read.
    let follower = crate::dist::World::from_env()?.is_some_and(|w| w.rank > 0);
    let folder = match RunRecord::read(&run_dir) {
        Ok(r) if r.status == Status::Completed => return Ok(TaskRun::AlreadyCompleted(run_dir)),
        _ if follower => Folder::Made(run_dir),
        Ok(r) => {
            let entry = RunEntry { dir: run_dir.clone(), record: r };
            if entry.shown_status() == "running" {
                bail!(
                    "{} is still running (pid {}): not starting a second process in it",
                    run_dir.display(),
                    entry.record.extra.get("pid").map(|p| p.to_string()).unwrap_or_default()
                );
            }
            Folder::Resume(run_dir)
        }
        Err(_) => Folder::Made(run_dir),
    };
    let command = vec![
        "runner".into(),
        "sweep".into(),
        "task".into(),
        dir.display().to_string(),
        "--array".into(),
        array.to_string(),
        "--task".into(),
        task.to_string(),
    ];
    let sweep = Some(SweepPoint { id: m.id.clone(), index: point.index, attempt: n });
    Ok(TaskRun::Ran(execute(&cfg, Launch { sweep, folder, ..Launch::new(command) })))
}
