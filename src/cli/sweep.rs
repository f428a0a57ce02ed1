//! `runner sweep`: argument glue over `crate::sweep` (grid, manifest, Slurm and local
//! backends, status, tasks): validates the flags, calls the library, prints its results.
use super::compare::{print_comparison, CompareArgs};
use super::run::{outcome_code, refused};
use super::usage;
use crate::run::RunConfig;
use crate::sweep::status::{latest_runs, summary, to_resubmit};
use crate::sweep::submit::{self, SweepSpec};
use crate::sweep::task::TaskRun;
use crate::sweep::{find_sweep, local, parse_grid, status, Backend, Manifest, PointState, PointStatus, Ranks};
use anyhow::Result;
use std::path::Path;

pub struct SweepArgs {
    pub grids: Vec<String>,
    pub on: Backend,
    pub jobs: usize,
    pub cpus_per_task: Option<usize>,
    pub ntasks_per_node: Option<usize>,
    pub nodes: Option<usize>,
    pub sbatch: Option<String>,
    pub max_parallel: Option<usize>,
    pub dry_run: bool,
    pub wait: bool,
    /// What every point runs with, before its grid values.
    pub run: RunConfig,
}

/// Starts a sweep: checks every point, writes the manifest, then runs the points here or
/// submits them to Slurm.
pub fn sweep_cmd(a: SweepArgs) -> Result<i32> {
    let axes = parse_grid(&a.grids).map_err(usage)?;
    if let Err((combo, why)) = submit::check_points(&a.run, &axes) {
        let code = refused(&why);
        eprintln!("runner: sweep point {} refused; no run started", combo.join(" "));
        return Ok(code);
    }
    if a.jobs == 0 {
        return Err(usage("--jobs must be at least 1"));
    }
    if a.max_parallel == Some(0) {
        return Err(usage("--max-parallel must be at least 1"));
    }
    let sbatch = match &a.sbatch {
        Some(s) => shlex::split(s).ok_or_else(|| usage(format!("--sbatch `{s}`: unbalanced quotes")))?,
        None => vec![],
    };
    if a.on == Backend::Local {
        if !sbatch.is_empty() {
            return Err(usage("--sbatch applies to --on slurm"));
        }
        if a.cpus_per_task.is_some() {
            return Err(usage("--cpus-per-task applies to --on slurm"));
        }
        if a.ntasks_per_node.is_some() || a.nodes.is_some() {
            return Err(usage("--ntasks-per-node and --nodes apply to --on slurm (here, `runner launch` starts a group)"));
        }
    }
    if a.ntasks_per_node == Some(0) || a.nodes == Some(0) {
        return Err(usage("--ntasks-per-node and --nodes must be at least 1"));
    }
    let ranks = (a.ntasks_per_node.is_some() || a.nodes.is_some())
        .then(|| Ranks { nodes: a.nodes.unwrap_or(1), ntasks_per_node: a.ntasks_per_node.unwrap_or(1) });
    let mut run = a.run.absolute()?;
    let cpus_per_task = match a.on {
        Backend::Slurm => Some(cpus_per_task(a.cpus_per_task, run.threads)?),
        // Points side by side split this machine's threads instead of each taking them all.
        Backend::Local => {
            if run.threads.is_none() {
                let points = crate::sweep::grid::points(&axes).len();
                run.threads = Some(crate::threads::share(crate::threads::from_environment()?, a.jobs.min(points)));
            }
            None
        }
    };
    let spec = SweepSpec {
        run,
        axes,
        backend: a.on,
        sbatch,
        max_parallel: if a.on == Backend::Local { Some(a.jobs) } else { a.max_parallel },
        cpus_per_task,
        ranks,
    };
    let mut m = submit::plan(&spec);
    let runner = submit::runner_exe()?;
    match a.on {
        Backend::Slurm if a.dry_run => {
            for b in submit::dry_run(&mut m, &runner)? {
                println!("# {}:", b.path.display());
                println!("{}", b.text);
                println!("# submitted with: {}\n", b.command);
            }
            println!("dry run: sweep {} ({} points) was not submitted", m.id, m.points.len());
            Ok(0)
        }
        Backend::Slurm => {
            let (dir, jobs) = submit::submit_new(&mut m, &runner)?;
            let group = m.ranks.map(|r| format!(", each run a group of {} tasks", r.nodes * r.ntasks_per_node)).unwrap_or_default();
            println!("sweep {}: {} runs submitted as {jobs}, {} CPU(s) per task{group}", m.id, m.points.len(), m.cpus_per_task.unwrap_or(1));
            println!("  runner sweep status {id}   runner sweep wait {id}   runner compare {id}", id = m.id);
            if a.wait {
                return wait_for(&dir);
            }
            Ok(0)
        }
        Backend::Local if a.dry_run => {
            println!("dry run: sweep {} would run {} points here, {} at a time:", m.id, m.points.len(), a.jobs);
            for p in &m.points {
                println!("  {}: {}", p.index, p.sets.join(" "));
            }
            Ok(0)
        }
        Backend::Local => {
            let dir = submit::create(&m)?;
            let each = m.run.threads.map(|t| format!(", {} thread{} each", t.count, if t.count == 1 { "" } else { "s" })).unwrap_or_default();
            println!("sweep {}: {} runs on this machine, {} at a time{each}", m.id, m.points.len(), a.jobs);
            let all: Vec<usize> = (0..m.points.len()).collect();
            run_local(&mut m, &dir, &all, a.jobs, &runner)
        }
    }
}

/// The CPUs each Slurm task asks for: `--cpus-per-task`, else what one point needs: the
/// `--threads` it runs with, else the threads a run would get here (the same order as a
/// run's: RUNNER_THREADS, OMP_NUM_THREADS, SLURM_CPUS_PER_TASK, the affinity mask, all
/// cores). The task's run then takes its threads from SLURM_CPUS_PER_TASK.
fn cpus_per_task(asked: Option<usize>, threads: Option<crate::threads::Threads>) -> Result<usize> {
    match asked {
        Some(0) => Err(usage("--cpus-per-task must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(crate::threads::resolve(threads)?.count),
    }
}

/// Runs `points` here as one submission, then shows the sweep's runs side by side.
fn run_local(m: &mut Manifest, dir: &Path, points: &[usize], jobs: usize, runner: &Path) -> Result<i32> {
    let codes = local::submit(m, dir, points, jobs, runner)?;
    let worst = codes.iter().copied().max().unwrap_or(0);
    let runs = latest_runs(m);
    println!("\n{id} (`runner sweep status {id}`, `runner compare {id}`, `runner report {id}`)", id = m.id);
    if !runs.is_empty() {
        print_comparison(&runs, &CompareArgs { all: false, plot: None, markdown: false, json: false })?;
    }
    Ok(worst)
}

/// `runner sweep task`: one point of a submission (task index given, or Slurm's).
pub fn task_cmd(dir: &Path, array: usize, task: Option<usize>) -> Result<i32> {
    let task = match task {
        Some(t) => t,
        None => std::env::var("SLURM_ARRAY_TASK_ID")
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| usage("give --task, or run inside a Slurm array task (SLURM_ARRAY_TASK_ID)"))?,
    };
    match crate::sweep::task::run(dir, array, task)? {
        TaskRun::AlreadyCompleted(run_dir) => {
            eprintln!("{}: already completed", run_dir.display());
            Ok(0)
        }
        TaskRun::Ran(outcome) => Ok(outcome_code(&outcome)),
    }
}

/// `runner sweep status <id>`: one row per point.
pub fn status_cmd(runs_dir: &Path, name: &str, json: bool) -> Result<i32> {
    let dir = find_sweep(runs_dir, name)?;
    let m = Manifest::read(&dir)?;
    let rows = status(&m)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("sweep {} ({}, {} points): {}", m.id, backend_name(m.backend), rows.len(), summary(&rows));
        println!("{}", table(&rows));
    }
    Ok(0)
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Local => "local",
        Backend::Slurm => "slurm",
    }
}

fn table(rows: &[PointStatus]) -> String {
    let headers: Vec<String> = ["point", "params", "state", "run", "job", "attempts", "why"].map(String::from).to_vec();
    let mut body = Vec::new();
    for r in rows {
        let params = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        body.push(vec![
            r.index.to_string(),
            params,
            r.state.to_string(),
            r.run.clone().unwrap_or_default(),
            r.slurm_job_id.clone().unwrap_or_default(),
            r.attempts.to_string(),
            r.reason.clone().unwrap_or_default(),
        ]);
    }
    crate::text_table::render(&headers, &body)
}

/// `runner sweep wait <id>`: until no point is pending or running; non-zero when any
/// point failed or is missing.
pub fn wait_cmd(runs_dir: &Path, name: &str) -> Result<i32> {
    wait_for(&find_sweep(runs_dir, name)?)
}

fn wait_for(dir: &Path) -> Result<i32> {
    let (m, rows) = crate::sweep::status::wait(dir)?;
    println!("sweep {}: {}", m.id, summary(&rows));
    println!("{}", table(&rows));
    let ok = rows.iter().all(|r| r.state == PointState::Completed);
    if !ok {
        println!("`runner sweep resubmit {}` runs the interrupted, failed and missing points again (interrupted ones resume)", m.id);
    }
    Ok(if ok { 0 } else { 1 })
}

/// `runner sweep resubmit <id>`: runs interrupted, failed and missing points again, same params and
/// seed, as a new submission (interrupted ones resume in their folder).
pub fn resubmit_cmd(runs_dir: &Path, name: &str, wait: bool) -> Result<i32> {
    let dir = find_sweep(runs_dir, name)?;
    // Two resubmits at once would both find the same points to run.
    let lock = crate::track::lock::lock(&dir, &format!("`runner sweep resubmit` of {}", dir.file_name().unwrap_or_default().to_string_lossy()))?;
    let mut m = Manifest::read(&dir)?;
    let (points, rows) = to_resubmit(&m)?;
    if points.is_empty() {
        println!("sweep {}: nothing to resubmit ({})", m.id, summary(&rows));
        return Ok(0);
    }
    let runner = submit::runner_exe()?;
    let list = points.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
    let s = if points.len() > 1 { "s" } else { "" };
    match m.backend {
        Backend::Slurm => {
            let jobs = submit::submit_points(&mut m, &dir, &points, submit::slurm_chunk()?, &runner)?;
            drop(lock); // submitted: the points' own folders are locked by their tasks
            println!("sweep {}: point{s} {list} resubmitted as {jobs}", m.id);
            if wait {
                return wait_for(&dir);
            }
            Ok(0)
        }
        Backend::Local => {
            println!("sweep {}: running point{s} {list} again", m.id);
            let jobs = m.max_parallel.unwrap_or(1);
            run_local(&mut m, &dir, &points, jobs, &runner)
        }
    }
}
