//! `runner sweep`: argument glue over `crate::sweep` (grid, manifest, Slurm and local
//! backends, status), and the task entry point every point runs through.
use super::compare::{print_comparison, CompareArgs};
use super::run::{check, execute, Folder, Launch};
use super::RunOptions;
use crate::session::SweepPoint;
use crate::sweep::status::summary;
use crate::sweep::submit::{self, SweepSpec};
use crate::sweep::{find_sweep, local, parse_grid, status, Backend, Manifest, PointState, PointStatus};
use crate::track::{find_run, RunEntry, RunRecord, Status};
use anyhow::{bail, Context, Result};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct SweepArgs {
    pub script: PathBuf,
    pub grids: Vec<String>,
    pub on: Backend,
    pub jobs: usize,
    pub sbatch: Option<String>,
    pub max_parallel: Option<usize>,
    pub dry_run: bool,
    pub wait: bool,
    pub common: RunOptions,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot make {} absolute", p.display()))
}

fn runner_exe() -> Result<PathBuf> {
    std::env::current_exe().context("cannot find the runner binary for the sweep's tasks")
}

/// Starts a sweep: checks every point, writes the manifest, then runs the points here or
/// submits them to Slurm.
pub fn sweep_cmd(a: SweepArgs) -> Result<i32> {
    let axes = parse_grid(&a.grids)?;
    // Every point is checked before the first starts: a bad value fails the sweep, not its tenth run.
    for combo in crate::sweep::grid::points(&axes) {
        let mut opts = a.common.clone();
        opts.sets.extend(combo.iter().cloned());
        if let Err(out) = check(&a.script, &opts) {
            eprintln!("runner: sweep point {} refused; no run started", combo.join(" "));
            return Ok(out.code);
        }
    }
    if a.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if a.max_parallel == Some(0) {
        bail!("--max-parallel must be at least 1");
    }
    let sbatch = match &a.sbatch {
        Some(s) => shlex::split(s).with_context(|| format!("--sbatch `{s}`: unbalanced quotes"))?,
        None => vec![],
    };
    if a.on == Backend::Local && !sbatch.is_empty() {
        bail!("--sbatch applies to --on slurm");
    }
    let mut common = a.common.clone();
    common.runs_dir = absolute(&common.runs_dir)?;
    if let Some(c) = &common.config {
        common.config = Some(absolute(c)?);
    }
    let spec = SweepSpec {
        script: absolute(&a.script)?,
        axes,
        seed: common.seed,
        runs_dir: common.runs_dir.clone(),
        run_args: common.to_args(),
        backend: a.on,
        sbatch,
        max_parallel: if a.on == Backend::Local { Some(a.jobs) } else { a.max_parallel },
    };
    let mut m = submit::plan(&spec);
    let all: Vec<usize> = (0..m.points.len()).collect();
    let runner = runner_exe()?;
    match a.on {
        Backend::Slurm if a.dry_run => {
            let dir = submit::sweep_dir(&m);
            let chunk = submit::slurm_chunk().unwrap_or(crate::sweep::slurm::DEFAULT_MAX_ARRAY_SIZE);
            for sub in submit::chunks(&m, &all, chunk) {
                submit::add_submission(&mut m, &dir, &sub, true)?;
                let script = dir.join("arrays").join(sub.array.to_string()).join("batch.sh");
                println!("# {}:", script.display());
                println!("{}", submit::batch_script(&m, &dir, sub.array, &runner));
                let script = script.display().to_string();
                let command: Vec<&str> =
                    ["sbatch", "--parsable"].into_iter().chain(m.sbatch.iter().map(String::as_str)).chain([script.as_str()]).collect();
                println!("# submitted with: {}\n", shlex::try_join(command).unwrap_or_default());
            }
            println!("dry run: sweep {} ({} points) was not submitted", m.id, m.points.len());
            Ok(0)
        }
        Backend::Slurm => {
            let chunk = submit::slurm_chunk()?;
            let dir = submit::create(&m, &a.script)?;
            for sub in submit::chunks(&m, &all, chunk) {
                submit::add_submission(&mut m, &dir, &sub, false)?;
            }
            m.write(&dir)?;
            let jobs = submit_arrays(&mut m, &dir, 0, &runner)?;
            println!("sweep {}: {} runs submitted as {jobs}", m.id, m.points.len());
            println!("  runner sweep status {id}   runner sweep wait {id}   runner compare {id}", id = m.id);
            if a.wait {
                return wait_for(&dir, Duration::from_secs(poll_secs()));
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
            let dir = submit::create(&m, &a.script)?;
            println!("sweep {}: {} runs on this machine, {} at a time", m.id, m.points.len(), a.jobs);
            run_local(&mut m, &dir, &all, a.jobs, &runner)
        }
    }
}

/// Submits `arrays[from..]` with sbatch; returns how to name them to users.
fn submit_arrays(m: &mut Manifest, dir: &Path, from: usize, runner: &Path) -> Result<String> {
    let mut named = Vec::new();
    for k in from..m.arrays.len() {
        let job = submit::sbatch(m, dir, k, runner)?;
        named.push(format!("{job} (array {})", submit::array_spec(m, k)));
    }
    Ok(format!("Slurm job{} {}", if named.len() > 1 { "s" } else { "" }, named.join(", ")))
}

/// Runs `points` here as one submission, then shows the sweep's runs side by side.
fn run_local(m: &mut Manifest, dir: &Path, points: &[usize], jobs: usize, runner: &Path) -> Result<i32> {
    let sub = submit::Submission { array: m.arrays.len(), points: points.to_vec() };
    submit::add_submission(m, dir, &sub, false)?;
    m.arrays[sub.array].pid = Some(std::process::id());
    m.arrays[sub.array].pid_start = crate::track::runs::process_start_time(std::process::id());
    m.write(dir)?;
    crate::session::handle_stop_signals();
    let codes = local::run(m, dir, sub.array, jobs, runner)?;
    let worst = codes.iter().copied().max().unwrap_or(0);
    let runs: Vec<RunEntry> = m.points.iter().filter_map(|p| p.attempts.last()).filter_map(|a| find_run(&m.runs_dir(), &a.run).ok()).collect();
    println!("\n{id} (`runner sweep status {id}`, `runner compare {id}`, `runner report {id}`)", id = m.id);
    if !runs.is_empty() {
        print_comparison(&runs, &CompareArgs { all: false, plot: None, markdown: false, json: false })?;
    }
    Ok(worst)
}

fn poll_secs() -> u64 {
    std::env::var("RUNNER_SWEEP_POLL_SECS").ok().and_then(|v| v.parse().ok()).filter(|&s| s > 0).unwrap_or(5)
}

/// Runs one task of a submission: the point it stands for, in the run folder made for it
/// (resuming there when an earlier attempt or a requeued task stopped part-way).
pub fn task_cmd(dir: &Path, array: usize, task: Option<usize>) -> Result<i32> {
    let task = match task {
        Some(t) => t,
        None => std::env::var("SLURM_ARRAY_TASK_ID")
            .ok()
            .and_then(|v| v.parse().ok())
            .context("give --task, or run inside a Slurm array task (SLURM_ARRAY_TASK_ID)")?,
    };
    let dir = absolute(dir)?;
    let m = Manifest::read(&dir)?;
    let (point, attempt, n) = m.task(array, task)?;
    #[derive(Parser)]
    struct Recorded {
        #[command(flatten)]
        common: RunOptions,
    }
    let mut opts = Recorded::try_parse_from(std::iter::once("runner".to_string()).chain(m.run_args.iter().cloned()))
        .with_context(|| format!("the manifest's options ({}) do not parse", m.run_args.join(" ")))?
        .common;
    opts.sets.extend(point.sets.iter().cloned());
    opts.runs_dir = m.runs_dir();
    let run_dir = m.runs_dir().join(&attempt.run);
    let folder = match RunRecord::read(&run_dir) {
        Ok(r) if r.status == Status::Completed => {
            eprintln!("{}: already completed", run_dir.display());
            return Ok(0);
        }
        Ok(r) => {
            let entry = RunEntry { dir: run_dir.clone(), record: r };
            if entry.shown_status() == "running" {
                bail!(
                    "{} is still running (pid {}): not starting a second process in it",
                    run_dir.display(),
                    entry.record.extra.get("pid").map(|p| p.to_string()).unwrap_or_default()
                );
            }
            Folder::Resume(run_dir)
        }
        Err(_) => Folder::Made(run_dir),
    };
    let command = vec![
        "runner".into(),
        "sweep".into(),
        "task".into(),
        dir.display().to_string(),
        "--array".into(),
        array.to_string(),
        "--task".into(),
        task.to_string(),
    ];
    let sweep = Some(SweepPoint { id: m.id.clone(), index: point.index, attempt: n });
    Ok(execute(&dir.join(&m.script_copy), &opts, Launch { command, sweep, rerun_of: None, folder }).code)
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
    let dir = find_sweep(runs_dir, name)?;
    wait_for(&dir, Duration::from_secs(poll_secs()))
}

fn wait_for(dir: &Path, poll: Duration) -> Result<i32> {
    let mut last: Vec<PointState> = Vec::new();
    let mut queue_errors = 0;
    loop {
        let m = Manifest::read(dir)?;
        let rows = match status(&m) {
            Ok(r) => r,
            // squeue can fail for a moment (slurmctld busy or restarting): try again.
            Err(e) if queue_errors < 5 => {
                queue_errors += 1;
                eprintln!("runner: {e:#} (retrying)");
                std::thread::sleep(poll);
                continue;
            }
            Err(e) => return Err(e),
        };
        queue_errors = 0;
        for r in &rows {
            if last.get(r.index) != Some(&r.state) && r.state.finished() {
                let why = r.reason.as_deref().map(|w| format!(": {w}")).unwrap_or_default();
                let params = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
                eprintln!("point {} ({}): {}{}", r.index, crate::text_table::safe(&params), r.state, crate::text_table::safe(&why));
            }
        }
        last = rows.iter().map(|r| r.state).collect();
        if rows.iter().all(|r| r.state.finished()) {
            println!("sweep {}: {}", m.id, summary(&rows));
            println!("{}", table(&rows));
            let ok = rows.iter().all(|r| r.state == PointState::Completed);
            if !ok {
                println!("`runner sweep resubmit {}` runs the failed and missing points again", m.id);
            }
            return Ok(if ok { 0 } else { 1 });
        }
        std::thread::sleep(poll);
    }
}

/// `runner sweep resubmit <id>`: runs failed and missing points again, same params and
/// seed, as a new submission (interrupted ones resume in their folder).
pub fn resubmit_cmd(runs_dir: &Path, name: &str, wait: bool) -> Result<i32> {
    let dir = find_sweep(runs_dir, name)?;
    // Two resubmits at once would both find the same points to run.
    let lock = crate::track::lock::lock(&dir, &format!("`runner sweep resubmit` of {}", dir.file_name().unwrap_or_default().to_string_lossy()))?;
    let mut m = Manifest::read(&dir)?;
    let rows = status(&m)?;
    let points: Vec<usize> = rows.iter().filter(|r| r.state.needs_resubmit()).map(|r| r.index).collect();
    if points.is_empty() {
        println!("sweep {}: nothing to resubmit ({})", m.id, summary(&rows));
        return Ok(0);
    }
    let runner = runner_exe()?;
    let list = points.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
    match m.backend {
        Backend::Slurm => {
            let from = m.arrays.len();
            for sub in submit::chunks(&m, &points, submit::slurm_chunk()?) {
                submit::add_submission(&mut m, &dir, &sub, false)?;
            }
            m.write(&dir)?;
            let jobs = submit_arrays(&mut m, &dir, from, &runner)?;
            drop(lock); // submitted: the points' own folders are locked by their tasks
            println!("sweep {}: point{} {list} resubmitted as {jobs}", m.id, if points.len() > 1 { "s" } else { "" });
            if wait {
                return wait_for(&dir, Duration::from_secs(poll_secs()));
            }
            Ok(0)
        }
        Backend::Local => {
            println!("sweep {}: running point{} {list} again", m.id, if points.len() > 1 { "s" } else { "" });
            let jobs = m.max_parallel.unwrap_or(1);
            run_local(&mut m, &dir, &points, jobs, &runner)
        }
    }
}
