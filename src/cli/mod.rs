//! The command line: a thin layer that parses arguments, calls library code and turns
//! errors into messages and exit codes: 0 ok, 1 failure (a run failed, a named run is not
//! there, a server or the cluster is unreachable), 2 usage error (the command line cannot
//! be run as given: an unknown flag, a bad value, a `--set` or `--grid` the script does not
//! declare, a malformed `--grid`; nothing ran), 130 SIGINT (Ctrl-C), 143 SIGTERM.
mod api;
mod compare;
mod launch;
mod predict;
mod report;
mod run;
mod runs;
mod sweep;
mod sync;
mod weights;

use crate::precision::Precision;
use crate::run::{RunConfig, TrackSettings};
use crate::script::limits::Limits;
use crate::threads::{ThreadSource, Threads};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "runner",
    about = "Run fastai-style deep-learning experiments written as Rhai scripts; every run is logged.",
    args_conflicts_with_subcommands = true,
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    /// Print the runner version, git commit, libtorch version and CUDA availability.
    #[arg(long, short = 'V')]
    version: bool,
}

#[derive(Args, Clone)]
pub struct RunArgs {
    /// The experiment script to run (e.g. experiments/hello.rhai).
    pub script: Option<PathBuf>,
    #[command(flatten)]
    pub common: RunOptions,
}

#[derive(Args, Clone)]
pub struct RunOptions {
    /// Set a script param: --set lr=3e-3 (typed like the param's default).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub sets: Vec<String>,
    /// Read params from a TOML file (`--set` wins over it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The seed that drives every random choice.
    #[arg(long, default_value_t = crate::seed::DEFAULT_SEED)]
    pub seed: u64,
    /// auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", env = "RUNNER_DEVICE")]
    pub device: String,
    /// Where run folders go.
    #[arg(long, env = "RUNNER_RUNS_DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Stop a runaway script after this many operations.
    #[arg(long, default_value_t = Limits::default().operations)]
    pub max_operations: u64,
    /// Stop a script whose arrays hold more elements than this, nested ones counted (0: no limit).
    #[arg(long, value_name = "ELEMENTS", default_value_t = Limits::default().array_size)]
    pub max_array_size: usize,
    /// Stop a script whose strings hold more bytes than this (0: no limit).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().string_size)]
    pub max_string_size: usize,
    /// Stop a script whose object maps hold more entries than this (0: no limit).
    #[arg(long, value_name = "ENTRIES", default_value_t = Limits::default().map_size)]
    pub max_map_size: usize,
    /// Threads to compute with, libtorch's and the loaders' [default: RUNNER_THREADS, OMP_NUM_THREADS, SLURM_CPUS_PER_TASK, the CPU affinity mask, all cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// fp32, bf16 (mixed precision) or auto (bf16 where the CPU or GPU computes it natively).
    #[arg(long, default_value_t = crate::precision::DEFAULT, env = "RUNNER_PRECISION", value_parser = |s: &str| s.parse::<Precision>().map_err(|e| e.to_string()))]
    pub precision: Precision,
    #[command(flatten)]
    pub track: TrackArgs,
}

#[derive(Args, Clone)]
pub struct TrackArgs {
    /// Mirror runs to this MLflow tracking server (http://HOST:PORT), live; `runner sync` sends what is missing later.
    #[arg(long = "track", value_name = "URI", env = "MLFLOW_TRACKING_URI")]
    pub uri: Option<String>,
    /// Also upload the checkpoints (models/) to the tracking server.
    #[arg(long)]
    pub track_models: bool,
}

impl TrackArgs {
    pub fn settings(&self) -> TrackSettings {
        TrackSettings { uri: self.uri.clone(), models: self.track_models }
    }
}

impl RunOptions {
    /// The run these flags ask for, of `script`.
    pub fn config(&self, script: PathBuf) -> RunConfig {
        RunConfig {
            script,
            sets: self.sets.clone(),
            grid: vec![],
            config: self.config.clone(),
            seed: self.seed,
            device: self.device.clone(),
            runs_dir: self.runs_dir.clone(),
            limits: Limits {
                operations: self.max_operations,
                array_size: self.max_array_size,
                string_size: self.max_string_size,
                map_size: self.max_map_size,
            },
            tracking: self.track.settings(),
            threads: self.threads.map(|count| Threads { count, from: ThreadSource::Flag }),
            precision: self.precision,
        }
    }
}

#[derive(Args, Clone)]
pub struct RunsDir {
    /// Where run folders are.
    #[arg(long, env = "RUNNER_RUNS_DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Table of logged runs, newest first.
    Runs {
        #[command(flatten)]
        dir: RunsDir,
        /// Only runs of scripts whose name contains this.
        #[arg(long)]
        script: Option<String>,
        /// Only runs with this status (running, completed, failed, interrupted, crashed).
        #[arg(long)]
        status: Option<String>,
        /// Only the runs of this sweep (its id, or a prefix of it).
        #[arg(long)]
        sweep: Option<String>,
        /// Show at most this many runs.
        #[arg(long, short = 'n')]
        limit: Option<usize>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// One run: params, status, metrics, files.
    Show {
        /// Folder name or path, unique id prefix, `last`, `last~1`, ...
        run: String,
        #[command(flatten)]
        dir: RunsDir,
        #[arg(long)]
        json: bool,
    },
    /// Runs side by side: differing params, seed, status, final/best metrics, commit.
    Compare {
        /// Runs: folder name or path, unique id prefix, `last`, `last~1`, ..., or a sweep id (all its runs).
        runs: Vec<String>,
        #[command(flatten)]
        dir: RunsDir,
        /// Show every param, not just those that differ.
        #[arg(long)]
        all: bool,
        /// Write a PNG overlaying the runs' loss and metric curves.
        #[arg(long, value_name = "FILE.png")]
        plot: Option<PathBuf>,
        #[arg(long)]
        markdown: bool,
        #[arg(long)]
        json: bool,
    },
    /// One self-contained HTML page over runs: params and metrics table, interactive curves, pictures.
    Report {
        /// Runs: folder name or path, unique id prefix, `last`, `last~1`, ..., or a sweep id (all its runs).
        runs: Vec<String>,
        #[command(flatten)]
        dir: RunsDir,
        /// The page to write.
        #[arg(long, short = 'o', default_value = "report.html", value_name = "FILE.html")]
        output: PathBuf,
    },
    /// Run a recorded run again (its script copy, params and seed) and compare.
    Rerun(RecordedRun),
    /// Continue a stopped run (interrupted, killed, preempted) in its folder from its last epoch.
    Resume(RecordedRun),
    /// One data-parallel run over N local processes (as torchrun starts them): `launch --nproc-per-node 2 script.rhai --set ...`.
    Launch {
        /// Processes to start, each a rank of the group.
        #[arg(long, value_name = "N")]
        nproc_per_node: usize,
        /// Seconds a rank waits for the others (joining, a collective) before it fails (RUNNER_DIST_TIMEOUT; default 300).
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
        /// The port of the group's store on 127.0.0.1 (default: a free one).
        #[arg(long)]
        port: Option<u16>,
        /// The script and its run options, as `runner SCRIPT ...` takes them.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "SCRIPT [OPTIONS]")]
        run: Vec<String>,
    },
    /// One run per combination of --grid values, grouped under a sweep id; here or on Slurm.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Sweep {
        #[command(subcommand)]
        action: Option<SweepAction>,
        #[command(flatten)]
        start: Box<SweepStart>,
    },
    /// Send runs to the MLflow tracking server: whatever it lacks (the server was down, the run crashed).
    Sync {
        /// Folder name or path, unique id prefix, `last`, `last~1`, ...
        run: Option<String>,
        /// Every run under the runs dir (runs still going are left to their live mirror).
        #[arg(long, conflicts_with = "run")]
        all: bool,
        #[command(flatten)]
        dir: RunsDir,
        #[command(flatten)]
        track: TrackArgs,
    },
    /// Pretrained weights: `list` (the registry, and where files are), `fetch ARCH...` (get them ahead), `convert IN.pth OUT.safetensors`.
    Weights {
        #[command(subcommand)]
        action: WeightsAction,
    },
    /// Predictions of an exported learner (learn.export_learner's file) for image files: a table (file, prediction, probability) or JSON.
    Predict {
        /// The learner file.
        learner: PathBuf,
        /// Image files (a pair model takes them two at a time).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// JSON: one object per item with every class's probability.
        #[arg(long)]
        json: bool,
        /// auto (CUDA when present), cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto", env = "RUNNER_DEVICE")]
        device: String,
    },
    /// Every script function with its signature and a one-line doc.
    Api {
        /// Markdown, as in docs/API.md.
        #[arg(long)]
        markdown: bool,
    },
}

/// A logged run to run again from its record (`rerun`, `resume`).
#[derive(Args)]
struct RecordedRun {
    run: String,
    #[command(flatten)]
    dir: RunsDir,
    /// Device (default: the recorded one when it is cpu, else auto).
    #[arg(long)]
    device: Option<String>,
    #[command(flatten)]
    track: TrackArgs,
}

#[derive(Args)]
struct SweepStart {
    /// The experiment script.
    #[arg(required = true)]
    script: Option<PathBuf>,
    /// name=v1,v2,... (repeat for more axes)
    #[arg(long = "grid", value_name = "NAME=V1,V2")]
    grids: Vec<String>,
    /// Where the points run: here (`local`) or as one Slurm job array (`slurm`).
    #[arg(long, default_value = "local", value_parser = ["local", "slurm"])]
    on: String,
    /// Points run at once on this machine (each on its own GPU when there are several), sharing its threads.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// CPUs each Slurm task asks for (`--cpus-per-task`); its run uses them [default: --threads, else the threads a run gets here].
    #[arg(long, value_name = "N")]
    cpus_per_task: Option<usize>,
    /// Every point a data-parallel group of this many Slurm tasks per node, started by one srun (`--ntasks-per-node`).
    #[arg(long, value_name = "N")]
    ntasks_per_node: Option<usize>,
    /// Nodes of each point's group (`--nodes`; default 1 with --ntasks-per-node).
    #[arg(long, value_name = "M")]
    nodes: Option<usize>,
    /// Options for sbatch, passed through: "--partition=gpu --gres=gpu:1 --time=02:00:00".
    #[arg(long, value_name = "OPTIONS", allow_hyphen_values = true)]
    sbatch: Option<String>,
    /// At most this many array tasks run at once (`--array=0-N%P`).
    #[arg(long, value_name = "P")]
    max_parallel: Option<usize>,
    /// Print what would be submitted (the batch scripts) and submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// After submitting, wait as `runner sweep wait` does.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    common: RunOptions,
}

#[derive(Subcommand)]
enum SweepAction {
    /// One row per point: params, state (pending, running, completed, interrupted, failed, missing), run, job, attempts.
    Status {
        sweep: String,
        #[command(flatten)]
        dir: RunsDir,
        #[arg(long)]
        json: bool,
    },
    /// Wait until no point is pending or running; non-zero exit if any did not complete.
    Wait {
        sweep: String,
        #[command(flatten)]
        dir: RunsDir,
    },
    /// Run the interrupted, failed and missing points again, same params and seed (interrupted ones resume).
    Resubmit {
        sweep: String,
        #[command(flatten)]
        dir: RunsDir,
        /// Then wait as `runner sweep wait` does.
        #[arg(long)]
        wait: bool,
    },
    /// Run one point of a submission (what each Slurm array task or local job runs).
    #[command(hide = true)]
    Task {
        sweep_dir: PathBuf,
        #[arg(long)]
        array: usize,
        /// The task index (default: SLURM_ARRAY_TASK_ID).
        #[arg(long)]
        task: Option<usize>,
    },
}

#[derive(Subcommand)]
enum WeightsAction {
    /// Every arch's pretrained weights (tag, file, size, fastai's stats/cut/split), and in which folder each file is.
    List,
    /// Find or download weights ahead (e.g. on a cluster's login node): ARCH (its default weights) or ARCH:TAG.
    Fetch {
        #[arg(required = true, value_name = "ARCH[:TAG]")]
        archs: Vec<String>,
    },
    /// Convert a PyTorch state_dict (.pth/.pt, as torch.save writes it) to .safetensors.
    Convert { input: PathBuf, output: PathBuf },
}

/// A command line that cannot be run as given: exit code 2, as for clap's own errors.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A usage error, to return from a command.
pub fn usage(msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Usage(msg.to_string()))
}

/// Prints a command's error; its exit code is 2 for a usage error, else 1.
fn failed(e: &anyhow::Error) -> i32 {
    eprintln!("runner: {e:#}");
    if e.chain().any(|c| c.downcast_ref::<Usage>().is_some()) {
        2
    } else {
        1
    }
}

/// Parses the command line, runs it, and returns the process exit code.
pub fn main() -> i32 {
    let argv: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let runs_a_script = matches!(
        cli.command,
        None | Some(
            Command::Rerun(_) | Command::Resume(_) | Command::Launch { .. } | Command::Sweep { action: None | Some(SweepAction::Task { .. }), .. }
        )
    );
    if cli.version || !runs_a_script {
        die_quietly_on_closed_pipe();
    }
    if cli.version {
        println!("{}", version_text());
        return 0;
    }
    let result = match cli.command {
        Some(Command::Runs { dir, script, status, sweep, limit, json }) => {
            let filter = runs::Filter { script: script.as_deref(), status: status.as_deref(), sweep: sweep.as_deref(), limit };
            runs::list(&dir.runs_dir, &filter, json)
        }
        Some(Command::Show { run, dir, json }) => runs::show(&dir.runs_dir, &run, json),
        Some(Command::Api { markdown }) => api::print(markdown),
        Some(Command::Predict { learner, images, json, device }) => predict::predict(&learner, &images, &device, json),
        Some(Command::Compare { runs, dir, all, plot, markdown, json }) => {
            compare::compare_cmd(&dir.runs_dir, &runs, &compare::CompareArgs { all, plot, markdown, json })
        }
        Some(Command::Report { runs, dir, output }) => report::report(&dir.runs_dir, &runs, &output),
        Some(Command::Rerun(RecordedRun { run, dir, device, track })) => return exit_code(compare::rerun_cmd(&dir.runs_dir, &run, device, track)),
        Some(Command::Sync { run, all, dir, track }) => return exit_code(sync::sync_cmd(&dir.runs_dir, run.as_deref(), all, &track)),
        Some(Command::Resume(RecordedRun { run, dir, device, track })) => return exit_code(compare::resume_cmd(&dir.runs_dir, &run, device, track)),
        Some(Command::Sweep { action: Some(action), .. }) => return exit_code(sweep_action(action)),
        Some(Command::Launch { nproc_per_node, timeout, port, run }) => return launch::launch_cmd(nproc_per_node, timeout, port, run),
        Some(Command::Sweep { action: None, start }) => {
            let start = *start;
            let Some(script) = start.script else { return 2 };
            let on = start.on.parse().unwrap_or(crate::sweep::Backend::Local);
            let args = sweep::SweepArgs {
                grids: start.grids,
                on,
                jobs: start.jobs,
                cpus_per_task: start.cpus_per_task,
                ntasks_per_node: start.ntasks_per_node,
                nodes: start.nodes,
                sbatch: start.sbatch,
                max_parallel: start.max_parallel,
                dry_run: start.dry_run,
                wait: start.wait,
                run: start.common.config(script),
            };
            return exit_code(sweep::sweep_cmd(args));
        }
        Some(Command::Weights { action: WeightsAction::Convert { input, output } }) => weights::convert(&input, &output),
        Some(Command::Weights { action: WeightsAction::List }) => weights::list(),
        Some(Command::Weights { action: WeightsAction::Fetch { archs } }) => weights::fetch(&archs),
        None => match &cli.run.script {
            Some(script) => return run::run_command(&cli.run.common.config(script.clone()), argv),
            None => {
                eprintln!("runner: give a script to run (runner experiments/hello.rhai) or a command (runner --help)");
                return 2;
            }
        },
    };
    match result {
        Ok(()) => 0,
        Err(e) => failed(&e),
    }
}

/// `runner runs | head -1`: a reader that stops early ends a listing quietly, as it ends
/// Unix tools. Rust ignores SIGPIPE, which turns the closed pipe into a panic in `println!`;
/// commands that run scripts keep ignoring it, so a closed pipe cannot kill a run before
/// its record is written.
fn die_quietly_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to the default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn sweep_action(a: SweepAction) -> anyhow::Result<i32> {
    match a {
        SweepAction::Status { sweep, dir, json } => sweep::status_cmd(&dir.runs_dir, &sweep, json),
        SweepAction::Wait { sweep, dir } => sweep::wait_cmd(&dir.runs_dir, &sweep),
        SweepAction::Resubmit { sweep, dir, wait } => sweep::resubmit_cmd(&dir.runs_dir, &sweep, wait),
        SweepAction::Task { sweep_dir, array, task } => sweep::task_cmd(&sweep_dir, array, task),
    }
}

fn exit_code(r: anyhow::Result<i32>) -> i32 {
    r.unwrap_or_else(|e| failed(&e))
}

pub fn version_text() -> String {
    format!(
        "runner {} (commit {})\nlibtorch {}\ncuda: {}{}\ndata-parallel backends: gloo{}",
        env!("CARGO_PKG_VERSION"),
        env!("RUNNER_GIT_COMMIT"),
        crate::device::libtorch_version(),
        if tch::Cuda::is_available() { "available" } else { "not available" },
        if tch::Cuda::is_available() { format!(" ({} device(s))", tch::Cuda::device_count()) } else { String::new() },
        if crate::dist::Backend::nccl_built() { ", nccl" } else { " (built without nccl)" }
    )
}
