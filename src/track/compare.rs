//! Comparing runs: one table with runs as columns (labelled by the params that differ),
//! the seed, status, duration, each metric's final and best value (the best run marked),
//! grouped by fit, and the curves to overlay.
use super::metrics::{json_f64, read_metrics, MetricsFile, Series};
use super::record::value_string;
use super::runs::RunEntry;
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub struct Comparison {
    /// One label per run, built from the params that differ (`lr=0.01 size=64`).
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// Warnings printed under the table (runs that used different data).
    pub notes: Vec<String>,
    /// Damaged metrics lines, per run: (run, line, error).
    pub damaged: Vec<(String, usize, String)>,
    pub json: Value,
}

/// One row of the table; `best` is the run whose value is best, when the runs differ.
pub struct Row {
    pub name: String,
    pub cells: Vec<String>,
    pub best: Option<usize>,
}

impl Row {
    fn plain(name: impl Into<String>, cells: Vec<String>) -> Row {
        Row { name: name.into(), cells, best: None }
    }
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

/// Which of `values` is best for metric `name`; None when fewer than two differ.
pub fn best_of(name: &str, values: &[Option<f64>]) -> Option<usize> {
    let known: Vec<(usize, f64)> = values.iter().enumerate().filter_map(|(i, v)| v.filter(|x| !x.is_nan()).map(|x| (i, x))).collect();
    if known.len() < 2 || known.iter().all(|(_, v)| *v == known[0].1) {
        return None;
    }
    let pick = if lower_is_better(name) { known.iter().min_by(|a, b| a.1.total_cmp(&b.1)) } else { known.iter().max_by(|a, b| a.1.total_cmp(&b.1)) };
    pick.map(|(i, _)| *i)
}

/// A short label per run: the params that differ between the runs (`lr=0.01 size=64`),
/// the seed when it differs, and the run id where that still leaves two runs alike.
pub fn run_labels(runs: &[RunEntry]) -> Vec<String> {
    let params: Vec<_> = runs.iter().map(|r| r.record.param_strings()).collect();
    let names: BTreeSet<&String> = params.iter().flat_map(|p| p.keys()).collect();
    let mut labels: Vec<Vec<String>> = vec![Vec::new(); runs.len()];
    for n in names {
        let cells: Vec<Option<&String>> = params.iter().map(|p| p.get(n)).collect();
        if cells.iter().any(|c| c != &cells[0]) {
            for (l, c) in labels.iter_mut().zip(&cells) {
                l.push(format!("{n}={}", c.map(String::as_str).unwrap_or("-")));
            }
        }
    }
    if runs.iter().any(|r| r.record.seed != runs[0].record.seed) {
        for (l, r) in labels.iter_mut().zip(runs) {
            l.push(format!("seed={}", r.record.seed));
        }
    }
    let joined: Vec<String> = labels.iter().map(|l| l.join(" ")).collect();
    joined
        .iter()
        .zip(runs)
        .map(|(l, r)| {
            let alike = joined.iter().filter(|o| *o == l).count() > 1;
            match (l.is_empty(), alike) {
                (true, _) if runs.len() == 1 => r.folder(),
                (true, _) => r.record.id.clone(),
                (false, true) => format!("{l} ({})", r.record.id),
                (false, false) => l.clone(),
            }
        })
        .collect()
}

/// The metric keys of several runs, in a stable order: logged metrics first, then fit by fit.
fn metric_keys(series: &[Vec<Series>]) -> Vec<(Option<usize>, String)> {
    let mut keys: Vec<(Option<usize>, String)> = Vec::new();
    for s in series.iter().flatten() {
        let k = (s.fit, s.name.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.sort_by_key(|(fit, _)| fit.unwrap_or(0));
    keys
}

pub fn compare(runs: &[RunEntry], all_params: bool) -> Result<Comparison> {
    let metrics: Vec<MetricsFile> = runs.iter().map(|r| read_metrics(&r.dir)).collect::<Result<_>>()?;
    let columns = run_labels(runs);
    let mut rows: Vec<Row> = Vec::new();
    let cell = |f: &dyn Fn(&RunEntry) -> String| runs.iter().map(f).collect::<Vec<_>>();
    rows.push(Row::plain("id", cell(&|r| r.record.id.clone())));
    let params: Vec<_> = runs.iter().map(|r| r.record.param_strings()).collect();
    let names: BTreeSet<&String> = params.iter().flat_map(|p| p.keys()).collect();
    for n in names {
        let cells: Vec<String> = params.iter().map(|p| p.get(n).cloned().unwrap_or_else(|| "-".into())).collect();
        if all_params || cells.iter().any(|c| c != &cells[0]) {
            rows.push(Row::plain(format!("param {n}"), cells));
        }
    }
    rows.push(Row::plain("seed", cell(&|r| r.record.seed.to_string())));
    rows.push(Row::plain("status", cell(&|r| r.shown_status())));
    rows.push(Row::plain("duration_s", cell(&|r| r.record.duration_s.map(|d| format!("{d:.1}")).unwrap_or_else(|| "-".into()))));
    let mut notes = Vec::new();
    if runs.iter().any(|r| !r.record.data.is_empty()) {
        rows.push(Row::plain("data", cell(&|r| r.record.data.iter().map(|d| d.short()).collect::<Vec<_>>().join("; "))));
        let prints: Vec<Vec<(&str, &str)>> =
            runs.iter().map(|r| r.record.data.iter().map(|d| (d.name.as_str(), d.fingerprint.as_str())).collect()).collect();
        if prints.iter().any(|p| p != &prints[0]) {
            notes.push("warning: these runs used different data (see the data row): their metrics do not measure the same thing".to_string());
        }
    }
    if runs.iter().any(|r| r.record.sweep != runs[0].record.sweep) {
        rows.push(Row::plain("sweep", cell(&|r| r.record.sweep.clone().unwrap_or_else(|| "-".into()))));
    }
    let series: Vec<Vec<Series>> = metrics.iter().map(|m| m.series()).collect();
    let mut json_metrics = serde_json::Map::new();
    let mut fit_shown = None;
    for (fit, name) in metric_keys(&series) {
        let per_run: Vec<Option<&Vec<f64>>> = series.iter().map(|s| s.iter().find(|x| x.fit == fit && x.name == name).map(|x| &x.values)).collect();
        let finals: Vec<Option<f64>> = per_run.iter().map(|v| v.and_then(|v| v.last().copied())).collect();
        let bests: Vec<Option<f64>> = per_run.iter().map(|v| v.and_then(|v| best(&name, v))).collect();
        let fmt = |xs: &[Option<f64>]| xs.iter().map(|x| x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())).collect::<Vec<_>>();
        let indent = if let Some(f) = fit {
            if fit_shown != Some(f) {
                rows.push(Row::plain(format!("fit {f}"), vec![String::new(); runs.len()]));
                fit_shown = Some(f);
            }
            "  "
        } else {
            ""
        };
        if per_run.iter().all(|v| v.is_none_or(|v| v.len() <= 1)) {
            rows.push(Row { name: format!("{indent}{name}"), cells: fmt(&finals), best: best_of(&name, &finals) });
        } else {
            rows.push(Row { name: format!("{indent}{name} (final)"), cells: fmt(&finals), best: best_of(&name, &finals) });
            rows.push(Row { name: format!("{indent}{name} (best)"), cells: fmt(&bests), best: best_of(&name, &bests) });
        }
        let key = Series { fit, name: name.clone(), values: vec![] }.label();
        let values: Vec<Value> = finals.iter().zip(&bests).map(|(f, b)| json!({ "final": f.map(json_f64), "best": b.map(json_f64) })).collect();
        json_metrics.insert(key, json!(values));
    }
    rows.push(Row::plain(
        "commit",
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
        "runs": runs.iter().map(|r| r.folder()).collect::<Vec<_>>(),
        "labels": columns,
        "rows": rows.iter().map(|r| json!({ "name": r.name.trim(), "values": r.cells, "best": r.best })).collect::<Vec<_>>(),
        "metrics": json_metrics,
        "notes": notes,
        "params": runs.iter().map(|r| r.record.params.iter().map(|(k, p)| (k.clone(), json!(value_string(&p.value)))).collect::<serde_json::Map<_, _>>()).collect::<Vec<_>>(),
    });
    Ok(Comparison { columns, rows, notes, damaged, json })
}

impl Comparison {
    fn marked(&self, mark: impl Fn(&str) -> String) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                std::iter::once(r.name.clone())
                    .chain(r.cells.iter().enumerate().map(|(i, c)| if r.best == Some(i) { mark(c) } else { c.clone() }))
                    .collect()
            })
            .collect()
    }

    fn footnote(&self) -> &'static str {
        if self.rows.iter().any(|r| r.best.is_some()) {
            "* best of these runs (lowest for losses and error rates, else highest)"
        } else {
            ""
        }
    }

    pub fn text(&self) -> String {
        let mut headers = vec![String::new()];
        headers.extend(self.columns.iter().cloned());
        let mut s = crate::text_table::render(&headers, &self.marked(|c| format!("{c} *")));
        if !self.footnote().is_empty() {
            s += &format!("\n{}", self.footnote());
        }
        for n in &self.notes {
            s += &format!("\n{}", crate::text_table::safe(n));
        }
        s
    }

    pub fn markdown(&self) -> String {
        // A cell is one table cell: terminal-safe, bounded, and a `|` in it does not start another.
        let md = |c: &String| crate::text_table::cell(c).replace('|', "\\|");
        let columns: Vec<String> = self.columns.iter().map(md).collect();
        let mut s = format!("| | {} |\n|---|{}\n", columns.join(" | "), "---|".repeat(self.columns.len()));
        for r in self.marked(|c| format!("**{c}**")) {
            s += &format!("| {} |\n", r.iter().map(md).collect::<Vec<_>>().join(" | "));
        }
        if !self.footnote().is_empty() {
            s += &format!("\n{}\n", self.footnote().replacen('*', "bold:", 1));
        }
        for n in &self.notes {
            s += &format!("\n{}\n", crate::text_table::safe(n));
        }
        s
    }
}

/// One curve of a run: what it shows (`title`, also the y label's metric) and its points.
pub struct Curve {
    pub title: String,
    pub metric: String,
    pub x_label: &'static str,
    /// Epochs and steps: whole-number ticks.
    pub integer_x: bool,
    pub points: Vec<(f64, f64)>,
}

/// The curves of a run for plotting: smoothed train loss by batch (all fits chained), each
/// fit's epoch columns by epoch, and each logged metric with more than one value by step.
pub fn curves(m: &MetricsFile) -> Vec<Curve> {
    let mut out = Vec::new();
    let train: Vec<(f64, f64)> =
        m.of_kind("batch").enumerate().filter_map(|(i, r)| r.get("smooth_loss").and_then(Value::as_f64).map(|l| (i as f64, l))).collect();
    if !train.is_empty() {
        out.push(Curve {
            title: "train_loss (smoothed, per batch)".into(),
            metric: "train_loss".into(),
            x_label: "batch",
            integer_x: false,
            points: train,
        });
    }
    for s in m.series() {
        let points: Vec<(f64, f64)> = s.values.iter().enumerate().map(|(i, v)| (i as f64, *v)).collect();
        match s.fit {
            Some(_) if s.name == "train_loss" => {} // the per-batch curve shows it
            Some(_) => out.push(Curve { title: s.label(), metric: s.name, x_label: "epoch", integer_x: true, points }),
            None if s.values.len() > 1 => out.push(Curve { title: s.label(), metric: s.name, x_label: "step", integer_x: true, points }),
            None => {}
        }
    }
    out
}
