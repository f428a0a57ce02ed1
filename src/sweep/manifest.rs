//! `sweep.toml`: what a sweep is (script copy, grid, the `RunConfig` every point runs
//! with) and where each point's attempts went (run folder, array submission, task index).
//! It lives in `<runs>/sweeps/<id>/`, written only by the commands that submit, read by
//! the tasks and by `sweep status`; the run folders stay the truth about how points ended.
use super::grid::Axis;
use crate::run::RunConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "sweep.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Local,
    Slurm,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Backend, String> {
        match s {
            "local" => Ok(Backend::Local),
            "slurm" => Ok(Backend::Slurm),
            _ => Err(format!("unknown backend `{s}` (local, slurm)")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub created: String,
    /// The copy of `run.script` that tasks run, relative to the sweep folder, so that
    /// later edits do not leak in.
    pub script_copy: String,
    pub backend: Backend,
    /// Options passed through to `sbatch`.
    #[serde(default)]
    pub sbatch: Vec<String>,
    /// At most this many points run at once (`%N` of the array, `--jobs` locally).
    #[serde(default)]
    pub max_parallel: Option<usize>,
    /// CPUs each Slurm task asks for (`--cpus-per-task`); its run takes its threads from them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_per_task: Option<usize>,
    /// On Slurm, every point as a data-parallel group of srun tasks (None: one process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranks: Option<Ranks>,
    /// What every point runs with, its paths absolute; a point adds its `sets`.
    pub run: RunConfig,
    pub grid: Vec<Axis>,
    pub points: Vec<Point>,
    #[serde(default)]
    pub arrays: Vec<ArraySub>,
}

/// The tasks of each array task, one `srun` of them forming the point's group
/// (`--nodes`, `--ntasks-per-node`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ranks {
    pub nodes: usize,
    pub ntasks_per_node: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub index: usize,
    /// `name=value` settings of this point.
    pub sets: Vec<String>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// The run folder's name under the runs dir.
    pub run: String,
    /// Which submission (`arrays[i]`) ran it, and its task index there.
    pub array: usize,
    pub task: usize,
}

/// One submission: a Slurm job array (or a local batch) over some points, task `i`
/// running `points[i]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArraySub {
    /// The Slurm array job id (none for local batches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    pub points: Vec<usize>,
    pub submitted: String,
    /// The local process that runs this batch, to tell pending from missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
}

impl Point {
    pub fn params(&self) -> Vec<(String, String)> {
        self.sets.iter().map(|s| s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap_or((s.clone(), String::new()))).collect()
    }
}

impl Manifest {
    pub fn read(sweep_dir: &Path) -> Result<Manifest> {
        let path = sweep_dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let table: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not a valid sweep manifest", path.display()))?;
        if table.contains_key("run_args") && !table.contains_key("run") {
            bail!("{} was written by an older runner (its points' options are argv, `run_args`): start the sweep again", path.display());
        }
        table.try_into().with_context(|| format!("{} is not a valid sweep manifest", path.display()))
    }

    /// Written atomically (temp file + rename): tasks reading it never see half a manifest.
    pub fn write(&self, sweep_dir: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).context("cannot serialise the sweep manifest")?;
        crate::track::record::write_atomic(&sweep_dir.join(MANIFEST_FILE), &text)
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.run.runs_dir.clone()
    }

    /// What task `point` runs: the shared config on the sweep's copy of the script, with
    /// the point's own settings as its `--grid` values.
    pub fn point_config(&self, sweep_dir: &Path, point: &Point) -> RunConfig {
        let mut cfg = self.run.clone();
        cfg.script = sweep_dir.join(&self.script_copy);
        cfg.grid = point.sets.clone();
        cfg
    }

    /// The point that task `task` of submission `array` runs, and its attempt there.
    pub fn task(&self, array: usize, task: usize) -> Result<(&Point, &Attempt, usize)> {
        let Some(sub) = self.arrays.get(array) else { bail!("sweep {} has no submission {array}", self.id) };
        let Some(&index) = sub.points.get(task) else { bail!("submission {array} of sweep {} has no task {task}", self.id) };
        let point = &self.points[index];
        let (n, attempt) = point
            .attempts
            .iter()
            .enumerate()
            .find(|(_, a)| a.array == array && a.task == task)
            .context("the manifest has no attempt for this task")?;
        Ok((point, attempt, n + 1))
    }
}

/// Where sweeps keep their manifests: `<runs>/sweeps/<id>/`.
pub fn sweeps_dir(runs_dir: &Path) -> PathBuf {
    runs_dir.join("sweeps")
}

/// Resolves a sweep id (or a unique prefix, or `last` for the newest) to its folder.
pub fn find_sweep(runs_dir: &Path, name: &str) -> Result<PathBuf> {
    let direct = Path::new(name);
    if direct.join(MANIFEST_FILE).is_file() {
        return Ok(direct.to_path_buf());
    }
    let root = sweeps_dir(runs_dir);
    let mut found: Vec<PathBuf> =
        std::fs::read_dir(&root).map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.join(MANIFEST_FILE).is_file()).collect()).unwrap_or_default();
    if name == "last" {
        // Ids start with their creation time, so the newest sorts last.
        return found.into_iter().max().with_context(|| format!("no sweeps under {}", root.display()));
    }
    found.retain(|p| p.file_name().and_then(|f| f.to_str()).is_some_and(|f| f.starts_with(name)));
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("no sweep named `{name}` under {} (sweeps started with --on slurm or --on local have one)", root.display()),
        _ => bail!("`{name}` is ambiguous: it starts {} sweeps", found.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::limits::Limits;

    fn manifest() -> Manifest {
        let run = RunConfig {
            script: "/work/exp/t.rhai".into(),
            sets: vec!["lr=0.1".into()],
            grid: vec![],
            config: None,
            seed: 3,
            device: "cpu".into(),
            runs_dir: "/work/runs".into(),
            limits: Limits { operations: 1000, ..Limits::default() },
            tracking: Default::default(),
            threads: None,
            precision: crate::precision::Precision::Fp32,
        };
        let axes = vec![Axis { name: "n".into(), values: vec!["1".into(), "2".into()] }];
        let spec = super::super::submit::SweepSpec {
            run,
            axes,
            backend: Backend::Local,
            sbatch: vec![],
            max_parallel: Some(2),
            cpus_per_task: None,
            ranks: None,
        };
        super::super::submit::plan(&spec)
    }

    #[test]
    fn tasks_read_back_the_config_with_their_point_added() {
        let d = tempfile::tempdir().unwrap();
        let m = manifest();
        m.write(d.path()).unwrap();
        let back = Manifest::read(d.path()).unwrap();
        assert_eq!(back.run, m.run);
        assert_eq!(back.runs_dir(), PathBuf::from("/work/runs"));
        let cfg = back.point_config(Path::new("/s"), &back.points[1]);
        assert_eq!(cfg.script, PathBuf::from("/s/script/t.rhai"), "tasks run the sweep's copy");
        assert_eq!((cfg.sets, cfg.grid), (vec!["lr=0.1".to_string()], vec!["n=2".to_string()]));
        assert_eq!((cfg.seed, cfg.limits.operations), (3, 1000));
    }

    #[test]
    fn a_manifest_of_argv_is_refused_with_a_reason() {
        let d = tempfile::tempdir().unwrap();
        let text = "id = \"sweep-x\"\ncreated = \"t\"\nscript = \"/a.rhai\"\nscript_copy = \"script/a.rhai\"\nseed = 1\nbackend = \"local\"\n\
                    runs_dir = \"/r\"\nrun_args = [\"--seed\", \"1\"]\ngrid = []\npoints = []\n";
        std::fs::write(d.path().join(MANIFEST_FILE), text).unwrap();
        let e = format!("{:#}", Manifest::read(d.path()).unwrap_err());
        assert!(e.contains("older runner") && e.contains("start the sweep again"), "{e}");
    }
}
