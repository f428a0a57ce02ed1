//! `RunConfig`: everything that decides what a run does, in one typed value. The command
//! line resolves its flags into it; a rerun or resume builds it from the run's record; a
//! sweep stores it in its manifest and each task reads it back, so nothing re-parses argv.
use crate::precision::Precision;
use crate::script::limits::Limits;
use crate::threads::Threads;
use crate::track::mlflow::Tracking;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The experiment script.
    pub script: PathBuf,
    /// Params as the user gave them (`--set name=value`); they win over `config`.
    #[serde(default)]
    pub sets: Vec<String>,
    /// A sweep point's own values (`--grid`), which win over `sets`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grid: Vec<String>,
    /// A TOML file of params (`--config`), read when the run starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// The seed that drives every random choice.
    pub seed: u64,
    /// auto, cpu, cuda or cuda:N, parsed when the run starts.
    pub device: String,
    /// Where run folders go.
    pub runs_dir: PathBuf,
    /// What the script may use: operations, array, string and map sizes.
    pub limits: Limits,
    #[serde(default)]
    pub tracking: TrackSettings,
    /// The threads to compute with (`--threads`, a sweep point's share, a recorded run's);
    /// none: what the environment gives (see `crate::threads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<Threads>,
    /// The precision learners train in unless a script says otherwise (a config written
    /// before it was recorded ran in float32).
    #[serde(default = "unrecorded_precision")]
    pub precision: Precision,
}

fn unrecorded_precision() -> Precision {
    crate::precision::UNRECORDED
}

/// The MLflow server a run is mirrored to, as given (checked when the run starts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackSettings {
    /// http://HOST:PORT; none: no mirror.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Also upload the checkpoints (models/).
    #[serde(default)]
    pub models: bool,
}

impl TrackSettings {
    pub fn tracking(&self) -> Result<Option<Tracking>, String> {
        Tracking::from_uri(self.uri.as_deref(), self.models)
    }
}

impl RunConfig {
    /// The config with its script, config file and runs dir absolute, for tasks that run
    /// from another folder (sweep points).
    pub fn absolute(&self) -> Result<RunConfig> {
        let abs = |p: &Path| std::path::absolute(p).with_context(|| format!("cannot make {} absolute", p.display()));
        Ok(RunConfig {
            script: abs(&self.script)?,
            config: self.config.as_deref().map(abs).transpose()?,
            runs_dir: abs(&self.runs_dir)?,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_toml_and_makes_its_paths_absolute() {
        let c = RunConfig {
            script: "experiments/hello.rhai".into(),
            sets: vec!["lr=3e-3".into(), "name=a b".into()],
            grid: vec!["bs=16".into()],
            config: Some("params.toml".into()),
            seed: 7,
            device: "cuda:1".into(),
            runs_dir: "runs".into(),
            limits: Limits { operations: 5, array_size: 0, string_size: 9, map_size: 3 },
            tracking: TrackSettings { uri: Some("http://127.0.0.1:5000".into()), models: true },
            threads: Some(Threads { count: 3, from: crate::threads::ThreadSource::SweepShare }),
            precision: Precision::Bf16,
        };
        let text = toml::to_string_pretty(&c).unwrap();
        assert_eq!(toml::from_str::<RunConfig>(&text).unwrap(), c, "{text}");
        let a = c.absolute().unwrap();
        assert!(a.script.is_absolute() && a.runs_dir.is_absolute() && a.config.as_deref().is_some_and(Path::is_absolute));
        assert!(a.script.ends_with("experiments/hello.rhai"));
        assert_eq!(
            (a.sets, a.grid, a.seed, a.device, a.limits, a.tracking, a.threads),
            (c.sets, c.grid, c.seed, c.device, c.limits, c.tracking, c.threads)
        );
    }

    #[test]
    fn a_config_without_tracking_threads_or_precision_reads_as_their_defaults() {
        let text = "script = \"s.rhai\"\nseed = 1\ndevice = \"cpu\"\nruns_dir = \"/r\"\n\
                    [limits]\noperations = 1\narray_size = 2\nstring_size = 3\nmap_size = 4\n";
        let c: RunConfig = toml::from_str(text).unwrap();
        assert_eq!((c.sets.len(), c.config, c.tracking), (0, None, TrackSettings::default()));
        assert_eq!(
            (c.threads, c.precision),
            (None, crate::precision::Precision::Fp32),
            "older configs: the environment's threads, the float32 they ran in"
        );
    }
}
