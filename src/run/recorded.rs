//! Runs again from a record: `rerun` repeats a run exactly (the copy of its script, its
//! recorded params and seed) in a new folder, and `resume` continues a stopped one in its
//! own folder from its last checkpoint. Both build their `RunConfig` from the record; the
//! argv it keeps (`command`) is information only.
use super::group::RecordedWorld;
use super::{execute, Folder, Launch, Outcome, RunConfig, TrackSettings};
use crate::dist::World;
use crate::script::limits::Limits;
use crate::session::SweepPoint;
use crate::threads::{ThreadSource, Threads};
use crate::track::{find_run, RunEntry};
use anyhow::{bail, Result};
use std::path::Path;

impl RunConfig {
    /// The config that runs a recorded run again: the recorded copy of its script, its
    /// recorded params, seed, thread count and precision (these change the numbers; a
    /// record without them gets today's defaults), on `device` (default: the recorded one
    /// when it is cpu, else auto), with the default limits.
    pub fn recorded(runs_dir: &Path, old: &RunEntry, device: Option<String>, tracking: TrackSettings) -> Result<RunConfig> {
        let script_rel = old
            .record
            .sources
            .first()
            .cloned()
            .unwrap_or_else(|| format!("script/{}", Path::new(&old.record.script).file_name().unwrap_or_default().to_string_lossy()));
        let script = old.dir.join(&script_rel);
        if !script.is_file() {
            bail!("{} has no copy of its script ({script_rel})", old.dir.display());
        }
        Ok(RunConfig {
            script,
            sets: old.record.params.iter().map(|(k, p)| format!("{k}={}", crate::track::record::value_string(&p.value))).collect(),
            grid: vec![],
            config: None,
            seed: old.record.seed,
            device: device.unwrap_or_else(|| if old.record.device == "cpu" { "cpu".into() } else { "auto".into() }),
            runs_dir: runs_dir.to_path_buf(),
            limits: Limits::default(),
            tracking,
            threads: old
                .record
                .extra
                .get("threads")
                .and_then(|v| v.as_integer())
                .filter(|&n| n > 0)
                .map(|n| Threads { count: n as usize, from: ThreadSource::Recorded }),
            precision: old
                .record
                .extra
                .get("precision")
                .and_then(|v| v.as_str())
                .and_then(|p| p.parse().ok())
                .unwrap_or(crate::precision::UNRECORDED),
        })
    }
}

/// A rerun: the run it repeats, and how the new one went.
pub struct Rerun {
    pub old: RunEntry,
    pub outcome: Outcome,
}

/// `runner rerun <run>`: the recorded run again, in a new folder that names it in `rerun_of`.
pub fn rerun(runs_dir: &Path, name: &str, device: Option<String>, tracking: TrackSettings) -> Result<Rerun> {
    let old = find_run(runs_dir, name)?;
    let cfg = RunConfig::recorded(runs_dir, &old, device, tracking)?;
    let mut command = vec!["runner".to_string(), "rerun".into(), name.into()];
    command.extend(cfg.sets.iter().flat_map(|s| ["--set".to_string(), s.clone()]));
    let launch = Launch { rerun_of: Some(old.folder()), rerun_weights: old.record.weights.clone(), ..Launch::new(command) };
    let outcome = execute(&cfg, launch);
    Ok(Rerun { old, outcome })
}

/// Whether two runs logged the same metrics.jsonl, byte for byte (a missing file reads as empty).
pub fn same_metrics(a: &Path, b: &Path) -> bool {
    let read = |d: &Path| std::fs::read(d.join(crate::track::metrics::METRICS_FILE)).unwrap_or_default();
    read(a) == read(b)
}

/// A stopped run `resume` may continue: not completed, and no process still in it. A rank
/// other than 0 of a resumed group finds the record `running` (rank 0 reopened it first)
/// and leaves that check to rank 0.
fn resumable(old: &RunEntry, follower: bool) -> Result<()> {
    match old.shown_status().as_str() {
        "completed" => bail!("{} completed: nothing to resume (`runner rerun` runs it again)", old.folder()),
        "running" if !follower => {
            bail!("{} is still running (pid {})", old.folder(), old.record.extra.get("pid").map(|p| p.to_string()).unwrap_or_default())
        }
        _ => Ok(()),
    }
}

/// A data-parallel run that `runner launch` started, to resume from a process outside any
/// group: `runner resume` starts the group again, each of `world.size` ranks resuming it.
pub struct Relaunch {
    pub run: RunEntry,
    pub world: RecordedWorld,
}

/// The group to start again when `runner resume <run>` runs outside a group and the run was
/// one that `runner launch` started (None: resume in this process).
pub fn relaunch(runs_dir: &Path, name: &str) -> Result<Option<Relaunch>> {
    if World::from_env()?.is_some() {
        return Ok(None);
    }
    let run = find_run(runs_dir, name)?;
    let world = RecordedWorld::of(&run.record);
    if world.size == 1 || world.launcher != "runner launch" {
        return Ok(None);
    }
    resumable(&run, false)?;
    Ok(Some(Relaunch { run, world }))
}

/// `runner resume <run>`: continues a stopped run (interrupted, or killed) in its own
/// folder from its last checkpointed epoch, as the sweep point it was, if it was one; a
/// data-parallel run is resumed by the same number of ranks, each running this.
pub fn resume(runs_dir: &Path, name: &str, device: Option<String>, tracking: TrackSettings) -> Result<Outcome> {
    let old = find_run(runs_dir, name)?;
    resumable(&old, World::from_env()?.is_some_and(|w| w.rank > 0))?;
    let cfg = RunConfig::recorded(runs_dir, &old, device, tracking)?;
    let sweep = old.record.sweep.clone().map(|id| SweepPoint {
        id,
        index: old.record.extra.get("sweep_index").and_then(|v| v.as_integer()).unwrap_or(0) as usize,
        attempt: old.record.extra.get("attempt").and_then(|v| v.as_integer()).unwrap_or(1) as usize,
    });
    let launch = Launch {
        command: old.record.command.clone(),
        sweep,
        rerun_of: old.record.rerun_of.clone(),
        rerun_weights: vec![],
        folder: Folder::Resume(old.dir.clone()),
    };
    Ok(execute(&cfg, launch))
}
