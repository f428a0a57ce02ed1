//! Starting a sweep: its folder and manifest, then submissions. Each submission gives every
//! point it runs a run folder before anything starts (so a task's output is never lost)
//! and, for Slurm, is one job array per `MaxArraySize` chunk: `sbatch --array=0-N%P` whose
//! task `i` runs the submission's `i`-th point.
use super::grid::{points, Axis};
use super::manifest::{ArraySub, Attempt, Backend, Manifest, Point, Ranks};
use super::slurm;
use crate::run::{check, Refusal, RunConfig};
use crate::track::{RunRecord, Status};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// What a new sweep is made of.
pub struct SweepSpec {
    /// What every point runs with, its paths absolute.
    pub run: RunConfig,
    pub axes: Vec<Axis>,
    pub backend: Backend,
    pub sbatch: Vec<String>,
    pub max_parallel: Option<usize>,
    /// CPUs each Slurm task asks for.
    pub cpus_per_task: Option<usize>,
    /// Each point a data-parallel group of this many Slurm tasks.
    pub ranks: Option<Ranks>,
}

/// Checks every point (the shared config plus its grid values) before the first starts:
/// a bad value fails the sweep, not its tenth run. An error names the refused point's
/// settings and why.
pub fn check_points(base: &RunConfig, axes: &[Axis]) -> Result<(), (Vec<String>, Refusal)> {
    for combo in points(axes) {
        let mut cfg = base.clone();
        cfg.grid = combo.clone();
        check(&cfg).map_err(|r| (combo, r))?;
    }
    Ok(())
}

/// The runner binary the sweep's tasks run.
pub fn runner_exe() -> Result<PathBuf> {
    std::env::current_exe().context("cannot find the runner binary for the sweep's tasks")
}

/// A new sweep id: `sweep-<date>-<time>-<4 hex>`.
pub fn new_id() -> String {
    format!("sweep-{}-{:04x}", chrono::Local::now().format("%Y%m%d-%H%M%S"), rand::random::<u16>())
}

/// The manifest of a new sweep (not yet written).
pub fn plan(spec: &SweepSpec) -> Manifest {
    let file = spec.run.script.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "script.rhai".into());
    Manifest {
        id: new_id(),
        created: chrono::Local::now().to_rfc3339(),
        script_copy: format!("script/{file}"),
        backend: spec.backend,
        sbatch: spec.sbatch.clone(),
        max_parallel: spec.max_parallel,
        cpus_per_task: spec.cpus_per_task,
        ranks: spec.ranks,
        run: spec.run.clone(),
        grid: spec.axes.clone(),
        points: points(&spec.axes).into_iter().enumerate().map(|(index, sets)| Point { index, sets, attempts: vec![] }).collect(),
        arrays: vec![],
    }
}

pub fn sweep_dir(m: &Manifest) -> PathBuf {
    super::manifest::sweeps_dir(&m.runs_dir()).join(&m.id)
}

/// Writes the sweep's folder: manifest and the copy of the script its tasks run.
pub fn create(m: &Manifest) -> Result<PathBuf> {
    let dir = sweep_dir(m);
    let script = &m.run.script;
    std::fs::create_dir_all(dir.join("script")).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::copy(script, dir.join(&m.script_copy)).with_context(|| format!("cannot copy {} into the sweep", script.display()))?;
    m.write(&dir)?;
    Ok(dir)
}

/// One submission to make: its index in `arrays` and its points.
pub struct Submission {
    pub array: usize,
    pub points: Vec<usize>,
}

/// Splits `points` into submissions of at most `chunk` tasks (Slurm's `MaxArraySize`
/// bounds the largest index, so task indices restart at 0 in each chunk).
pub fn chunks(m: &Manifest, points: &[usize], chunk: usize) -> Vec<Submission> {
    points.chunks(chunk.max(1)).enumerate().map(|(i, p)| Submission { array: m.arrays.len() + i, points: p.to_vec() }).collect()
}

/// Records a submission in the manifest and gives each of its points a run folder: a new
/// one, or the latest attempt's when that run was interrupted and can resume there.
/// With `dry_run`, nothing is created.
pub fn add_submission(m: &mut Manifest, sweep_dir: &Path, sub: &Submission, dry_run: bool) -> Result<()> {
    let runs_dir = m.runs_dir();
    let stem = Path::new(&m.script_copy).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let links = sweep_dir.join("arrays").join(sub.array.to_string());
    if !dry_run {
        std::fs::create_dir_all(&links).with_context(|| format!("cannot create {}", links.display()))?;
    }
    for (task, &index) in sub.points.iter().enumerate() {
        let run = match resumable(&runs_dir, &m.points[index]) {
            Some(run) => run,
            None if dry_run => format!("<new run folder of point {index}>"),
            None => crate::session::new_run_dir(&runs_dir, &stem)?.2,
        };
        if !dry_run {
            let link = links.join(task.to_string());
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(runs_dir.join(&run), &link).with_context(|| format!("cannot link {}", link.display()))?;
        }
        m.points[index].attempts.push(Attempt { run, array: sub.array, task });
    }
    m.arrays.push(ArraySub { job: None, points: sub.points.clone(), submitted: chrono::Local::now().to_rfc3339(), pid: None, pid_start: None });
    Ok(())
}

/// The latest attempt's folder when its run stopped part-way (interrupted, or killed while
/// running) and so resumes where it stopped.
fn resumable(runs_dir: &Path, p: &Point) -> Option<String> {
    let a = p.attempts.last()?;
    let rec = RunRecord::read(&runs_dir.join(&a.run)).ok()?;
    matches!(rec.status, Status::Interrupted | Status::Running).then(|| a.run.clone())
}

/// The batch script of one submission: our `#SBATCH` options (the user's `--sbatch` ones
/// are given on the command line, where they win), and the task itself; with `ranks`, the
/// task run by one `srun` over the allocation, whose tasks form the point's group (its CPUs
/// per task given again: srun does not take them from the batch job since Slurm 22.05).
pub fn batch_script(m: &Manifest, sweep_dir: &Path, array: usize, runner: &Path) -> String {
    let n = m.arrays[array].points.len();
    let limit = m.max_parallel.map(|p| format!("%{p}")).unwrap_or_default();
    let cpus = m.cpus_per_task.map(|n| format!("#SBATCH --cpus-per-task={n}\n")).unwrap_or_default();
    let (tasks, srun) = match m.ranks {
        Some(r) => (
            format!("#SBATCH --nodes={}\n#SBATCH --ntasks-per-node={}\n", r.nodes, r.ntasks_per_node),
            format!("srun {}", m.cpus_per_task.map(|n| format!("--cpus-per-task={n} ")).unwrap_or_default()),
        ),
        None => (String::new(), String::new()),
    };
    let q = |p: &Path| shlex::try_quote(&p.display().to_string()).map(|c| c.into_owned()).unwrap_or_else(|_| p.display().to_string());
    let links = sweep_dir.join("arrays").join(array.to_string());
    format!(
        "#!/bin/sh\n\
         # runner sweep {id}, submission {array}: task i runs point points[i] of {manifest}\n\
         #SBATCH --job-name={name}\n\
         #SBATCH --array=0-{last}{limit}\n\
         #SBATCH --output={out}\n\
         #SBATCH --open-mode=append\n\
         {cpus}\
         {tasks}\
         exec {srun}{runner} sweep task {dir} --array {array}\n",
        id = m.id,
        manifest = sweep_dir.join(super::manifest::MANIFEST_FILE).display(),
        name = slurm::job_name(&m.id),
        last = n - 1,
        out = links.join("%a").join("slurm-%A_%a.out").display(),
        runner = q(runner),
        dir = q(sweep_dir),
    )
}

/// One batch script of a dry run: where it would be written, its text, and the `sbatch`
/// command line that would submit it.
pub struct DryBatch {
    pub path: PathBuf,
    pub text: String,
    pub command: String,
}

/// What `--on slurm --dry-run` would submit (every point); creates nothing.
pub fn dry_run(m: &mut Manifest, runner: &Path) -> Result<Vec<DryBatch>> {
    let dir = sweep_dir(m);
    let chunk = slurm_chunk().unwrap_or(slurm::DEFAULT_MAX_ARRAY_SIZE);
    let all: Vec<usize> = (0..m.points.len()).collect();
    let mut batches = Vec::new();
    for sub in chunks(m, &all, chunk) {
        add_submission(m, &dir, &sub, true)?;
        let path = dir.join("arrays").join(sub.array.to_string()).join("batch.sh");
        let text = batch_script(m, &dir, sub.array, runner);
        let script = path.display().to_string();
        let command: Vec<&str> = ["sbatch", "--parsable"].into_iter().chain(m.sbatch.iter().map(String::as_str)).chain([script.as_str()]).collect();
        batches.push(DryBatch { path, text, command: shlex::try_join(command).unwrap_or_default() });
    }
    Ok(batches)
}

/// Starts a sweep on Slurm: its folder, then every point. Returns the folder and the jobs
/// as `submit_points` names them.
pub fn submit_new(m: &mut Manifest, runner: &Path) -> Result<(PathBuf, String)> {
    let chunk = slurm_chunk()?;
    let dir = create(m)?;
    let all: Vec<usize> = (0..m.points.len()).collect();
    let jobs = submit_points(m, &dir, &all, chunk, runner)?;
    Ok((dir, jobs))
}

/// Submits `points` to Slurm as new submissions of at most `chunk` tasks each, the
/// manifest written before the first `sbatch`; returns how to name the jobs to users.
pub fn submit_points(m: &mut Manifest, sweep_dir: &Path, points: &[usize], chunk: usize, runner: &Path) -> Result<String> {
    let from = m.arrays.len();
    for sub in chunks(m, points, chunk) {
        add_submission(m, sweep_dir, &sub, false)?;
    }
    m.write(sweep_dir)?;
    let mut named = Vec::new();
    for k in from..m.arrays.len() {
        let job = sbatch(m, sweep_dir, k, runner)?;
        named.push(format!("{job} (array {})", array_spec(m, k)));
    }
    Ok(format!("Slurm job{} {}", if named.len() > 1 { "s" } else { "" }, named.join(", ")))
}

/// Submits one array with `sbatch` and records its job id.
pub fn sbatch(m: &mut Manifest, sweep_dir: &Path, array: usize, runner: &Path) -> Result<String> {
    let script = sweep_dir.join("arrays").join(array.to_string()).join("batch.sh");
    std::fs::write(&script, batch_script(m, sweep_dir, array, runner)).with_context(|| format!("cannot write {}", script.display()))?;
    let job = slurm::sbatch(&script, &m.sbatch)?;
    m.arrays[array].job = Some(job.clone());
    m.write(sweep_dir)?;
    Ok(job)
}

/// The `--array` spec of a submission, as printed to users (`0-3%4`).
pub fn array_spec(m: &Manifest, array: usize) -> String {
    format!("0-{}{}", m.arrays[array].points.len().saturating_sub(1), m.max_parallel.map(|p| format!("%{p}")).unwrap_or_default())
}

/// Submission chunk size for this cluster.
pub fn slurm_chunk() -> Result<usize> {
    let max = slurm::max_array_size()?;
    if max == 0 {
        bail!("the cluster's MaxArraySize is 0: job arrays are disabled");
    }
    Ok(max)
}
