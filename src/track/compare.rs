//! Comparing runs: one table with runs as columns (params that differ, seed, status,
//! duration, final and best value of every metric, commit), and the curves to overlay.
use super::metrics::{read_metrics, MetricsFile};
use super::record::value_string;
use super::runs::RunEntry;
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub struct Comparison {
    pub columns: Vec<String>,
    /// (row label, one cell per run)
    pub rows: Vec<(String, Vec<String>)>,
    /// Damaged metrics lines, per run: (run, line, error).
    pub damaged: Vec<(String, usize, String)>,
    pub json: Value,
}

/// Lower is better for losses and error rates, higher for everything else.
pub fn lower_is_better(name: &str) -> bool {
    name.contains("loss") || name.contains("error")
}

/// The best value of a metric's series (see `lower_is_better`), NaNs ignored.
pub fn best(name: &str, v: &[f64]) -> Option<f64> {
    let vals = v.iter().copied().filter(|x| !x.is_nan());
    if lower_is_better(name) {
        vals.reduce(f64::min)
    } else {
        vals.reduce(f64::max)
    }
}

pub fn compare(runs: &[RunEntry], all_params: bool) -> Result<Comparison> {
    let metrics: Vec<MetricsFile> = runs.iter().map(|r| read_metrics(&r.dir)).collect::<Result<_>>()?;
    let columns: Vec<String> = runs.iter().map(|r| r.folder()).collect();
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let params: Vec<_> = runs.iter().map(|r| r.record.param_strings()).collect();
    let names: BTreeSet<&String> = params.iter().flat_map(|p| p.keys()).collect();
    for n in names {
        let cells: Vec<String> = params.iter().map(|p| p.get(n).cloned().unwrap_or_else(|| "-".into())).collect();
        if all_params || cells.iter().any(|c| c != &cells[0]) {
            rows.push((format!("param {n}"), cells));
        }
    }
    let cell = |f: &dyn Fn(&RunEntry) -> String| runs.iter().map(f).collect::<Vec<_>>();
    rows.push(("seed".into(), cell(&|r| r.record.seed.to_string())));
    rows.push(("status".into(), cell(&|r| r.shown_status())));
    rows.push(("duration_s".into(), cell(&|r| r.record.duration_s.map(|d| format!("{d:.1}")).unwrap_or_else(|| "-".into()))));
    let series: Vec<Vec<(String, Vec<f64>)>> = metrics.iter().map(|m| m.series()).collect();
    let mut metric_names: Vec<String> = Vec::new();
    for s in &series {
        for (n, _) in s {
            if !metric_names.contains(n) {
                metric_names.push(n.clone());
            }
        }
    }
    let mut json_metrics = serde_json::Map::new();
    for n in &metric_names {
        let per_run: Vec<Option<&Vec<f64>>> = series.iter().map(|s| s.iter().find(|(k, _)| k == n).map(|(_, v)| v)).collect();
        let fmt = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
        rows.push((format!("{n} (final)"), per_run.iter().map(|v| fmt(v.and_then(|v| v.last().copied()))).collect()));
        rows.push((format!("{n} (best)"), per_run.iter().map(|v| fmt(v.and_then(|v| best(n, v)))).collect()));
        json_metrics.insert(
            n.clone(),
            json!(per_run
                .iter()
                .map(|v| json!({ "final": v.and_then(|v| v.last().copied()).map(super::metrics::json_f64), "best": v.and_then(|v| best(n, v)).map(super::metrics::json_f64) }))
                .collect::<Vec<_>>()),
        );
    }
    rows.push((
        "commit".into(),
        cell(&|r| {
            let c = r.record.git_commit.clone().unwrap_or_else(|| r.record.runner_commit.clone());
            let short: String = c.chars().take(10).collect();
            if r.record.git_dirty == Some(true) {
                format!("{short}+dirty")
            } else {
                short
            }
        }),
    ));
    let damaged = runs.iter().zip(&metrics).flat_map(|(r, m)| m.damaged.iter().map(move |(l, e)| (r.folder(), *l, e.clone()))).collect();
    let json = json!({
        "runs": columns,
        "rows": rows.iter().map(|(k, v)| json!({ "name": k, "values": v })).collect::<Vec<_>>(),
        "metrics": json_metrics,
        "params": runs.iter().map(|r| r.record.params.iter().map(|(k, p)| (k.clone(), json!(value_string(&p.value)))).collect::<serde_json::Map<_, _>>()).collect::<Vec<_>>(),
    });
    Ok(Comparison { columns, rows, damaged, json })
}

impl Comparison {
    pub fn text(&self) -> String {
        let mut headers = vec![String::new()];
        headers.extend(self.columns.iter().cloned());
        let rows: Vec<Vec<String>> = self.rows.iter().map(|(k, v)| std::iter::once(k.clone()).chain(v.iter().cloned()).collect()).collect();
        crate::text_table::render(&headers, &rows)
    }

    pub fn markdown(&self) -> String {
        let mut s = format!("| | {} |\n|---|{}\n", self.columns.join(" | "), "---|".repeat(self.columns.len()));
        for (k, v) in &self.rows {
            s += &format!("| {k} | {} |\n", v.join(" | "));
        }
        s
    }
}

/// The curves of a run for plotting: smoothed train loss by iteration (all fits chained)
/// and each epoch column by epoch.
pub fn curves(m: &MetricsFile) -> Vec<(String, Vec<(f64, f64)>)> {
    let num = |v: Option<&Value>| v.and_then(Value::as_f64);
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let train: Vec<(f64, f64)> = m.of_kind("batch").enumerate().filter_map(|(i, r)| num(r.get("smooth_loss")).map(|l| (i as f64, l))).collect();
    if !train.is_empty() {
        out.push(("train_loss (per batch)".into(), train));
    }
    for (i, r) in m.of_kind("epoch").enumerate() {
        for (k, v) in r {
            if matches!(k.as_str(), "kind" | "fit" | "epoch" | "train_loss") {
                continue;
            }
            if let Some(v) = num(Some(v)) {
                match out.iter_mut().find(|(n, _)| n == k) {
                    Some((_, pts)) => pts.push((i as f64, v)),
                    None => out.push((k.clone(), vec![(i as f64, v)])),
                }
            }
        }
    }
    out
}
