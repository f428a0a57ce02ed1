//! A run's lifecycle, from a `RunConfig` to a closed record: check the script and its
//! params, seed and make torch deterministic, open (or reopen) the run folder, keep the
//! script's copy, log, mirror, run the script with panics caught, and close the record
//! with the right status whatever happens. `runner <script>`, `rerun`, `resume` and sweep
//! tasks all go through `execute`; the command line only maps the outcome to an exit code.
mod config;
mod group;
mod recorded;

pub use config::{RunConfig, TrackSettings};
pub use group::RecordedWorld;
pub use recorded::{relaunch, rerun, resume, same_metrics, Relaunch, Rerun};

use crate::precision::Resolved;
use crate::script::{declared_params, format_script_error, new_engine, ParamInputs, ScriptCtx};
use crate::session::{interrupt_signal_number, interrupted, RunSpec, Session, SweepPoint};
use crate::threads::Threads;
use crate::track::mlflow::Mirror;
use crate::track::{Status, WeightsUse};
use rhai::{Scope, AST};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex, Once};
use tch::Device;

/// Why a run did not start (nothing was recorded).
#[derive(Debug)]
pub enum Refusal {
    /// Bad input: no such script, a param, device or tracking URI that does not parse.
    Usage(String),
    /// The script does not compile: its positioned error, ready to print.
    Script(String),
    /// The run could not be set up (determinism, its folder or first record).
    Setup(anyhow::Error),
}

/// How a run that started ended; its record says the rest.
#[derive(Debug)]
pub struct Ended {
    pub dir: PathBuf,
    pub status: Status,
    /// The number of the signal (SIGINT, SIGTERM) that interrupted it, if one did.
    pub signal: Option<i32>,
}

pub type Outcome = Result<Ended, Refusal>;

/// Where a run's record goes.
pub enum Folder {
    /// A new run folder.
    New,
    /// A folder made for the run beforehand (a sweep point's, holding its Slurm output).
    Made(PathBuf),
    /// A stopped run's own folder: the run resumes there from its checkpoints.
    Resume(PathBuf),
}

/// How a run was started, for its record.
pub struct Launch {
    /// What the user typed (kept as information; runs are repeated from the config).
    pub command: Vec<String>,
    pub sweep: Option<SweepPoint>,
    pub rerun_of: Option<String>,
    /// A rerun's bodies must start from these weights (the recorded run's, in order).
    pub rerun_weights: Vec<WeightsUse>,
    pub folder: Folder,
}

impl Launch {
    pub fn new(command: Vec<String>) -> Launch {
        Launch { command, sweep: None, rerun_of: None, rerun_weights: vec![], folder: Folder::New }
    }
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// SIGINT/SIGTERM stop the run at the next step (see `session`). Panics are caught and
/// reported as failed runs, without a backtrace on the console.
fn install_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        crate::session::handle_stop_signals();
        std::panic::set_hook(Box::new(|info| {
            let msg = match info.payload().downcast_ref::<&str>() {
                Some(s) => s.to_string(),
                None => info.payload().downcast_ref::<String>().cloned().unwrap_or_else(|| "unknown panic".into()),
            };
            let at = info.location().map(|l| format!(" ({}:{})", l.file(), l.line())).unwrap_or_default();
            *LAST_PANIC.lock().unwrap() = Some(format!("{msg}{at}"));
        }));
    });
}

/// A script checked before any run starts: it compiles, and the given params match what
/// it declares.
pub struct Checked {
    ast: AST,
    inputs: ParamInputs,
    device: Device,
    threads: Threads,
    precision: Resolved,
}

/// Checks a config's script, params and device; warnings (params the script may compute)
/// go to stderr.
pub fn check(cfg: &RunConfig) -> Result<Checked, Refusal> {
    let script = &cfg.script;
    if !script.is_file() {
        return Err(Refusal::Usage(format!("no script file {}", script.display())));
    }
    let inputs = ParamInputs::new(&cfg.sets, &cfg.grid, cfg.config.as_deref()).map_err(|e| Refusal::Usage(format!("{e:#}")))?;
    let device = crate::device::parse_device(&cfg.device).map_err(|e| Refusal::Usage(format!("{e:#}")))?;
    let threads = crate::threads::resolve(cfg.threads).map_err(|e| Refusal::Usage(format!("{e:#}")))?;
    let precision = cfg.precision.resolve(device);
    let checker = new_engine(Rc::new(ScriptCtx::detached()), cfg.limits.operations);
    let ast = checker
        .compile_file(script.to_path_buf())
        .map_err(|e| Refusal::Script(format_script_error(&e, &script.display().to_string(), &cfg.limits)))?;
    let declared = declared_params(&checker, &ast, script);
    for warning in inputs.check_declared(&declared, script).map_err(|e| Refusal::Usage(format!("{e:#}")))? {
        eprintln!("runner: warning: {warning}");
    }
    Ok(Checked { ast, inputs, device, threads, precision })
}

/// Runs one script into its run folder.
pub fn execute(cfg: &RunConfig, launch: Launch) -> Outcome {
    install_handlers();
    let Checked { ast, inputs, device, threads, precision } = check(cfg)?;
    let tracking = cfg.tracking.tracking().map_err(Refusal::Usage)?;
    let (script, seed, limits) = (&cfg.script, cfg.seed, cfg.limits);
    let Launch { command, sweep, rerun_of, rerun_weights, folder } = launch;
    let rerun_weights = rerun_of.clone().filter(|_| !rerun_weights.is_empty()).map(|run| (run, rerun_weights));
    // A data-parallel rank (torchrun, srun, `runner launch`); None: one process, as ever.
    let world = crate::dist::World::from_env().map_err(|e| Refusal::Usage(format!("{e:#}")))?;
    if let Folder::Resume(dir) = &folder {
        let record = crate::track::RunRecord::read(dir).map_err(Refusal::Setup)?;
        group::RecordedWorld::of(&record).check_resume(dir, world.as_ref()).map_err(Refusal::Usage)?;
    }
    let device = match &world {
        Some(w) => group::rank_device(device, w).map_err(Refusal::Usage)?,
        None => device,
    };
    if let Some(warning) = crate::threads::oversubscribed(threads) {
        eprintln!("runner: warning: {warning}");
    }
    crate::threads::apply(threads);
    let spec = RunSpec {
        script: script.clone(),
        seed,
        device,
        threads,
        precision: precision.clone(),
        runs_dir: cfg.runs_dir.clone(),
        command,
        sweep,
        rerun_of,
    };
    crate::seed::seed_torch(seed);
    crate::torch_ext::set_deterministic(device).map_err(Refusal::Setup)?;
    // Ranks other than 0 join first: rank 0 tells them the run folder.
    let follower = match world.as_ref().filter(|w| w.rank > 0) {
        Some(w) => Some(group::follow(w, cfg, device).map_err(Refusal::Setup)?),
        None => None,
    };
    let started = match (&folder, follower.as_ref().and_then(|f| f.scratch.as_deref())) {
        (_, Some(scratch)) => Session::start(&spec, BTreeMap::new(), Some(scratch)),
        (Folder::New, None) => Session::start(&spec, BTreeMap::new(), None),
        (Folder::Made(dir), None) => Session::start(&spec, BTreeMap::new(), Some(dir)),
        (Folder::Resume(dir), None) => Session::resume(dir, &spec),
    };
    let mut session = started.map_err(Refusal::Setup)?;
    let member = match (&world, follower) {
        (Some(w), None) => match group::lead(w, cfg, device, &session.dir).and_then(|m| session.set_extra("dist", m.describe(w)).map(|()| m)) {
            Ok(m) => Some(m),
            Err(e) => {
                let msg = format!("{e:#}");
                eprintln!("runner: {msg}");
                let _ = session.finish(Status::Failed, Some(msg));
                return Ok(Ended { dir: session.dir.clone(), status: Status::Failed, signal: None });
            }
        },
        (_, follower) => follower,
    };
    session.group = member.as_ref().map(|m| m.group.clone());
    let session = Arc::new(session);
    if let Err(e) = crate::logging::log_to(&session.dir) {
        eprintln!("runner: cannot open the run log: {e:#}");
    }
    // A resumed run runs the copy it already keeps.
    if !matches!(folder, Folder::Resume(_)) {
        let file_name = script.file_name().map(PathBuf::from).unwrap_or_default();
        if let Err(e) = session.keep_source(script, &file_name) {
            eprintln!("runner: {e:#}");
        }
    }
    let mirror = tracking.filter(|_| member.as_ref().is_none_or(|m| m.scratch.is_none())).map(|t| Mirror::start(&session.dir, t));
    let verb = if matches!(folder, Folder::Resume(_)) { "resuming run" } else { "run" };
    eprintln!("{verb} {} (seed {seed})", session.dir.display());
    eprintln!("device: {}", crate::device::describe(device, crate::threads::in_effect(threads)));
    if precision.bf16() {
        eprintln!("precision: bf16 mixed precision{} ({})", if precision.channels_last { ", channels_last" } else { "" }, precision.why);
    }
    tracing::info!(script = %script.display(), seed, "run started");

    let ctx = Rc::new(ScriptCtx {
        session: Some(session.clone()),
        inputs,
        seed,
        device,
        script: script.clone(),
        rerun_weights,
        bodies: Default::default(),
        precision: precision.precision,
        engine: Default::default(),
    });
    let mut engine = new_engine(ctx.clone(), limits.operations);
    limits.apply(&mut engine);
    let engine = Rc::new(engine);
    ctx.bind_engine(&engine);
    let mut scope = Scope::new();
    scope.push_constant("seed", seed as i64);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| engine.run_ast_with_scope(&mut scope, &ast)));
    drop(engine);
    drop(scope);

    let (status, error) = match result {
        Ok(Ok(())) => (Status::Completed, None),
        Ok(Err(e)) => {
            let msg = format_script_error(&e, &script.display().to_string(), &limits);
            let status = if interrupted() { Status::Interrupted } else { Status::Failed };
            (status, Some(msg))
        }
        Err(_) => {
            let msg = LAST_PANIC.lock().unwrap().take().unwrap_or_else(|| "unknown panic".into());
            tracing::error!(target: "run", "panic: {msg}");
            (Status::Failed, Some(format!("internal error (please report): {}", crate::torch_errors::short_message(&msg))))
        }
    };
    if let Some(msg) = &error {
        eprintln!("{msg}");
        tracing::error!(target: "run", "{msg}");
    }
    tracing::info!(status = %status, "run finished");
    if let (Some(m), Some(e)) = (&member, &error) {
        m.group.announce_failure(e);
    }
    if let Err(e) = session.finish(status, error) {
        eprintln!("runner: cannot write the run record: {e:#}");
    }
    if status == Status::Completed {
        crate::learn::resume::discard(&session.dir);
    }
    if let Some(scratch) = member.as_ref().and_then(|m| m.scratch.as_deref()) {
        let _ = std::fs::remove_dir_all(scratch);
    }
    let secs = session.record().duration_s.unwrap_or(0.0);
    eprintln!("run {}: {status} in {secs:.1}s", session.dir.display());
    if let Some(m) = mirror {
        m.finish();
    }
    let signal = if status == Status::Interrupted { interrupt_signal_number() } else { None };
    Ok(Ended { dir: session.dir.clone(), status, signal })
}
