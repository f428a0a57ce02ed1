//! `runner compare`, `runner rerun` and `runner sweep`: put runs side by side, repeat a
//! run exactly from its record, and run a grid of params as one group.
use super::run::{check, execute};
use super::{RunOptions, TrackArgs};
use crate::plot::{Chart, Series};
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

fn print_comparison(runs: &[RunEntry], a: &CompareArgs) -> Result<()> {
    let c = compare(runs, a.all)?;
    for (run, line, e) in &c.damaged {
        eprintln!("runner: {run}/metrics.jsonl line {line} is damaged and was skipped ({e})");
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

/// Runs the recorded copy of the script with the recorded params and seed.
pub fn rerun_cmd(root: &Path, name: &str, device: Option<String>, track: TrackArgs) -> Result<i32> {
    let old = find_run(root, name)?;
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
    let sets: Vec<String> = old
        .record
        .params
        .iter()
        .map(|(k, p)| {
            format!(
                "{k}={}",
                match &p.value {
                    toml::Value::String(s) => s.clone(),
                    v => v.to_string(),
                }
            )
        })
        .collect();
    let opts = RunOptions {
        sets,
        config: None,
        seed: old.record.seed,
        device: device.unwrap_or_else(|| if old.record.device == "cpu" { "cpu".into() } else { "auto".into() }),
        runs_dir: root.to_path_buf(),
        track,
        ..RunOptions::with_default_limits()
    };
    let mut command = vec!["runner".to_string(), "rerun".into(), name.into()];
    command.extend(opts.sets.iter().flat_map(|s| ["--set".to_string(), s.clone()]));
    let out = execute(&script, &opts, command, None, Some(old.folder()));
    let Some(dir) = out.dir else { return Ok(out.code) };
    let new = find_run(root, &dir.display().to_string())?;
    println!();
    print_comparison(&[old.clone_entry()?, new], &CompareArgs { all: false, plot: None, markdown: false, json: false })?;
    let (a, b) = (std::fs::read(old.dir.join("metrics.jsonl")).unwrap_or_default(), std::fs::read(dir.join("metrics.jsonl")).unwrap_or_default());
    println!("\nmetrics.jsonl {}", if a == b { "identical to the original run" } else { "differs from the original run" });
    Ok(out.code)
}

/// One run per combination of `--grid name=v1,v2` values, grouped under a sweep id.
pub fn sweep_cmd(script: &Path, grids: &[String], base: &RunOptions) -> Result<i32> {
    let mut axes: Vec<(String, Vec<String>)> = Vec::new();
    for g in grids {
        let Some((k, vs)) = g.split_once('=') else { bail!("--grid `{g}`: expected name=v1,v2,...") };
        let values: Vec<String> = vs.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            bail!("--grid `{g}` has no values");
        }
        let k = k.trim().to_string();
        if axes.iter().any(|(a, _)| *a == k) {
            bail!("--grid names `{k}` twice: give all its values in one --grid {k}=v1,v2,...");
        }
        axes.push((k, values));
    }
    if axes.is_empty() {
        bail!("give at least one --grid name=v1,v2");
    }
    let mut combos: Vec<Vec<String>> = vec![vec![]];
    for (k, vs) in &axes {
        combos = combos.iter().flat_map(|c| vs.iter().map(move |v| [c.clone(), vec![format!("{k}={v}")]].concat())).collect();
    }
    // Every point is checked before the first starts: a bad value fails the sweep, not its tenth run.
    let points: Vec<RunOptions> = combos
        .iter()
        .map(|combo| {
            let mut opts = base.clone();
            opts.sets.extend(combo.iter().cloned());
            opts
        })
        .collect();
    for (combo, opts) in combos.iter().zip(&points) {
        if let Err(out) = check(script, opts) {
            eprintln!("runner: sweep point {} refused; no run started", combo.join(" "));
            return Ok(out.code);
        }
    }
    let id = format!("sweep-{}-{:04x}", chrono::Local::now().format("%Y%m%d-%H%M%S"), rand::random::<u16>());
    eprintln!("{id}: {} runs", combos.len());
    let mut dirs = Vec::new();
    let mut worst = 0;
    for (combo, opts) in combos.iter().zip(&points) {
        let mut command = vec!["runner".to_string(), "sweep".into(), script.display().to_string()];
        command.extend(combo.iter().flat_map(|s| ["--set".to_string(), s.clone()]));
        let out = execute(script, opts, command, Some(id.clone()), None);
        if out.code == 2 {
            return Ok(2);
        }
        worst = worst.max(out.code);
        dirs.extend(out.dir);
    }
    let runs: Vec<RunEntry> = dirs.iter().map(|d| find_run(&base.runs_dir, &d.display().to_string())).collect::<Result<_>>()?;
    println!("\n{id} (`runner compare {id}`, `runner runs --sweep {id}`, `runner report {id}`)");
    print_comparison(&runs, &CompareArgs { all: false, plot: None, markdown: false, json: false })?;
    Ok(worst)
}
