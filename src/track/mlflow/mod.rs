//! Team tracking: every run mirrored to an MLflow tracking server, offline-safe. The run
//! folder stays the source of truth; the live mirror sends it as it grows, and `runner
//! sync` later sends whatever the server lacks (the server was down, the run crashed).
//! The server never fails or stalls a run: calls are bounded, and a failure is noted in
//! `run.toml` (`[mlflow] mirror_incomplete = true` with the reason).
pub mod client;
pub mod mapping;
pub mod mirror;
pub mod sync;

pub use client::Client;
pub use mirror::Mirror;
pub use sync::{sync_run, SyncReport};

use crate::track::record::RunRecord;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The key of the `[mlflow]` table in `run.toml`.
const STATE_KEY: &str = "mlflow";

/// Where a run is mirrored, as noted in its `run.toml` (`[mlflow]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MirrorState {
    pub tracking_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The Slurm job the run ran in: tagged on the MLflow run, kept here for `sync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
    pub mirror_incomplete: bool,
    /// Why the mirror is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl MirrorState {
    pub fn of(record: &RunRecord) -> Option<MirrorState> {
        record.extra.get(STATE_KEY)?.clone().try_into().ok()
    }

    /// Notes the state in the run folder's `run.toml` (read afresh), when it changed.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut rec = RunRecord::read(dir)?;
        if MirrorState::of(&rec).as_ref() == Some(self) {
            return Ok(());
        }
        rec.extra.insert(STATE_KEY.into(), toml::Value::try_from(self)?);
        rec.write(dir)
    }

    /// The web page of the MLflow run, when there is one. MLflow 3's UI shows a run as a
    /// GenAI evaluation unless its link asks for the model-training view (the browser's
    /// workflow switch decides otherwise; the experiment's kind tag does not, in 3.17).
    pub fn page(&self) -> Option<String> {
        Some(format!(
            "{}/#/experiments/{}/runs/{}?workflowType=machine_learning",
            self.tracking_uri.trim_end_matches('/'),
            self.experiment_id.as_ref()?,
            self.run_id.as_ref()?
        ))
    }
}

/// What `runner runs` shows: `yes`, `incomplete`, or nothing for a run never mirrored.
pub fn mirror_column(record: &RunRecord) -> &'static str {
    match MirrorState::of(record) {
        Some(s) if s.mirror_incomplete => "incomplete",
        Some(_) => "yes",
        None => "",
    }
}

/// Where to mirror runs: the tracking server and whether checkpoints go too.
pub struct Tracking {
    pub client: Client,
    pub with_models: bool,
}

impl Tracking {
    /// From `--track URI` / `MLFLOW_TRACKING_URI`: None when unset or empty, an error when
    /// it is not an http(s) address.
    pub fn from_uri(uri: Option<&str>, with_models: bool) -> Result<Option<Tracking>, String> {
        match uri.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(None),
            Some(u) => Ok(Some(Tracking { client: Client::new(u)?, with_models })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_run_toml_and_is_written_only_when_changed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("run.toml"),
            "format_version = 1\nid = \"a\"\nname = \"n\"\nscript = \"s.rhai\"\nscript_sha256 = \"0\"\nstatus = \"completed\"\nseed = 1\ncommand = []\n\
             runner_version = \"0\"\nruner = 1\nrunner_commit = \"c\"\nlibtorch = \"2\"\ndevice = \"cpu\"\nhost = \"h\"\nstarted = \"t\"\n",
        )
        .unwrap();
        let rec = RunRecord::read(d.path()).unwrap();
        assert_eq!(mirror_column(&rec), "");
        let s = MirrorState { tracking_uri: "http://127.0.0.1:1".into(), mirror_incomplete: true, reason: Some("down".into()), ..Default::default() };
        s.save(d.path()).unwrap();
        let rec = RunRecord::read(d.path()).unwrap();
        assert_eq!(MirrorState::of(&rec), Some(s.clone()));
        assert_eq!(mirror_column(&rec), "incomplete");
        assert!(rec.extra.contains_key("runer"), "unknown fields are kept");
        let before = std::fs::metadata(d.path().join("run.toml")).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        s.save(d.path()).unwrap();
        assert_eq!(std::fs::metadata(d.path().join("run.toml")).unwrap().modified().unwrap(), before);
        assert!(Tracking::from_uri(Some(""), false).unwrap().is_none());
        assert!(Tracking::from_uri(Some("file:./mlruns"), false).is_err());
    }
}
