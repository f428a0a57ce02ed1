//! `runner compare`, `runner rerun` and `runner resume`: put runs side by side, repeat a
//! run exactly from its record, and continue a stopped run in its own folder.
use super::run::{execute, Folder, Launch};
use super::{RunOptions, TrackArgs};
use crate::plot::{Chart, Series};
use crate::text_table::safe;
use crate::track::compare::{compare, curves, run_labels};
use crate::track::{find_run, find_runs, read_metrics, RunEntry};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

pub struct CompareArgs {
    pub all: bool,
    pub plot: Option<PathBuf>,
    pub markdown: bool,
    pub json: bool,
}

pub fn compare_cmd(root: &Path, names: &[String], a: &CompareArgs) -> Result<()> {
    if names.is_empty() {
        bail!("name the runs to compare (folder, id prefix, last, last~1, ..., or a sweep id)");
    }
    let mut runs: Vec<RunEntry> = Vec::new();
    for n in names {
        runs.extend(find_runs(root, n)?);
    }
    print_comparison(&runs, a)
}

pub(super) fn print_comparison(runs: &[RunEntry], a: &CompareArgs) -> Result<()> {
    let c = compare(runs, a.all)?;
    for (run, line, e) in &c.damaged {
        eprintln!("runner: {}/metrics.jsonl line {line} is damaged and was skipped ({})", safe(run), safe(e));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&c.json)?);
    } else if a.markdown {
        print!("{}", c.markdown());
    } else {
        println!("{}", c.text());
    }
    if let Some(path) = &a.plot {
        plot(runs, path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// One chart per curve, each overlaying every run that has it, runs named by their labels.
fn plot(runs: &[RunEntry], path: &Path) -> Result<()> {
    let mut charts: Vec<Chart> = Vec::new();
    for (r, label) in runs.iter().zip(run_labels(runs)) {
        for c in curves(&read_metrics(&r.dir)?) {
            let series = Series { name: label.clone(), points: c.points };
            match charts.iter_mut().find(|ch| ch.title == c.title) {
                Some(ch) => ch.series.push(series),
                None => charts.push(Chart {
                    title: c.title,
                    x_label: c.x_label.into(),
                    y_label: c.metric,
                    series: vec![series],
                    marks: vec![],
                    log_x: false,
                    integer_x: c.integer_x,
                }),
            }
        }
    }
    if charts.is_empty() {
        bail!("none of these runs logged curves to plot");
    }
    crate::plot::charts(path, &charts)
}

/// The recorded copy of a run's script and the options that run it again exactly: the
/// recorded params and seed, on `device` (default: the recorded one when it is cpu, else auto).
pub fn recorded_run(root: &Path, old: &RunEntry, device: Option<String>, track: TrackArgs) -> Result<(PathBuf, RunOptions)> {
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
    let sets: Vec<String> = old.record.params.iter().map(|(k, p)| format!("{k}={}", crate::track::record::value_string(&p.value))).collect();
    let opts = RunOptions {
        sets,
        config: None,
        seed: old.record.seed,
        device: device.unwrap_or_else(|| if old.record.device == "cpu" { "cpu".into() } else { "auto".into() }),
        runs_dir: root.to_path_buf(),
        track,
        ..RunOptions::with_default_limits()
    };
    Ok((script, opts))
}

/// Runs the recorded copy of the script with the recorded params and seed.
pub fn rerun_cmd(root: &Path, name: &str, device: Option<String>, track: TrackArgs) -> Result<i32> {
    let old = find_run(root, name)?;
    let (script, opts) = recorded_run(root, &old, device, track)?;
    let mut command = vec!["runner".to_string(), "rerun".into(), name.into()];
    command.extend(opts.sets.iter().flat_map(|s| ["--set".to_string(), s.clone()]));
    let out = execute(&script, &opts, Launch { rerun_of: Some(old.folder()), ..Launch::new(command) });
    let Some(dir) = out.dir else { return Ok(out.code) };
    let new = find_run(root, &dir.display().to_string())?;
    println!();
    print_comparison(&[old.clone_entry()?, new], &CompareArgs { all: false, plot: None, markdown: false, json: false })?;
    let (a, b) = (std::fs::read(old.dir.join("metrics.jsonl")).unwrap_or_default(), std::fs::read(dir.join("metrics.jsonl")).unwrap_or_default());
    println!("\nmetrics.jsonl {}", if a == b { "identical to the original run" } else { "differs from the original run" });
    Ok(out.code)
}

/// `runner resume <run>`: continues a stopped run (interrupted, or killed) in its own
/// folder from its last checkpointed epoch.
pub fn resume_cmd(root: &Path, name: &str, device: Option<String>, track: TrackArgs) -> Result<i32> {
    let old = find_run(root, name)?;
    match old.shown_status().as_str() {
        "completed" => bail!("{} completed: nothing to resume (`runner rerun` runs it again)", old.folder()),
        "running" => bail!("{} is still running (pid {})", old.folder(), old.record.extra.get("pid").map(|p| p.to_string()).unwrap_or_default()),
        _ => {}
    }
    let (script, opts) = recorded_run(root, &old, device, track)?;
    let sweep = old.record.sweep.clone().map(|id| crate::session::SweepPoint {
        id,
        index: old.record.extra.get("sweep_index").and_then(|v| v.as_integer()).unwrap_or(0) as usize,
        attempt: old.record.extra.get("attempt").and_then(|v| v.as_integer()).unwrap_or(1) as usize,
    });
    let command = old.record.command.clone();
    Ok(execute(&script, &opts, Launch { sweep, rerun_of: old.record.rerun_of.clone(), folder: Folder::Resume(old.dir.clone()), command }).code)
}
