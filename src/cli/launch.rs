//! `runner launch --nproc-per-node N SCRIPT [OPTIONS]`: checks the run once here (its
//! flags, the script, its params), then starts the local group (`dist::launch`) and
//! exits with the group's code. `runner resume` of a run it started starts the group
//! again the same way, each rank running `runner resume`.
use super::{Cli, TrackArgs};
use crate::dist::launch::{launch, LaunchSpec};
use crate::run::Relaunch;
use anyhow::{Context, Result};
use clap::Parser;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

pub fn launch_cmd(nproc: usize, timeout: Option<f64>, port: Option<u16>, run: Vec<String>) -> i32 {
    if nproc == 0 {
        eprintln!("runner: --nproc-per-node must be at least 1");
        return 2;
    }
    let timeout = match timeout {
        Some(t) if !(t > 0.0 && t.is_finite()) => {
            eprintln!("runner: --timeout must be a positive number of seconds, got {t}");
            return 2;
        }
        t => t.map(Duration::from_secs_f64),
    };
    // The ranks run `runner SCRIPT [OPTIONS]`: refuse here what each of them would refuse.
    let argv: Vec<String> = std::iter::once("runner".to_string()).chain(run.iter().cloned()).collect();
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return 2;
        }
    };
    let script = match (&cli.command, &cli.run.script) {
        (None, Some(s)) => s.clone(),
        _ => {
            eprintln!("runner: launch runs a script: runner launch --nproc-per-node N SCRIPT [--set ...]");
            return 2;
        }
    };
    if let Err(r) = crate::run::check(&cli.run.common.config(script)) {
        return super::run::refused(&r);
    }
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("runner: cannot find the runner binary to launch: {e}");
            return 1;
        }
    };
    let spec = LaunchSpec { nproc, program, args: run.into_iter().map(Into::into).collect(), timeout, port };
    launch(&spec).unwrap_or_else(|e| {
        eprintln!("runner: {e:#}");
        1
    })
}

/// `runner resume RUN` of a run `runner launch` started: its recorded number of ranks on
/// this host, with its recorded timeout, each resuming the run.
pub fn resume_group(root: &Path, group: &Relaunch, device: Option<String>, track: &TrackArgs) -> Result<i32> {
    let program = std::env::current_exe().context("cannot find the runner binary to launch")?;
    let mut args: Vec<OsString> = vec!["resume".into(), group.run.dir.clone().into(), "--runs-dir".into(), root.into()];
    if let Some(d) = device {
        args.extend(["--device".into(), d.into()]);
    }
    if let Some(uri) = &track.uri {
        args.extend(["--track".into(), uri.into()]);
    }
    if track.track_models {
        args.push("--track-models".into());
    }
    let n = group.world.size;
    eprintln!("resume: {} was a group of {n} processes started by runner launch: starting {n} again", group.run.folder());
    launch(&LaunchSpec { nproc: n, program, args, timeout: group.world.timeout, port: None })
}
