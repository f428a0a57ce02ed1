//! `runner <script>`: check the script and its params, open a run record, run the script,
//! and close the record with the right status whatever happens.
use super::RunOptions;
use crate::script::{declared_params, format_script_error, new_engine, ParamInputs, ScriptCtx};
use crate::session::{interrupted, RunSpec, Session, INTERRUPTED};
use crate::track::Status;
use rhai::Scope;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Once};

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
    execute(script, opts, argv, None, None).code
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Ctrl-C once asks the run to stop at the next batch or script step; twice exits now.
/// Panics are caught and reported as failed runs, without a backtrace on the console.
fn install_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("\nrunner: interrupted again, exiting now");
                std::process::exit(130);
            }
            eprintln!("\nrunner: interrupted, stopping after the current step (Ctrl-C again to exit now)");
        });
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

/// Runs one script into a new run folder. Shared by `run`, `rerun` and `sweep`.
pub fn execute(script: &Path, opts: &RunOptions, command: Vec<String>, sweep: Option<String>, rerun_of: Option<String>) -> Outcome {
    install_handlers();
    if !script.is_file() {
        return Outcome::usage(format!("no script file {}", script.display()));
    }
    let inputs = match ParamInputs::new(&opts.sets, opts.config.as_deref()) {
        Ok(i) => i,
        Err(e) => return Outcome::usage(format!("{e:#}")),
    };
    let device = match crate::device::parse_device(&opts.device) {
        Ok(d) => d,
        Err(e) => return Outcome::usage(format!("{e:#}")),
    };
    let checker = new_engine(Rc::new(ScriptCtx::detached()), opts.max_operations);
    let ast = match checker.compile_file(script.to_path_buf()) {
        Ok(ast) => ast,
        Err(e) => {
            eprintln!("{}", format_script_error(&e, &script.display().to_string()));
            return Outcome { dir: None, code: 1 };
        }
    };
    let declared = declared_params(&checker, &ast, script).unwrap_or_default();
    if let Err(e) = inputs.check_declared(&declared, script) {
        return Outcome::usage(format!("{e:#}"));
    }
    drop(checker);

    let spec = RunSpec { script: script.to_path_buf(), seed: opts.seed, device, runs_dir: opts.runs_dir.clone(), command, sweep, rerun_of };
    crate::seed::seed_torch(opts.seed);
    if let Err(e) = crate::torch_ext::set_deterministic(device) {
        eprintln!("runner: {e:#}");
        return Outcome { dir: None, code: 1 };
    }
    let session = match Session::start(&spec, BTreeMap::new()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("runner: {e:#}");
            return Outcome { dir: None, code: 1 };
        }
    };
    if let Err(e) = crate::logging::log_to(&session.dir) {
        eprintln!("runner: cannot open the run log: {e:#}");
    }
    let file_name = script.file_name().map(PathBuf::from).unwrap_or_default();
    if let Err(e) = session.keep_source(script, &file_name) {
        eprintln!("runner: {e:#}");
    }
    eprintln!("run {} (seed {})", session.dir.display(), opts.seed);
    eprintln!("device: {}", crate::device::describe(device));
    tracing::info!(script = %script.display(), seed = opts.seed, "run started");

    let ctx = Rc::new(ScriptCtx { session: Some(session.clone()), inputs, seed: opts.seed, device, script: script.to_path_buf() });
    let engine = new_engine(ctx, opts.max_operations);
    let mut scope = Scope::new();
    scope.push_constant("seed", opts.seed as i64);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| engine.run_ast_with_scope(&mut scope, &ast)));
    drop(engine);
    drop(scope);

    let (status, error) = match result {
        Ok(Ok(())) => (Status::Completed, None),
        Ok(Err(e)) => {
            let msg = format_script_error(&e, &script.display().to_string());
            let status = if interrupted() { Status::Interrupted } else { Status::Failed };
            (status, Some(msg))
        }
        Err(_) => {
            let msg = LAST_PANIC.lock().unwrap().take().unwrap_or_else(|| "unknown panic".into());
            (Status::Failed, Some(format!("internal error (please report): {msg}")))
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
    let secs = session.record().duration_s.unwrap_or(0.0);
    eprintln!("run {}: {status} in {secs:.1}s", session.dir.display());
    let code = match status {
        Status::Completed => 0,
        Status::Interrupted => 130,
        _ => 1,
    };
    Outcome { dir: Some(session.dir.clone()), code }
}
