//! `runner sync <run|last>` and `runner sync --all`: send runs to the MLflow tracking
//! server, only what it lacks.
use super::TrackArgs;
use crate::track::mlflow::sync_run;
use crate::track::{find_run, list_runs, RunEntry};
use anyhow::Result;
use std::path::Path;

pub fn sync_cmd(root: &Path, run: Option<&str>, all: bool, track: &TrackArgs) -> Result<i32> {
    let Some(tracking) = track.settings().tracking().map_err(super::usage)? else {
        return Err(super::usage("no tracking server: set MLFLOW_TRACKING_URI or pass --track http://HOST:PORT"));
    };
    let runs: Vec<RunEntry> = match (run, all) {
        (Some(name), _) => vec![find_run(root, name)?],
        (None, true) => {
            let mut skipped = Vec::new();
            let runs = list_runs(root, &mut skipped)?;
            for (_, why) in skipped {
                eprintln!("runner: skipped {why}");
            }
            runs.into_iter()
                .filter(|r| {
                    let running = r.shown_status() == "running";
                    if running {
                        println!("{}: still running, left to its live mirror", r.folder());
                    }
                    !running
                })
                .collect()
        }
        (None, false) => return Err(super::usage("give a run to sync (last, a folder name, an id prefix) or --all")),
    };
    let mut failed = 0;
    for entry in runs.iter().rev() {
        match sync_run(&tracking.client, entry, tracking.with_models) {
            Ok((state, report)) => {
                println!("{}: {report}{}", entry.folder(), state.page().map(|p| format!(" ({p})")).unwrap_or_default());
                for c in &report.conflicts {
                    eprintln!("runner: warning: {}: param {c} (MLflow cannot change a logged param)", entry.folder());
                }
            }
            Err(e) => {
                eprintln!("runner: {e:#}");
                failed += 1;
            }
        }
    }
    Ok(i32::from(failed > 0))
}
