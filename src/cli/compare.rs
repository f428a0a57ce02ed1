//! `runner compare`, `runner rerun` and `runner resume`: put runs side by side, and show
//! a rerun (`crate::run` repeats the run from its record, or resumes it) beside the original.
use super::run::outcome_code;
use super::TrackArgs;
use crate::plot::{Chart, Series};
use crate::run::{same_metrics, Rerun};
use crate::text_table::safe;
use crate::track::compare::{compare, curves, run_labels, XAxis};
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
        return Err(super::usage("name the runs to compare (folder, id prefix, last, last~1, ..., or a sweep id)"));
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

/// One chart per curve, each overlaying every run that has it against the curve's default
/// axis (epochs for fits, so that runs of different batch sizes line up; steps for logged
/// metrics), runs named by their labels.
fn plot(runs: &[RunEntry], path: &Path) -> Result<()> {
    let mut charts: Vec<Chart> = Vec::new();
    for (r, label) in runs.iter().zip(run_labels(runs)) {
        for c in curves(&read_metrics(&r.dir)?, &r.record.fits) {
            let axis = c.default_axis();
            let series = Series { name: label.clone(), points: c.points(axis).unwrap_or_default() };
            match charts.iter_mut().find(|ch| ch.title == c.title) {
                Some(ch) => ch.series.push(series),
                None => charts.push(Chart {
                    title: c.title,
                    x_label: axis.label().into(),
                    y_label: c.metric,
                    series: vec![series],
                    marks: vec![],
                    log_x: false,
                    integer_x: axis == XAxis::Step,
                }),
            }
        }
    }
    if charts.is_empty() {
        bail!("none of these runs logged curves to plot");
    }
    crate::plot::charts(path, &charts)
}

/// `runner rerun <run>`: runs it again, then shows both side by side and whether their
/// metrics.jsonl are identical.
pub fn rerun_cmd(root: &Path, name: &str, device: Option<String>, track: TrackArgs) -> Result<i32> {
    let Rerun { old, outcome } = crate::run::rerun(root, name, device, track.settings())?;
    let code = outcome_code(&outcome);
    let Ok(ended) = outcome else { return Ok(code) };
    let new = find_run(root, &ended.dir.display().to_string())?;
    let same = same_metrics(&old.dir, &ended.dir);
    println!();
    print_comparison(&[old, new], &CompareArgs { all: false, plot: None, markdown: false, json: false })?;
    println!("\nmetrics.jsonl {}", if same { "identical to the original run" } else { "differs from the original run" });
    Ok(code)
}

/// `runner resume <run>`; a group that `runner launch` started is started again.
pub fn resume_cmd(root: &Path, name: &str, device: Option<String>, track: TrackArgs) -> Result<i32> {
    if let Some(group) = crate::run::relaunch(root, name)? {
        return super::launch::resume_group(root, &group, device, &track);
    }
    Ok(outcome_code(&crate::run::resume(root, name, device, track.settings())?))
}
