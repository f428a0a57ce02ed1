//! `runner <script>`: check the script and its params, open a run record, run the script,
//! and close the record with the right status whatever happens.
use super::RunOptions;
use crate::script::{declared_params, format_script_error, new_engine, ParamInputs, ScriptCtx};
use crate::session::{interrupt_exit_code, interrupted, RunSpec, Session, SweepPoint};
use crate::track::mlflow::Mirror;
use crate::track::Status;
use rhai::{Scope, AST};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex, Once};
use tch::Device;

pub struct Outcome {
    pub dir: Option<PathBuf>,
    pub code: i32,
}

impl Outcome {
    fn usage(msg: String) -> Outcome {
        eprintln!("runner: {msg}");
        Outcome { dir: None, code: 2 }
    }
}

pub fn run_command(script: &Path, opts: &RunOptions, argv: Vec<String>) -> i32 {
    execute(script, opts, Launch::new(argv)).code
}

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
    pub command: Vec<String>,
    pub sweep: Option<SweepPoint>,
    pub rerun_of: Option<String>,
    pub folder: Folder,
}

impl Launch {
    pub fn new(command: Vec<String>) -> Launch {
        Launch { command, sweep: None, rerun_of: None, folder: Folder::New }
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
}

/// Checks a script and its options; a failure has already been reported (stderr).
pub fn check(script: &Path, opts: &RunOptions) -> Result<Checked, Outcome> {
    if !script.is_file() {
        return Err(Outcome::usage(format!("no script file {}", script.display())));
    }
    let inputs = ParamInputs::new(&opts.sets, opts.config.as_deref()).map_err(|e| Outcome::usage(format!("{e:#}")))?;
    let device = crate::device::parse_device(&opts.device).map_err(|e| Outcome::usage(format!("{e:#}")))?;
    let checker = new_engine(Rc::new(ScriptCtx::detached()), opts.max_operations);
    let ast = checker.compile_file(script.to_path_buf()).map_err(|e| {
        eprintln!("{}", format_script_error(&e, &script.display().to_string(), &opts.limits()));
        Outcome { dir: None, code: 1 }
    })?;
    let declared = declared_params(&checker, &ast, script);
    for warning in inputs.check_declared(&declared, script).map_err(|e| Outcome::usage(format!("{e:#}")))? {
        eprintln!("runner: warning: {warning}");
    }
    Ok(Checked { ast, inputs, device })
}

/// Runs one script into its run folder. Shared by `run`, `rerun`, `resume` and sweep tasks.
pub fn execute(script: &Path, opts: &RunOptions, launch: Launch) -> Outcome {
    install_handlers();
    let Checked { ast, inputs, device } = match check(script, opts) {
        Ok(c) => c,
        Err(out) => return out,
    };
    let tracking = match opts.track.tracking() {
        Ok(t) => t,
        Err(e) => return Outcome::usage(e),
    };
    let limits = opts.limits();

    let Launch { command, sweep, rerun_of, folder } = launch;
    let spec = RunSpec { script: script.to_path_buf(), seed: opts.seed, device, runs_dir: opts.runs_dir.clone(), command, sweep, rerun_of };
    crate::seed::seed_torch(opts.seed);
    if let Err(e) = crate::torch_ext::set_deterministic(device) {
        eprintln!("runner: {e:#}");
        return Outcome { dir: None, code: 1 };
    }
    let started = match &folder {
        Folder::New => Session::start(&spec, BTreeMap::new(), None),
        Folder::Made(dir) => Session::start(&spec, BTreeMap::new(), Some(dir)),
        Folder::Resume(dir) => Session::resume(dir, device, spec.sweep.as_ref()),
    };
    let session = match started {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("runner: {e:#}");
            return Outcome { dir: None, code: 1 };
        }
    };
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
    let mirror = tracking.map(|t| Mirror::start(&session.dir, t));
    let verb = if matches!(folder, Folder::Resume(_)) { "resuming run" } else { "run" };
    eprintln!("{verb} {} (seed {})", session.dir.display(), opts.seed);
    eprintln!("device: {}", crate::device::describe(device));
    tracing::info!(script = %script.display(), seed = opts.seed, "run started");

    let ctx = Rc::new(ScriptCtx { session: Some(session.clone()), inputs, seed: opts.seed, device, script: script.to_path_buf() });
    let mut engine = new_engine(ctx, opts.max_operations);
    limits.apply(&mut engine);
    let mut scope = Scope::new();
    scope.push_constant("seed", opts.seed as i64);
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
    if let Err(e) = session.finish(status, error) {
        eprintln!("runner: cannot write the run record: {e:#}");
    }
    if status == Status::Completed {
        crate::learn::resume::discard(&session.dir);
    }
    let secs = session.record().duration_s.unwrap_or(0.0);
    eprintln!("run {}: {status} in {secs:.1}s", session.dir.display());
    if let Some(m) = mirror {
        m.finish();
    }
    let code = match status {
        Status::Completed => 0,
        Status::Interrupted => interrupt_exit_code(),
        _ => 1,
    };
    Outcome { dir: Some(session.dir.clone()), code }
}
