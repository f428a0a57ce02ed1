//! `runner runs` and `runner show`: what was run, how it went, what it left.
use crate::text_table::{cut, num, render, safe, MAX_LINE_CHARS};
use crate::track::mlflow::mirror_column;
use crate::track::provenance::provenance;
use crate::track::{find_run, list_runs, read_metrics, RunEntry};
use anyhow::Result;
use serde_json::json;
use std::path::Path;

/// Which runs `runner runs` lists.
pub struct Filter<'a> {
    pub script: Option<&'a str>,
    pub status: Option<&'a str>,
    /// A sweep id or a prefix of one.
    pub sweep: Option<&'a str>,
    pub limit: Option<usize>,
}

pub fn list(root: &Path, f: &Filter, json: bool) -> Result<()> {
    let (script, status) = (f.script, f.status);
    const STATUSES: [&str; 5] = ["running", "completed", "failed", "interrupted", "crashed"];
    if let Some(s) = status.filter(|s| !STATUSES.contains(s)) {
        return Err(super::usage(format!("--status `{s}`: use one of {}", STATUSES.join(", "))));
    }
    let mut skipped = Vec::new();
    let runs: Vec<RunEntry> = list_runs(root, &mut skipped)?
        .into_iter()
        .filter(|r| script.is_none_or(|s| r.record.script.contains(s)))
        .filter(|r| f.sweep.is_none_or(|s| r.record.sweep.as_deref().is_some_and(|id| id.starts_with(s))))
        .filter(|r| status.is_none_or(|s| r.shown_status() == s))
        .take(f.limit.unwrap_or(usize::MAX))
        .collect();
    for (_, why) in &skipped {
        eprintln!("runner: skipped {}", safe(why));
    }
    if json {
        let items: Vec<_> = runs.iter().map(summary_json).collect::<Result<_>>()?;
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs under {}", root.display());
        return Ok(());
    }
    let mut headers = ["status", "run", "started", "duration", "params", "final metrics"].map(String::from).to_vec();
    // The mirror column (`yes`, `incomplete`) appears once some run was sent to MLflow.
    let mirrored = runs.iter().any(|r| !mirror_column(&r.record).is_empty());
    if mirrored {
        headers.push("mlflow".into());
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let rec = &r.record;
            let params = rec
                .params
                .iter()
                .filter(|(_, p)| p.source != crate::track::ParamSource::Default)
                .map(|(k, p)| format!("{k}={}", crate::track::record::value_string(&p.value)))
                .collect::<Vec<_>>()
                .join(" ");
            let metrics = read_metrics(&r.dir)
                .map(|m| m.final_values().iter().take(6).map(|(k, x)| format!("{k}={}", short(*x))).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            vec![
                r.shown_status(),
                r.folder(),
                rec.started.get(..19).unwrap_or(&rec.started).replace('T', " "),
                rec.duration_s.map(duration).unwrap_or_else(|| "-".into()),
                params,
                metrics,
            ]
            .into_iter()
            .chain(mirrored.then(|| mirror_column(rec).to_string()))
            .collect()
        })
        .collect();
    println!("{}", render(&headers, &rows));
    Ok(())
}

fn short(v: f64) -> String {
    format!("{v:.4}")
}

pub fn duration(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{}h{:02}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64)
    }
}

fn summary_json(r: &RunEntry) -> Result<serde_json::Value> {
    let m = read_metrics(&r.dir)?;
    let metrics: serde_json::Map<String, serde_json::Value> = m
        .series()
        .into_iter()
        .map(|s| (s.label(), json!({ "last": s.values.last().copied().map(crate::track::metrics::json_f64), "count": s.values.len() })))
        .collect();
    let mut rec = serde_json::to_value(&r.record)?;
    rec["status"] = json!(r.shown_status());
    Ok(json!({ "dir": r.dir.display().to_string(), "record": rec, "metrics": metrics, "damaged_metric_lines": m.damaged.len() }))
}

pub fn show(root: &Path, name: &str, json: bool) -> Result<()> {
    let r = find_run(root, name)?;
    let m = read_metrics(&r.dir)?;
    let mut files: Vec<(String, u64)> = Vec::new();
    collect_files(&r.dir, &r.dir, &mut files);
    files.sort();
    if json {
        let mut v = summary_json(&r)?;
        v["files"] = json!(files.iter().map(|(f, s)| json!({ "path": f, "bytes": s })).collect::<Vec<_>>());
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let rec = &r.record;
    // Whatever the record holds is shown, never obeyed by the terminal, and bounded (see `text_table`).
    let field = |label: &str, value: &str| println!("{label:<14}{}", cut(value, MAX_LINE_CHARS));
    field("run", &r.dir.display().to_string());
    field("status", &r.shown_status());
    field("script", &format!("{} (sha256 {})", rec.script, &rec.script_sha256[..12.min(rec.script_sha256.len())]));
    field("seed", &rec.seed.to_string());
    if let Some(s) = &rec.sweep {
        field("sweep", &format!("{s} (`runner compare {s}`)"));
    }
    field("started", &rec.started);
    if let Some(d) = rec.duration_s {
        let over = if rec.attempts.len() > 1 { format!(" over {} attempts", rec.attempts.len()) } else { String::new() };
        field("duration", &format!("{}{over}", duration(d)));
    }
    if rec.attempts.len() > 1 {
        for (i, a) in rec.attempts.iter().enumerate() {
            field(&format!("attempt {}", i + 1), &attempt_line(a));
        }
    }
    for f in provenance(rec).iter().filter(|f| f.label != "script") {
        field(f.label, &f.value);
    }
    field("command", &rec.command.join(" "));
    if let Some(s) = crate::track::mlflow::MirrorState::of(rec) {
        let page = s.page().unwrap_or_else(|| s.tracking_uri.clone());
        field("mlflow", &format!("{page}{}", s.reason.map(|r| format!(" (incomplete: {r})")).unwrap_or_default()));
    }
    if let Some(e) = &rec.error {
        // The error's own lines (the source excerpt under it) stay lines.
        let lines: Vec<String> = e.lines().map(|l| cut(l, MAX_LINE_CHARS)).collect();
        field("error", &lines.join(&format!("\n{:14}", "")));
    }
    if !rec.params.is_empty() {
        let rows: Vec<Vec<String>> = rec
            .params
            .iter()
            .map(|(k, p)| vec![k.clone(), crate::track::record::value_string(&p.value), format!("{:?}", p.source).to_lowercase()])
            .collect();
        println!("\n{}", render(&["param", "value", "source"].map(String::from), &rows));
    }
    if !rec.weights.is_empty() {
        let rows: Vec<Vec<String>> = rec
            .weights
            .iter()
            .map(|w| {
                let what = if w.is_random() { "random".to_string() } else { w.tag.clone().unwrap_or_else(|| "file".into()) };
                let sha = w.sha256.as_deref().map(|s| s[..12.min(s.len())].to_string()).unwrap_or_else(|| "-".into());
                let detail = w.file.clone().or_else(|| w.reason.clone()).unwrap_or_default();
                vec![w.arch.clone(), what, w.source.clone(), sha, detail]
            })
            .collect();
        println!("\n{}", render(&["body", "weights", "from", "sha256", "file / why"].map(String::from), &rows));
    }
    let series = m.series();
    if !series.is_empty() {
        let rows: Vec<Vec<String>> = series
            .iter()
            .map(|s| {
                let goal = rec.goals.get(&s.name).copied();
                let best = crate::track::compare::best(goal, &s.values).map(num).unwrap_or_else(|| "-".into());
                vec![
                    s.label(),
                    s.values.len().to_string(),
                    num(*s.values.last().unwrap_or(&f64::NAN)),
                    best,
                    goal.map(|g| g.to_string()).unwrap_or_default(),
                ]
            })
            .collect();
        println!("\n{}", render(&["metric", "n", "last", "best", "goal"].map(String::from), &rows));
    }
    for (line, e) in &m.damaged {
        println!("warning: metrics.jsonl line {line} is damaged and was skipped ({})", safe(e));
    }
    println!("\nfiles");
    for (f, s) in &files {
        println!("  {} ({s} bytes)", safe(f));
    }
    Ok(())
}

/// One attempt as `runner show` lists it.
fn attempt_line(a: &crate::track::Attempt) -> String {
    let signal = a.signal.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
    let took = a.duration_s.map(|d| format!(" after {}", duration(d))).unwrap_or_default();
    let job = a.slurm_job_id.as_deref().map(|j| format!(", Slurm job {j}")).unwrap_or_default();
    format!("{}{signal}{took}, started {} on {}{job}", a.status, a.started.get(..19).unwrap_or(&a.started).replace('T', " "), a.host)
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(root, &p, out);
        } else if let Ok(meta) = e.metadata() {
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            if !rel.starts_with('.') {
                out.push((rel, meta.len()));
            }
        }
    }
}
