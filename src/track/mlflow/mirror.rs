//! The live mirror of a run in progress. A background thread tails the run's
//! `metrics.jsonl` and `run.toml` (every 1.5 s) and sends the new metric values, params,
//! tags and dataset inputs, so the training thread never waits on the server and the
//! mirror does not depend on how the training loop is written. At the end it sends the
//! final status (and its tags) and the artifacts.
//! After the first failed call it stops sending and notes why in `run.toml`: the run goes
//! on, and `runner sync` sends what is missing later.
use super::client::{now_ms, ApiError, Metric, Run};
use super::mapping::{run_name, run_params, run_tags, MetricRows};
use super::sync::{experiment, finish_remote, missing_params, Sent};
use super::{MirrorState, Tracking};
use crate::track::metrics::METRICS_FILE;
use crate::track::record::RunRecord;
use crate::track::runs::RunEntry;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(1500);

pub struct Mirror {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Mirror {
    /// Starts mirroring the run in `dir` (its `run.toml` already written); returns at once.
    pub fn start(dir: &Path, tracking: Tracking) -> Mirror {
        let (stop, rx) = channel();
        let mut live = Live {
            tracking,
            dir: dir.to_path_buf(),
            slurm_job_id: std::env::var("SLURM_JOB_ID").ok().filter(|s| !s.is_empty()),
            run: None,
            failed: None,
            offset: 0,
            pending: Vec::new(),
            rows: MetricRows::default(),
            sent_params: BTreeMap::new(),
            sent: Sent::default(),
        };
        let thread = std::thread::spawn(move || loop {
            live.pass();
            match rx.recv_timeout(POLL) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) => {
                    live.pass();
                    return live.finish();
                }
                // Dropped without `finish`: the run's end is unknown, `runner sync` will tell.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        });
        Mirror { stop, thread }
    }

    /// Sends the last metric values, the final status and the artifacts, and notes the
    /// outcome in `run.toml`. Call once the run record is finished.
    pub fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

struct Live {
    tracking: Tracking,
    dir: PathBuf,
    slurm_job_id: Option<String>,
    run: Option<Run>,
    /// Why the mirror stopped sending.
    failed: Option<String>,
    /// How far `metrics.jsonl` has been read (whole lines only).
    offset: u64,
    /// Values read but not yet accepted by the server.
    pending: Vec<Metric>,
    rows: MetricRows,
    sent_params: BTreeMap<String, String>,
    sent: Sent,
}

impl Live {
    fn pass(&mut self) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.send_new() {
            tracing::warn!("mlflow: {e}; the run goes on unmirrored (`runner sync` sends what is missing later)");
            self.failed = Some(e.to_string());
        }
    }

    /// Creates the MLflow run on the first pass, then sends new params, tags, dataset
    /// inputs and metric values.
    fn send_new(&mut self) -> Result<(), ApiError> {
        let Ok(record) = RunRecord::read(&self.dir) else { return Ok(()) };
        let entry = RunEntry { dir: self.dir.clone(), record };
        self.read_metrics();
        let client = &self.tracking.client;
        if self.run.is_none() {
            let exp = experiment(client, &entry.record)?;
            let tags = run_tags(&entry, self.slurm_job_id.as_deref());
            let run = client.create_run(&exp, &run_name(&entry), super::mapping::start_ms(&entry.record), &tags)?;
            tracing::info!(run_id = %run.run_id, experiment_id = %exp, uri = client.uri(), "mlflow run created");
            self.sent.tags.extend(tags);
            self.run = Some(run);
        }
        let run_id = self.run.as_ref().map(|r| r.run_id.clone()).unwrap_or_default();
        self.sent.push(client, &run_id, &entry, self.slurm_job_id.as_deref())?;
        let (params, _) = missing_params(&self.sent_params, run_params(&entry.record));
        client.log_batch(&run_id, &self.pending, &params, &[])?;
        self.pending.clear();
        self.sent_params.extend(params);
        Ok(())
    }

    /// Reads the complete lines appended to `metrics.jsonl` since the last pass.
    fn read_metrics(&mut self) {
        let Ok(mut f) = std::fs::File::open(self.dir.join(METRICS_FILE)) else { return };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).and_then(|_| f.read_to_end(&mut buf)).is_err() {
            return;
        }
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else { return };
        self.offset += end as u64 + 1;
        let now = now_ms();
        for line in buf[..end].split(|&b| b == b'\n') {
            if let Ok(serde_json::Value::Object(row)) = serde_json::from_slice(line) {
                self.pending.extend(self.rows.points(&row).into_iter().map(|(key, value, step)| Metric { key, value, step, timestamp: now }));
            }
        }
    }

    /// The end of the run: status (and the tags that changed with it) and artifacts, then
    /// the outcome in `run.toml`.
    fn finish(mut self) {
        let mut state = MirrorState {
            tracking_uri: self.tracking.client.uri().to_string(),
            experiment_id: self.run.as_ref().map(|r| r.experiment_id.clone()),
            run_id: self.run.as_ref().map(|r| r.run_id.clone()),
            slurm_job_id: self.slurm_job_id.clone(),
            mirror_incomplete: true,
            reason: self.failed.clone().or_else(|| self.run.is_none().then(|| "no MLflow run was created".into())),
        };
        if let Some(run) = self.run.as_ref().filter(|_| state.reason.is_none()) {
            let done = RunRecord::read(&self.dir).map_err(|e| format!("{e:#}")).and_then(|record| {
                let entry = RunEntry { dir: self.dir.clone(), record };
                let client = &self.tracking.client;
                self.sent.push(client, &run.run_id, &entry, self.slurm_job_id.as_deref()).map_err(|e| e.to_string())?;
                finish_remote(client, &entry, run, self.tracking.with_models, &mut state).map_err(|e| e.to_string())
            });
            if let Err(e) = done {
                state.mirror_incomplete = true;
                state.reason = Some(e);
            }
        }
        if let Err(e) = state.save(&self.dir) {
            eprintln!("runner: mlflow: cannot note the mirror in run.toml: {e:#}");
        }
        match (&state.reason, state.page()) {
            (Some(why), _) => eprintln!("runner: mlflow: mirror incomplete ({why}); `runner sync` sends what is missing"),
            (None, Some(page)) => eprintln!("mlflow: {page}"),
            (None, None) => {}
        }
    }
}
