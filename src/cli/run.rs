//! `runner <script>`: the flags, resolved into a `RunConfig`, run by `crate::run`; and how
//! any run's outcome becomes an exit code.
use crate::run::{execute, Launch, Outcome, Refusal, RunConfig};
use crate::track::Status;

pub fn run_command(cfg: &RunConfig, argv: Vec<String>) -> i32 {
    outcome_code(&execute(cfg, Launch::new(argv)))
}

/// Says why a run did not start; returns its exit code (2 for bad input, else 1).
pub fn refused(r: &Refusal) -> i32 {
    match r {
        Refusal::Usage(msg) => {
            eprintln!("runner: {msg}");
            2
        }
        Refusal::Script(msg) => {
            eprintln!("{msg}");
            1
        }
        Refusal::Setup(e) => {
            eprintln!("runner: {e:#}");
            1
        }
    }
}

/// 0 completed, 128 + the signal's number when interrupted (130 SIGINT, 143 SIGTERM),
/// else 1; a run that never started as `refused` says.
pub fn outcome_code(outcome: &Outcome) -> i32 {
    match outcome {
        Ok(ended) => match (ended.status, ended.signal) {
            (Status::Completed, _) => 0,
            (Status::Interrupted, Some(sig)) => 128 + sig,
            _ => 1,
        },
        Err(r) => refused(r),
    }
}
