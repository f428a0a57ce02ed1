//! `runner launch`: a local data-parallel group, as torchrun starts one. It spawns N copies
//! of a program with the group's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR =
//! 127.0.0.1, a free MASTER_PORT), forwards SIGINT and SIGTERM to all of them, and ends
//! with the first failure's exit code once the others have stopped (they stop on their
//! own when a peer's collectives break; those still running after the grace period are
//! terminated).
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct LaunchSpec {
    /// Processes to start.
    pub nproc: usize,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// RUNNER_DIST_TIMEOUT for the ranks (None: theirs, or the default).
    pub timeout: Option<Duration>,
    /// The store's port (None: a free one).
    pub port: Option<u16>,
}

/// A free TCP port on 127.0.0.1 (the OS picks it; it is free again once we close it).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// The exit code a status stands for (a signal `s` as 128 + s, as shells report it).
fn code(s: ExitStatus) -> i32 {
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

fn describe(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with {c}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "ended".into(),
    }
}

/// Runs the group to its end and returns the exit code to end with: 0 when every rank
/// succeeded, else the first failure's.
pub fn launch(spec: &LaunchSpec) -> Result<i32> {
    let port = match spec.port {
        Some(p) => p,
        None => free_port()?,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = std::env::var("OMP_NUM_THREADS").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| (cores / spec.nproc).max(1).to_string());
    let pids: Arc<Mutex<Vec<i32>>> = Arc::default();
    let forwarded = Arc::new(AtomicI32::new(0));
    forward_signals(pids.clone(), forwarded.clone())?;
    let mut children: Vec<Option<Child>> = Vec::new();
    for rank in 0..spec.nproc {
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", spec.nproc.to_string())
            .env("LOCAL_WORLD_SIZE", spec.nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env("OMP_NUM_THREADS", &threads)
            .env("RUNNER_LAUNCH", "1")
            // Its own process group: a terminal's Ctrl-C reaches the launcher alone, which
            // forwards it once (a second signal would make the ranks exit at once).
            .process_group(0);
        if let Some(t) = spec.timeout {
            cmd.env("RUNNER_DIST_TIMEOUT", t.as_secs_f64().to_string());
        }
        // SAFETY: prctl is async-signal-safe; the child is told to stop if the launcher dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("cannot start rank {rank}: {}", spec.program.display()))?;
        pids.lock().unwrap().push(child.id() as i32);
        children.push(Some(child));
    }
    eprintln!("launch: {} processes on 127.0.0.1:{port} ({threads} threads each)", spec.nproc);
    let grace = spec.timeout.unwrap_or(crate::dist::DEFAULT_TIMEOUT) + Duration::from_secs(10);
    let mut first: Option<(usize, ExitStatus)> = None;
    let mut deadline: Option<Instant> = None;
    let mut terminated = false;
    while children.iter().any(Option::is_some) {
        for (rank, slot) in children.iter_mut().enumerate() {
            let Some(child) = slot else { continue };
            if let Some(status) = child.try_wait()? {
                let pid = child.id() as i32;
                pids.lock().unwrap().retain(|&p| p != pid);
                *slot = None;
                if !status.success() && first.is_none() {
                    let log = if rank > 0 { format!("; its output is rank-{rank}.log in the run folder") } else { String::new() };
                    match forwarded.load(Ordering::SeqCst) {
                        0 => eprintln!("launch: rank {rank} {} (the first to fail){log}", describe(status)),
                        sig => eprintln!("launch: stopping on signal {sig}: rank {rank} {}{log}", describe(status)),
                    }
                    first = Some((rank, status));
                    deadline = Some(Instant::now() + grace);
                }
            }
        }
        if let Some(d) = deadline.filter(|d| Instant::now() > *d) {
            let sig = if terminated { libc::SIGKILL } else { libc::SIGTERM };
            for (rank, c) in children.iter().enumerate() {
                if let Some(c) = c {
                    eprintln!("launch: rank {rank} still runs {}s after the first failure: sending signal {sig}", grace.as_secs());
                    // SAFETY: signalling our own child by pid.
                    unsafe { libc::kill(c.id() as i32, sig) };
                }
            }
            terminated = true;
            deadline = Some(d + Duration::from_secs(10));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(first.map_or(0, |(_, s)| code(s)))
}

/// SIGINT and SIGTERM to the launcher go on to every rank (`forwarded` keeps the last).
fn forward_signals(pids: Arc<Mutex<Vec<i32>>>, forwarded: Arc<AtomicI32>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("cannot handle SIGINT/SIGTERM")?;
    std::thread::spawn(move || {
        for sig in signals.forever() {
            forwarded.store(sig, Ordering::SeqCst);
            for &pid in pids.lock().unwrap().iter() {
                // SAFETY: signalling our own children by pid.
                unsafe { libc::kill(pid, sig) };
            }
        }
    });
    Ok(())
}
