//! `runner sync`: send a finished run to the tracking server, only what is missing. The
//! MLflow run is found by its `runner.run_id` tag (or the id noted in `run.toml`); tags,
//! params, metric values (compared by step and value), status and artifacts (by size,
//! `run.toml` by content) are sent when absent, so a second sync sends nothing.
use super::client::{now_ms, ApiError, Client, Metric, Run};
use super::mapping::{
    all_points, artifact_files, experiment_name, final_status, run_datasets, run_name, run_params, run_tags, start_ms, EXPERIMENT_KIND, RUN_ID_TAG,
};
use super::MirrorState;
use crate::track::metrics::read_metrics;
use crate::track::record::RECORD_FILE;
use crate::track::runs::RunEntry;
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What one sync sent.
#[derive(Debug, Default, PartialEq)]
pub struct SyncReport {
    pub created: bool,
    pub tags: usize,
    pub params: usize,
    pub datasets: usize,
    pub metric_values: usize,
    pub status: bool,
    pub artifacts: usize,
    /// Params the server holds with another value (MLflow cannot change a param).
    pub conflicts: Vec<String>,
}

impl SyncReport {
    pub fn changed_nothing(&self) -> bool {
        *self == SyncReport { conflicts: self.conflicts.clone(), ..Default::default() }
    }
}

impl std::fmt::Display for SyncReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.changed_nothing() {
            return f.write_str("up to date");
        }
        let mut parts = Vec::new();
        for (n, what) in [
            (self.tags, "tags"),
            (self.params, "params"),
            (self.datasets, "datasets"),
            (self.metric_values, "metric values"),
            (self.artifacts, "files"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if self.status {
            parts.push("the status".into());
        }
        let sent = if parts.is_empty() { String::new() } else { format!("sent {}", parts.join(", ")) };
        match (self.created, sent.is_empty()) {
            (true, true) => f.write_str("created the MLflow run"),
            (true, false) => write!(f, "created the MLflow run, {sent}"),
            (false, _) => f.write_str(&sent),
        }
    }
}

/// Sends what the server lacks of one finished run, and notes the outcome in its
/// `run.toml`. A run still running is refused: its live mirror is sending it.
pub fn sync_run(client: &Client, entry: &RunEntry, with_models: bool) -> Result<(MirrorState, SyncReport)> {
    if entry.shown_status() == "running" {
        bail!("{} is still running (its live mirror sends it; sync it once it ended)", entry.folder());
    }
    let old = MirrorState::of(&entry.record).filter(|s| s.tracking_uri == client.uri());
    // What is known of this server's run stays noted if the sync fails before finding it.
    let mut state = old.clone().unwrap_or_else(|| MirrorState {
        tracking_uri: client.uri().to_string(),
        slurm_job_id: MirrorState::of(&entry.record).and_then(|s| s.slurm_job_id),
        ..Default::default()
    });
    let mut report = SyncReport::default();
    let result = push_all(client, entry, with_models, old, &mut state, &mut report);
    if let Err(e) = &result {
        state.mirror_incomplete = true;
        state.reason = Some(e.to_string());
        state.save(&entry.dir)?;
    }
    result.map_err(|e| anyhow!("{}: {e}", entry.folder()))?;
    Ok((state, report))
}

fn push_all(
    client: &Client,
    entry: &RunEntry,
    with_models: bool,
    old: Option<MirrorState>,
    state: &mut MirrorState,
    report: &mut SyncReport,
) -> Result<(), ApiError> {
    let rec = &entry.record;
    let tags = run_tags(entry, state.slurm_job_id.as_deref());
    let (run, created) = locate(client, entry, old, &tags)?;
    state.experiment_id = Some(run.experiment_id.clone());
    state.run_id = Some(run.run_id.clone());
    report.created = created;
    let mut sent = Sent { tags: run.tags.clone(), datasets: run.datasets.iter().cloned().collect() };
    (report.tags, report.datasets) = sent.push(client, &run.run_id, entry, state.slurm_job_id.as_deref())?;
    let (params, conflicts) = missing_params(&run.params, run_params(rec));
    client.log_batch(&run.run_id, &[], &params, &[])?;
    report.params = params.len();
    report.conflicts = conflicts;
    report.metric_values = push_metrics(client, entry, &run)?;
    let (status, artifacts) = finish_remote(client, entry, &run, with_models, state)?;
    report.status = status;
    report.artifacts = artifacts;
    Ok(())
}

/// The MLflow run of this runner run: the one noted in `run.toml`, else the one tagged
/// with its id in the experiment, else a new one.
fn locate(client: &Client, entry: &RunEntry, old: Option<MirrorState>, tags: &[(String, String)]) -> Result<(Run, bool), ApiError> {
    if let Some(id) = old.and_then(|s| s.run_id) {
        if let Some(run) = client.get_run(&id)?.filter(|r| r.lifecycle_stage != "deleted") {
            return Ok((run, false));
        }
    }
    let exp = experiment(client, &entry.record)?;
    if let Some(found) = client.find_run_by_tag(&exp, RUN_ID_TAG, &entry.record.id)? {
        // Search results may leave out data: read the run whole.
        return Ok((client.get_run(&found.run_id)?.unwrap_or(found), false));
    }
    Ok((client.create_run(&exp, &run_name(entry), start_ms(&entry.record), tags)?, true))
}

/// The run's experiment (created when missing), tagged so that MLflow's UI opens it on its
/// training runs.
pub(super) fn experiment(client: &Client, record: &crate::track::RunRecord) -> Result<String, ApiError> {
    let kind = [(EXPERIMENT_KIND.0.to_string(), EXPERIMENT_KIND.1.to_string())];
    client.get_or_create_experiment(&experiment_name(record), &kind)
}

/// The tags and dataset inputs an MLflow run holds, as far as runner knows: what the
/// server said, plus what was sent since.
#[derive(Debug, Default)]
pub(super) struct Sent {
    pub tags: BTreeMap<String, String>,
    pub datasets: BTreeSet<(String, String)>,
}

impl Sent {
    /// Sends the tags that are missing or changed (a tag can be set again: the status, a
    /// goal noted once a fit starts) and the dataset inputs the run lacks; returns how many of each.
    pub fn push(&mut self, client: &Client, run_id: &str, entry: &RunEntry, slurm_job_id: Option<&str>) -> Result<(usize, usize), ApiError> {
        let tags: Vec<(String, String)> = run_tags(entry, slurm_job_id).into_iter().filter(|(k, v)| self.tags.get(k) != Some(v)).collect();
        let datasets: Vec<_> =
            run_datasets(&entry.record).into_iter().filter(|d| !self.datasets.contains(&(d.name.clone(), d.digest.clone()))).collect();
        client.log_batch(run_id, &[], &[], &tags)?;
        client.log_inputs(run_id, &datasets)?;
        let counts = (tags.len(), datasets.len());
        self.tags.extend(tags);
        self.datasets.extend(datasets.into_iter().map(|d| (d.name, d.digest)));
        Ok(counts)
    }
}

/// Params the server lacks, and those it holds with another value (left alone: changing a
/// param is refused by MLflow).
pub(super) fn missing_params(have: &BTreeMap<String, String>, want: Vec<(String, String)>) -> (Vec<(String, String)>, Vec<String>) {
    let mut missing = Vec::new();
    let mut conflicts = Vec::new();
    for (k, v) in want {
        match have.get(&k) {
            None => missing.push((k, v)),
            Some(h) if *h != v => conflicts.push(format!("{k}: server has `{h}`, run has `{v}`")),
            Some(_) => {}
        }
    }
    (missing, conflicts)
}

/// Values compare by their bits, with every NaN alike and the server's stand-in for an
/// infinity (the largest double) taken as one.
fn value_key(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else if v >= f64::MAX {
        f64::INFINITY.to_bits()
    } else if v <= -f64::MAX {
        f64::NEG_INFINITY.to_bits()
    } else {
        (v + 0.0).to_bits()
    }
}

/// Sends the metric values of `metrics.jsonl` the server does not hold (same key, step
/// and value), as many times as they are missing.
fn push_metrics(client: &Client, entry: &RunEntry, run: &Run) -> Result<usize, ApiError> {
    let file = read_metrics(&entry.dir).map_err(|e| ApiError {
        call: "read metrics.jsonl".into(),
        status: None,
        code: String::new(),
        message: format!("{e:#}"),
    })?;
    let mut by_key: BTreeMap<String, Vec<(f64, i64)>> = BTreeMap::new();
    for (k, v, s) in all_points(&file.records) {
        by_key.entry(k).or_default().push((v, s));
    }
    let now = now_ms();
    let mut missing = Vec::new();
    for (key, points) in by_key {
        let mut have: HashMap<(i64, u64), usize> = HashMap::new();
        if run.metric_keys.contains(&key) {
            for m in client.metric_history(&run.run_id, &key)? {
                *have.entry((m.step, value_key(m.value))).or_default() += 1;
            }
        }
        for (value, step) in points {
            match have.get_mut(&(step, value_key(value))) {
                Some(n) if *n > 0 => *n -= 1,
                _ => missing.push(Metric { key: key.clone(), value, step, timestamp: now }),
            }
        }
    }
    client.log_batch(&run.run_id, &missing, &[], &[])?;
    Ok(missing.len())
}

/// Ends a run on the server: its final status and end time, then the artifacts it lacks,
/// `run.toml` last and already noting the mirror as complete (so that the copy on the
/// server is the final one). Returns (status sent, files sent). Shared by the live mirror.
pub(super) fn finish_remote(
    client: &Client,
    entry: &RunEntry,
    run: &Run,
    with_models: bool,
    state: &mut MirrorState,
) -> Result<(bool, usize), ApiError> {
    let (status, end) = final_status(entry);
    let status_sent = run.status != status.as_str() || (run.end_time.is_none() && end.is_some());
    if status_sent {
        client.update_run(&run.run_id, status, end)?;
    }
    let have = client.list_artifacts(&run.run_id)?;
    state.mirror_incomplete = false;
    state.reason = None;
    state.save(&entry.dir).map_err(|e| ApiError { call: "write run.toml".into(), status: None, code: String::new(), message: format!("{e:#}") })?;
    let mut sent = 0;
    for rel in artifact_files(&entry.dir, with_models) {
        let path = entry.dir.join(&rel);
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        let same = match have.get(&rel) {
            Some(&size) if size == meta.len() => {
                rel != RECORD_FILE || client.download_artifact(run, &rel)? == std::fs::read(&path).unwrap_or_default()
            }
            _ => false,
        };
        if !same {
            client.upload_artifact(run, &rel, &path)?;
            sent += 1;
        }
    }
    Ok((status_sent, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_on_the_server_are_never_changed() {
        let have = BTreeMap::from([("lr".to_string(), "0.1".to_string()), ("bs".to_string(), "32".to_string())]);
        let want = vec![("lr".to_string(), "0.1".to_string()), ("bs".to_string(), "64".to_string()), ("seed".to_string(), "42".to_string())];
        let (missing, conflicts) = missing_params(&have, want);
        assert_eq!(missing, vec![("seed".to_string(), "42".to_string())]);
        assert_eq!(conflicts.len(), 1);
        assert!(conflicts[0].contains("bs"), "{conflicts:?}");
    }

    #[test]
    fn values_match_across_the_servers_encodings() {
        assert_eq!(value_key(f64::NAN), value_key(-f64::NAN));
        assert_eq!(value_key(f64::INFINITY), value_key(f64::MAX));
        assert_eq!(value_key(f64::NEG_INFINITY), value_key(f64::MIN));
        assert_eq!(value_key(0.0), value_key(-0.0));
        assert_ne!(value_key(0.1), value_key(0.1 + 1e-17_f64.max(f64::EPSILON)));
    }

    #[test]
    fn the_report_says_what_was_sent() {
        assert_eq!(SyncReport::default().to_string(), "up to date");
        let r = SyncReport { created: true, params: 2, metric_values: 10, status: true, artifacts: 4, ..Default::default() };
        assert_eq!(r.to_string(), "created the MLflow run, sent 2 params, 10 metric values, 4 files, the status");
    }
}
