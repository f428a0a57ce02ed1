//! What a report shows, gathered from the run folders: per run its label, params, status,
//! error, final and best metrics and pictures (as data: URIs); per curve every run's points.
//! Serialised to JSON for the page's script.
use crate::track::compare::{best, best_of, curves, lower_is_better, run_labels};
use crate::track::{read_metrics, MetricsFile, RunEntry};
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
    /// Params whose values differ between the runs (shown first in the table).
    pub differing: Vec<String>,
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
    pub seed: u64,
    pub sweep: Option<String>,
    pub params: BTreeMap<String, String>,
    /// One value per entry of `ReportData::columns` (None where the run lacks it).
    pub values: Vec<Option<f64>>,
    pub images: Vec<Image>,
    pub damaged_lines: usize,
}

#[derive(Serialize)]
pub struct MetricColumn {
    pub name: String,
    pub lower_is_better: bool,
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
    pub x_label: String,
    pub y_label: String,
    /// Epochs and steps: whole-number ticks.
    pub integer_x: bool,
    /// `{run, x, y}` rows, every run's points together (Vega-Lite's table form).
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

/// Final and best value of every series, keyed like the compare table (single values once).
fn metric_values(m: &MetricsFile, multi: &dyn Fn(&str) -> bool) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in m.series() {
        let label = s.label();
        let last = s.values.last().copied().unwrap_or(f64::NAN);
        if multi(&label) {
            out.insert(format!("{label} (final)"), last);
            out.insert(format!("{label} (best)"), best(&s.name, &s.values).unwrap_or(f64::NAN));
        } else {
            out.insert(label, last);
        }
    }
    out
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
    let per_run: Vec<BTreeMap<String, f64>> = metrics.iter().map(|m| metric_values(m, &multi)).collect();
    let mut columns: Vec<MetricColumn> = Vec::new();
    for (label, name, is_multi, _) in &keys {
        let names = if *is_multi { vec![format!("{label} (final)"), format!("{label} (best)")] } else { vec![label.clone()] };
        for n in names {
            let values: Vec<Option<f64>> = per_run.iter().map(|v| v.get(&n).copied()).collect();
            columns.push(MetricColumn { best: best_of(name, &values), name: n, lower_is_better: lower_is_better(name) });
        }
    }
    let params: Vec<BTreeMap<String, String>> = runs.iter().map(|r| r.record.param_strings()).collect();
    let mut differing: Vec<String> = params.iter().flat_map(|p| p.keys().cloned()).collect();
    differing.sort();
    differing.dedup();
    differing.retain(|k| params.iter().any(|p| p.get(k) != params[0].get(k)));
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
            seed: rec.seed,
            sweep: rec.sweep.clone(),
            params: rec.param_strings(),
            values: columns.iter().map(|c| values.get(&c.name).copied()).collect(),
            images: images(&r.dir)?,
            damaged_lines: m.damaged.len(),
        });
    }
    let mut charts: Vec<ChartData> = Vec::new();
    for (m, label) in metrics.iter().zip(&labels) {
        for c in curves(m) {
            let rows =
                c.points.iter().filter(|(x, y)| x.is_finite() && y.is_finite()).map(|(x, y)| serde_json::json!({ "run": label, "x": x, "y": y }));
            match charts.iter_mut().find(|ch| ch.title == c.title) {
                Some(ch) => ch.values.extend(rows),
                None => charts.push(ChartData {
                    title: c.title,
                    x_label: c.x_label.into(),
                    y_label: c.metric,
                    integer_x: c.integer_x,
                    values: rows.collect(),
                }),
            }
        }
    }
    Ok(ReportData { title: title.to_string(), generated: chrono::Local::now().to_rfc3339(), runs: run_data, columns, differing, charts })
}
