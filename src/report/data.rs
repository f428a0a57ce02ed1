//! What a report shows, gathered from the run folders: per run its label, params, status,
//! attempts, error, final and best metrics, what identifies its code and machine, and its
//! pictures (as data: URIs); per curve every run's points along each x axis it has.
//! Runs come in the order given (a sweep's in point order); the sweep's params lead the
//! table. Serialised to JSON for the page's script.
use crate::track::compare::{best, best_of, curves, goal_of, run_labels, XAxis};
use crate::track::provenance::provenance;
use crate::track::{read_metrics, Attempt, Goal, MetricsFile, RunEntry};
use anyhow::{Context, Result};
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Serialize)]
pub struct ReportData {
    pub title: String,
    pub generated: String,
    pub runs: Vec<RunData>,
    /// The table's metric columns, in order.
    pub columns: Vec<MetricColumn>,
    /// The params the table shows first: a sweep's grid, in its order, else those whose
    /// values differ between the runs.
    pub leading: Vec<String>,
    pub charts: Vec<ChartData>,
}

#[derive(Serialize)]
pub struct RunData {
    pub label: String,
    pub folder: String,
    pub id: String,
    pub script: String,
    pub status: String,
    pub error: Option<String>,
    pub started: String,
    pub duration_s: Option<f64>,
    pub attempts: Vec<Attempt>,
    pub seed: u64,
    pub sweep: Option<String>,
    pub params: BTreeMap<String, String>,
    /// One value per entry of `ReportData::columns` (None where the run lacks it).
    pub values: Vec<Option<f64>>,
    pub images: Vec<Image>,
    pub damaged_lines: usize,
    /// What identifies its code and machine: (label, value).
    pub provenance: Vec<(String, String)>,
}

#[derive(Serialize)]
pub struct MetricColumn {
    pub name: String,
    /// Which way it is better; None: not ranked.
    pub goal: Option<Goal>,
    /// The run whose value is best, when the runs differ.
    pub best: Option<usize>,
}

#[derive(Serialize)]
pub struct Image {
    pub name: String,
    pub data_uri: String,
}

#[derive(Serialize)]
pub struct ChartData {
    pub title: String,
    pub y_label: String,
    /// The x axes the chart can switch between, the default first: `epoch`, `batch`,
    /// `samples`, or `step` alone.
    pub axes: Vec<XAxis>,
    /// `{run, y, epoch, batch, samples, step}` rows (the axes a point has), every run's
    /// points together (Vega-Lite's table form).
    pub values: Vec<Value>,
}

/// Pictures a run leaves, in the order they are shown.
fn images(dir: &Path) -> Result<Vec<Image>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|n| n.ends_with(".png"))
        .collect();
    let rank = |n: &str| match n {
        "batch.png" => 0,
        "lr_find.png" => 1,
        n if n.starts_with("loss_fit") => 2,
        _ => 3,
    };
    // loss_fit10 after loss_fit9
    names.sort_by_key(|n| (rank(n), n.len(), n.clone()));
    names
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).with_context(|| format!("cannot read {}", dir.join(&name).display()))?;
            let data_uri = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes));
            Ok(Image { name, data_uri })
        })
        .collect()
}

/// Final and best value of every series, keyed like the compare table (single values once,
/// no best of a metric without a goal).
fn metric_values(m: &MetricsFile, multi: &dyn Fn(&str) -> bool, goal: &dyn Fn(&str) -> Option<Goal>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in m.series() {
        let label = s.label();
        let last = s.values.last().copied().unwrap_or(f64::NAN);
        if multi(&label) {
            out.insert(format!("{label} (final)"), last);
            if let Some(b) = best(goal(&s.name), &s.values) {
                out.insert(format!("{label} (best)"), b);
            }
        } else {
            out.insert(label, last);
        }
    }
    out
}

/// The params the table leads with: the grid of the sweep all the runs belong to (in the
/// order its axes were given), else the params whose values differ, by name.
fn leading_params(runs: &[RunEntry]) -> Vec<String> {
    let sweep = runs.first().and_then(|r| r.record.sweep.clone()).filter(|s| runs.iter().all(|r| r.record.sweep.as_ref() == Some(s)));
    let grid = sweep.and_then(|id| {
        let runs_dir = runs[0].dir.parent()?;
        let m = crate::sweep::Manifest::read(&crate::sweep::manifest::sweeps_dir(runs_dir).join(id)).ok()?;
        Some(m.grid.into_iter().map(|a| a.name).collect::<Vec<_>>())
    });
    if let Some(g) = grid {
        return g;
    }
    let params: Vec<BTreeMap<String, String>> = runs.iter().map(|r| r.record.param_strings()).collect();
    let mut differing: Vec<String> = params.iter().flat_map(|p| p.keys().cloned()).collect();
    differing.sort();
    differing.dedup();
    differing.retain(|k| params.iter().any(|p| p.get(k) != params[0].get(k)));
    differing
}

pub fn gather(runs: &[RunEntry], title: &str) -> Result<ReportData> {
    let metrics: Vec<MetricsFile> = runs.iter().map(|r| read_metrics(&r.dir)).collect::<Result<_>>()?;
    let labels = run_labels(runs);
    // Column order: logged metrics, then fit by fit (as `series` gives them); a key with
    // more than one value in any run gets final and best columns.
    let mut keys: Vec<(String, String, bool, Option<usize>)> = Vec::new(); // (label, metric name, multi, fit)
    for s in metrics.iter().flat_map(|m| m.series()) {
        let label = s.label();
        match keys.iter_mut().find(|k| k.0 == label) {
            Some(k) => k.2 |= s.values.len() > 1,
            None => keys.push((label, s.name.clone(), s.values.len() > 1, s.fit)),
        }
    }
    keys.sort_by_key(|k| k.3.unwrap_or(0));
    let multi = |label: &str| keys.iter().any(|k| k.0 == label && k.2);
    let goal = |name: &str| goal_of(runs, name);
    let per_run: Vec<BTreeMap<String, f64>> = metrics.iter().map(|m| metric_values(m, &multi, &goal)).collect();
    let mut columns: Vec<MetricColumn> = Vec::new();
    for (label, name, is_multi, _) in &keys {
        let g = goal(name);
        let names = match (*is_multi, g) {
            (false, _) => vec![label.clone()],
            (true, None) => vec![format!("{label} (final)")],
            (true, Some(_)) => vec![format!("{label} (final)"), format!("{label} (best)")],
        };
        for n in names {
            let values: Vec<Option<f64>> = per_run.iter().map(|v| v.get(&n).copied()).collect();
            columns.push(MetricColumn { best: best_of(g, &values), name: n, goal: g });
        }
    }
    let mut run_data = Vec::new();
    for (((r, label), m), values) in runs.iter().zip(&labels).zip(&metrics).zip(&per_run) {
        let rec = &r.record;
        run_data.push(RunData {
            label: label.clone(),
            folder: r.folder(),
            id: rec.id.clone(),
            script: rec.script.clone(),
            status: r.shown_status(),
            error: rec.error.clone(),
            started: rec.started.clone(),
            duration_s: rec.duration_s,
            attempts: rec.attempts.clone(),
            seed: rec.seed,
            sweep: rec.sweep.clone(),
            params: rec.param_strings(),
            values: columns.iter().map(|c| values.get(&c.name).copied()).collect(),
            images: images(&r.dir)?,
            damaged_lines: m.damaged.len(),
            provenance: provenance(rec).into_iter().map(|f| (f.label.to_string(), f.value)).collect(),
        });
    }
    let mut charts: Vec<ChartData> = Vec::new();
    for ((m, label), r) in metrics.iter().zip(&labels).zip(runs) {
        for c in curves(m, &r.record.fits) {
            let rows: Vec<Value> = (0..c.ys.len())
                .filter(|&i| c.ys[i].is_finite())
                .map(|i| {
                    let mut row = serde_json::json!({ "run": label, "y": c.ys[i] });
                    for (axis, xs) in &c.xs {
                        row[axis.key()] = xs[i].into();
                    }
                    row
                })
                .collect();
            let axes: Vec<XAxis> = c.xs.iter().map(|x| x.0).collect();
            match charts.iter_mut().find(|ch| ch.title == c.title) {
                Some(ch) => {
                    ch.values.extend(rows);
                    // A run without a batch size has no samples axis: only what every run has.
                    ch.axes.retain(|a| axes.contains(a));
                }
                None => charts.push(ChartData { title: c.title, y_label: c.metric, axes, values: rows }),
            }
        }
    }
    let leading = leading_params(runs);
    Ok(ReportData { title: title.to_string(), generated: chrono::Local::now().to_rfc3339(), runs: run_data, columns, leading, charts })
}
