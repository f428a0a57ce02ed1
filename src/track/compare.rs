//! Comparing runs: one table with runs as columns (labelled by the script and the params
//! that differ), the seed, status, duration and attempts, each metric's final and best
//! value (the best run marked where the metric's goal says which way is better), grouped
//! by fit, what identifies each run's code and machine, and the curves to overlay.
use super::metrics::{json_f64, read_metrics, MetricsFile, Series};
use super::provenance::{provenance, short_commit};
use super::record::{value_string, FitInfo, Goal};
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

/// Which way metric `name` is better over these runs: the goal their records note (run
/// by run, from the metric's definition or its options), when those that note one agree;
/// None (not ranked) when none does or they disagree.
pub fn goal_of(runs: &[RunEntry], name: &str) -> Option<Goal> {
    let goals: BTreeSet<Goal> = runs.iter().filter_map(|r| r.record.goals.get(name).copied()).collect();
    match goals.len() {
        1 => goals.into_iter().next(),
        _ => None,
    }
}

/// The best value of a series by its goal, NaNs ignored; None for a metric not ranked.
pub fn best(goal: Option<Goal>, v: &[f64]) -> Option<f64> {
    let goal = goal?;
    v.iter().copied().filter(|x| !x.is_nan()).reduce(|a, b| if goal.better(b, a) { b } else { a })
}

/// Which of `values` is best by `goal`; None when not ranked or fewer than two differ.
pub fn best_of(goal: Option<Goal>, values: &[Option<f64>]) -> Option<usize> {
    let goal = goal?;
    let known: Vec<(usize, f64)> = values.iter().enumerate().filter_map(|(i, v)| v.filter(|x| !x.is_nan()).map(|x| (i, x))).collect();
    if known.len() < 2 || known.iter().all(|(_, v)| *v == known[0].1) {
        return None;
    }
    known.into_iter().reduce(|a, b| if goal.better(b.1, a.1) { b } else { a }).map(|(i, _)| i)
}

/// The script's file name, as labels show it.
pub fn script_name(r: &RunEntry) -> String {
    std::path::Path::new(&r.record.script).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| r.record.script.clone())
}

/// A short label per run: the script, then the params that differ between the runs
/// (`t.rhai lr=0.01 size=64`), the seed when it differs, and the run id where that still
/// leaves two runs alike.
pub fn run_labels(runs: &[RunEntry]) -> Vec<String> {
    let params: Vec<_> = runs.iter().map(|r| r.record.param_strings()).collect();
    let names: BTreeSet<&String> = params.iter().flat_map(|p| p.keys()).collect();
    let mut labels: Vec<Vec<String>> = runs.iter().map(|r| vec![script_name(r)]).collect();
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
        .zip(&labels)
        .zip(runs)
        .map(|((l, parts), r)| {
            let alike = joined.iter().filter(|o| *o == l).count() > 1;
            match (parts.len() == 1, alike) {
                (true, _) if runs.len() == 1 => r.folder(),
                (_, true) => format!("{l} ({})", r.record.id),
                (_, false) => l.clone(),
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
    if runs.iter().any(|r| r.record.attempts.len() > 1) {
        rows.push(Row::plain("attempts", cell(&|r| r.record.attempts.len().max(1).to_string())));
    }
    let mut notes = Vec::new();
    if runs.iter().any(|r| !r.record.data.is_empty()) {
        rows.push(Row::plain("data", cell(&|r| r.record.data.iter().map(|d| d.short()).collect::<Vec<_>>().join("; "))));
        let prints: Vec<Vec<(&str, &str)>> =
            runs.iter().map(|r| r.record.data.iter().map(|d| (d.name.as_str(), d.fingerprint.as_str())).collect()).collect();
        if prints.iter().any(|p| p != &prints[0]) {
            notes.push("warning: these runs used different data (see the data row): their metrics do not measure the same thing".to_string());
        }
    }
    if runs.iter().any(|r| !r.record.weights.is_empty()) {
        let uses: Vec<Vec<String>> = runs.iter().map(|r| r.record.weights.iter().map(|w| w.short()).collect()).collect();
        rows.push(Row::plain("weights", uses.iter().map(|u| if u.is_empty() { "-".into() } else { u.join("; ") }).collect()));
        let starts: Vec<Vec<(&str, Option<&str>)>> =
            runs.iter().map(|r| r.record.weights.iter().map(|w| (w.arch.as_str(), w.sha256.as_deref())).collect()).collect();
        if starts.iter().any(|s| s != &starts[0]) {
            notes.push("warning: these runs started from different weights (see the weights row)".to_string());
        }
    }
    if runs.iter().any(|r| r.record.sweep != runs[0].record.sweep) {
        rows.push(Row::plain("sweep", cell(&|r| r.record.sweep.clone().unwrap_or_else(|| "-".into()))));
    }
    let series: Vec<Vec<Series>> = metrics.iter().map(|m| m.series()).collect();
    let mut json_metrics = serde_json::Map::new();
    let mut json_goals = serde_json::Map::new();
    let mut fit_shown = None;
    for (fit, name) in metric_keys(&series) {
        let goal = goal_of(runs, &name);
        let per_run: Vec<Option<&Vec<f64>>> = series.iter().map(|s| s.iter().find(|x| x.fit == fit && x.name == name).map(|x| &x.values)).collect();
        let finals: Vec<Option<f64>> = per_run.iter().map(|v| v.and_then(|v| v.last().copied())).collect();
        let bests: Vec<Option<f64>> = per_run.iter().map(|v| v.and_then(|v| best(goal, v))).collect();
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
            rows.push(Row { name: format!("{indent}{name}"), cells: fmt(&finals), best: best_of(goal, &finals) });
        } else {
            rows.push(Row { name: format!("{indent}{name} (final)"), cells: fmt(&finals), best: best_of(goal, &finals) });
            // A metric without a goal has no best value.
            if goal.is_some() {
                rows.push(Row { name: format!("{indent}{name} (best)"), cells: fmt(&bests), best: best_of(goal, &bests) });
            }
        }
        let key = Series { fit, name: name.clone(), values: vec![] }.label();
        let values: Vec<Value> = finals.iter().zip(&bests).map(|(f, b)| json!({ "final": f.map(json_f64), "best": b.map(json_f64) })).collect();
        json_metrics.insert(key.clone(), json!(values));
        json_goals.insert(key, json!(goal.map(|g| g.to_string())));
    }
    rows.extend(provenance_rows(runs));
    let damaged = runs.iter().zip(&metrics).flat_map(|(r, m)| m.damaged.iter().map(move |(l, e)| (r.folder(), *l, e.clone()))).collect();
    let json = json!({
        "runs": runs.iter().map(|r| r.folder()).collect::<Vec<_>>(),
        "labels": columns,
        "rows": rows.iter().map(|r| json!({ "name": r.name.trim(), "values": r.cells, "best": r.best })).collect::<Vec<_>>(),
        "metrics": json_metrics,
        "goals": json_goals,
        "notes": notes,
        "params": runs.iter().map(|r| r.record.params.iter().map(|(k, p)| (k.clone(), json!(value_string(&p.value)))).collect::<serde_json::Map<_, _>>()).collect::<Vec<_>>(),
    });
    Ok(Comparison { columns, rows, notes, damaged, json })
}

/// What identifies each run's code and machine, one row per field any run has (the
/// script by file name, commits shortened, the dirty flag folded into the git commit).
fn provenance_rows(runs: &[RunEntry]) -> Vec<Row> {
    let fields: Vec<Vec<super::provenance::Field>> = runs.iter().map(|r| provenance(&r.record)).collect();
    let mut labels: Vec<&'static str> = Vec::new();
    for f in fields.iter().flatten() {
        if !labels.contains(&f.label) && f.label != "git dirty" {
            labels.push(f.label);
        }
    }
    labels
        .into_iter()
        .map(|label| {
            let cells = runs
                .iter()
                .zip(&fields)
                .map(|(r, fs)| {
                    let value = fs.iter().find(|f| f.label == label).map(|f| f.value.as_str());
                    match (label, value) {
                        (_, None) => "-".to_string(),
                        ("script", Some(_)) => script_name(r),
                        ("git commit", Some(c)) => short_commit(c, r.record.git_dirty),
                        ("runner commit", Some(c)) => short_commit(c, None),
                        (_, Some(v)) => v.to_string(),
                    }
                })
                .collect();
            Row::plain(label, cells)
        })
        .collect()
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
            "* best of these runs, by each metric's goal (lowest for losses and error rates, highest for accuracy-like metrics; metrics without a goal are not ranked)"
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

/// What a curve's points can be drawn against: the fit's progress in epochs, batches or
/// samples seen (which line up runs of different batch sizes), or a logged metric's step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XAxis {
    Epoch,
    Batch,
    Samples,
    Step,
}

impl XAxis {
    /// Its name in data (as serialised).
    pub fn key(self) -> &'static str {
        match self {
            XAxis::Epoch => "epoch",
            XAxis::Batch => "batch",
            XAxis::Samples => "samples",
            XAxis::Step => "step",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            XAxis::Epoch => "epoch",
            XAxis::Batch => "batch",
            XAxis::Samples => "samples seen",
            XAxis::Step => "step",
        }
    }
}

/// One curve of a run: what it shows (`title`, also the y label's metric) and its points,
/// their x along each axis the curve has (the first is its default).
pub struct Curve {
    pub title: String,
    pub metric: String,
    pub xs: Vec<(XAxis, Vec<f64>)>,
    pub ys: Vec<f64>,
}

impl Curve {
    pub fn default_axis(&self) -> XAxis {
        self.xs.first().map(|x| x.0).unwrap_or(XAxis::Step)
    }

    /// The points against `axis`, when the curve has it.
    pub fn points(&self, axis: XAxis) -> Option<Vec<(f64, f64)>> {
        let xs = &self.xs.iter().find(|x| x.0 == axis)?.1;
        Some(xs.iter().copied().zip(self.ys.iter().copied()).collect())
    }
}

/// Where a point `done` batches into a fit lies: epochs done, batches done, and samples
/// seen when the fit's batch size is known.
fn fit_xs(done: f64, per_epoch: f64, batch_size: Option<f64>) -> [Option<f64>; 3] {
    [Some(done / per_epoch), Some(done), batch_size.map(|b| done * b)]
}

/// The curves of a run for plotting: per fit, the smoothed train loss per batch and each
/// epoch column per epoch, against epochs (by default), batches and samples seen (`fits`,
/// the record's, give the batch size); and each logged metric with more than one value
/// by step.
pub fn curves(m: &MetricsFile, fits: &[FitInfo]) -> Vec<Curve> {
    let mut out = Vec::new();
    for (i, f) in m.fits().iter().enumerate() {
        let info = fits.get(i);
        let per_epoch = info.map(|x| x.batches_per_epoch).unwrap_or_else(|| f.batches_per_epoch()).max(1) as f64;
        let bs = info.map(|x| x.batch_size as f64);
        let axes = [XAxis::Epoch, XAxis::Batch, XAxis::Samples];
        let mut by_title: Vec<Curve> = Vec::new();
        let mut add = |name: &str, title: String, at: [Option<f64>; 3], y: f64| {
            let c = match by_title.iter_mut().position(|c| c.title == title) {
                Some(k) => &mut by_title[k],
                None => {
                    let xs = axes.iter().zip(&at).filter(|(_, x)| x.is_some()).map(|(a, _)| (*a, vec![])).collect();
                    by_title.push(Curve { title, metric: name.to_string(), xs, ys: vec![] });
                    by_title.last_mut().expect("just pushed")
                }
            };
            for (axis, xs) in c.xs.iter_mut() {
                if let Some(x) = axes.iter().position(|a| a == axis).and_then(|k| at[k]) {
                    xs.push(x);
                }
            }
            c.ys.push(y);
        };
        for b in &f.batches {
            if let (Some(it), Some(y)) = (b.get("iter").and_then(Value::as_f64), b.get("smooth_loss").and_then(json_number)) {
                add("train_loss", format!("fit {} train_loss (smoothed)", i + 1), fit_xs(it + 1.0, per_epoch, bs), y);
            }
        }
        for e in &f.epochs {
            let Some(epoch) = e.get("epoch").and_then(Value::as_f64) else { continue };
            for (k, v) in e.iter() {
                // The per-batch curve shows the training loss.
                if ["kind", "fit", "epoch", "train_loss"].contains(&k.as_str()) {
                    continue;
                }
                if let Some(y) = json_number(v) {
                    add(k, format!("fit {} {k}", i + 1), fit_xs((epoch + 1.0) * per_epoch, per_epoch, bs), y);
                }
            }
        }
        out.extend(by_title);
    }
    for s in m.series().into_iter().filter(|s| s.fit.is_none() && s.values.len() > 1) {
        let xs = vec![(XAxis::Step, (0..s.values.len()).map(|i| i as f64).collect())];
        out.push(Curve { title: s.label(), metric: s.name, xs, ys: s.values });
    }
    out
}

/// A metrics.jsonl number (NaN and infinities are written as strings).
fn json_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::metrics::MetricsFile;
    use serde_json::json;

    fn file(rows: Value) -> MetricsFile {
        MetricsFile { records: rows.as_array().unwrap().iter().map(|r| r.as_object().unwrap().clone()).collect(), damaged: vec![] }
    }

    #[test]
    fn curves_line_up_by_epoch_and_by_samples_seen() {
        // Two batches per epoch, two epochs; then another learner's fit 1 (one batch per epoch).
        let m = file(json!([
            { "kind": "batch", "fit": 1, "iter": 0, "smooth_loss": 4.0 },
            { "kind": "batch", "fit": 1, "iter": 1, "smooth_loss": 3.0 },
            { "kind": "epoch", "fit": 1, "epoch": 0, "train_loss": 3.0, "valid_loss": 2.5, "accuracy": 0.5 },
            { "kind": "batch", "fit": 1, "iter": 2, "smooth_loss": 2.0 },
            { "kind": "batch", "fit": 1, "iter": 3, "smooth_loss": 1.0 },
            { "kind": "epoch", "fit": 1, "epoch": 1, "train_loss": 1.0, "valid_loss": "NaN", "accuracy": 0.75 },
            { "kind": "batch", "fit": 1, "iter": 0, "smooth_loss": 9.0 },
            { "kind": "epoch", "fit": 1, "epoch": 0, "train_loss": 9.0, "valid_loss": 8.0 },
            { "kind": "metric", "name": "m", "step": 0, "value": 1.0 },
            { "kind": "metric", "name": "m", "step": 1, "value": 2.0 }
        ]));
        let info = [FitInfo { seq: 2, epochs: 2, batches_per_epoch: 2, batch_size: 16, bf16: false, channels_last: false }];
        let c = curves(&m, &info);
        let titles: Vec<&str> = c.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(
            titles,
            ["fit 1 train_loss (smoothed)", "fit 1 valid_loss", "fit 1 accuracy", "fit 2 train_loss (smoothed)", "fit 2 valid_loss", "m"]
        );
        assert_eq!(c[0].points(XAxis::Epoch).unwrap(), [(0.5, 4.0), (1.0, 3.0), (1.5, 2.0), (2.0, 1.0)]);
        assert_eq!(c[0].points(XAxis::Samples).unwrap(), [(16.0, 4.0), (32.0, 3.0), (48.0, 2.0), (64.0, 1.0)]);
        assert_eq!(c[2].points(XAxis::Epoch).unwrap(), [(1.0, 0.5), (2.0, 0.75)]);
        assert_eq!(c[2].points(XAxis::Batch).unwrap(), [(2.0, 0.5), (4.0, 0.75)]);
        assert!(c[1].points(XAxis::Epoch).unwrap()[1].1.is_nan());
        assert!(c[3].points(XAxis::Samples).is_none(), "no batch size recorded for the second fit");
        assert_eq!(c[3].points(XAxis::Epoch).unwrap(), [(1.0, 9.0)]);
        assert_eq!((c[5].default_axis(), c[5].points(XAxis::Step).unwrap()), (XAxis::Step, vec![(0.0, 1.0), (1.0, 2.0)]));
        let s = m.series();
        assert!(s.iter().any(|s| s.fit == Some(2) && s.name == "valid_loss" && s.values == [8.0]), "another learner's fit is fit 2: {s:?}");
    }

    #[test]
    fn only_metrics_with_a_goal_are_ranked() {
        assert_eq!(best_of(None, &[Some(1.0), Some(2.0)]), None);
        assert_eq!(best_of(Some(Goal::Max), &[Some(1.0), Some(2.0), None]), Some(1));
        assert_eq!(best_of(Some(Goal::Min), &[Some(1.0), Some(f64::NAN), Some(2.0)]), Some(0));
        assert_eq!(best_of(Some(Goal::Min), &[Some(1.0), Some(1.0)]), None, "equal values: nobody is best");
        assert_eq!(best(Some(Goal::Min), &[3.0, f64::NAN, 1.0, 2.0]), Some(1.0));
        assert_eq!(best(None, &[3.0, 1.0]), None);
    }
}
