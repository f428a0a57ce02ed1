//! A run as one rank of a data-parallel group: rank 0 opens the run folder, joins the
//! group with it and alone writes the record (which gets a `[dist]` table: world size,
//! backend, each rank's host); every other rank joins first, learns the folder from rank 0,
//! sends its console output to `rank-N.log` there, and keeps its own record, metrics and
//! pictures in a scratch folder that is removed when it ends. The ranks agree at joining on
//! the world size, the script, the params, the backend and the runner build.
use super::RunConfig;
use crate::dist::{join, Backend, ProcessGroup, World};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::Device;

/// This process's place in the group.
pub struct Member {
    pub group: Arc<ProcessGroup>,
    /// Each rank's host, by rank (rank 0 knows them all).
    pub hosts: Vec<String>,
    /// A follower's own folder for what it would write (None on rank 0).
    pub scratch: Option<PathBuf>,
}

/// The device of rank `local_rank` on its node: its own GPU when the run is on CUDA.
pub fn rank_device(device: Device, w: &World) -> Result<Device, String> {
    match device {
        Device::Cuda(_) => {
            let n = tch::Cuda::device_count() as usize;
            if w.local_rank >= n {
                return Err(format!("rank {} is local rank {} but this node has {n} CUDA device(s)", w.rank, w.local_rank));
            }
            Ok(Device::Cuda(w.local_rank))
        }
        d => Ok(d),
    }
}

/// A data-parallel run's folder cannot be resumed by one process (its batches were
/// `bs` on each of N), nor yet by a group.
pub fn refuse_resume(dir: &Path) -> Result<(), String> {
    let world = crate::track::RunRecord::read(dir).ok().and_then(|r| r.extra.get("dist")?.get("world_size")?.as_integer());
    match world {
        Some(n) if n > 1 => Err(format!("{} was a data-parallel run of {n} processes: resuming one is not supported yet", dir.display())),
        _ => Ok(()),
    }
}

/// Gloo on the CPU, NCCL on CUDA (RUNNER_DIST_BACKEND=gloo|nccl to choose).
fn backend(device: Device) -> Result<Backend> {
    let chosen = std::env::var("RUNNER_DIST_BACKEND").ok().filter(|v| !v.is_empty());
    let b = match chosen.as_deref() {
        Some("gloo") => Backend::Gloo,
        Some("nccl") => Backend::Nccl,
        Some(other) => bail!("RUNNER_DIST_BACKEND={other}: use gloo or nccl"),
        None if device.is_cuda() => Backend::Nccl,
        None => Backend::Gloo,
    };
    if b == Backend::Nccl && !Backend::nccl_built() {
        bail!("the run is on CUDA but this runner was built without NCCL (no libtorch_cuda or CUDA headers at build time); RUNNER_DIST_BACKEND=gloo runs the group through Gloo");
    }
    if b == Backend::Nccl && !device.is_cuda() {
        bail!("NCCL moves CUDA tensors, but the run is on the CPU: use Gloo (RUNNER_DIST_BACKEND=gloo, the CPU default)");
    }
    Ok(b)
}

/// What every rank must run alike: the world, the script, its params, the backend and the
/// runner build.
fn facts(cfg: &RunConfig, w: &World, backend: Backend) -> Result<Vec<(&'static str, String)>> {
    let sha = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));
    let script = std::fs::read(&cfg.script).with_context(|| format!("cannot read script {}", cfg.script.display()))?;
    let config = match &cfg.config {
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => vec![],
    };
    let params = format!("{:?} {} seed {} {:?}", cfg.sets, sha(&config), cfg.seed, cfg.limits);
    Ok(vec![
        ("world size", w.size.to_string()),
        ("script sha256", sha(&script)),
        ("params sha256 (--set, --config, --seed, limits)", sha(params.as_bytes())),
        ("backend", backend.name().to_string()),
        ("runner build", format!("{} {}", env!("CARGO_PKG_VERSION"), env!("RUNNER_GIT_COMMIT"))),
    ])
}

/// Rank 0 joins with its run folder.
pub fn lead(w: &World, cfg: &RunConfig, device: Device, run_dir: &Path) -> Result<Member> {
    let b = backend(device)?;
    let j = join(w, b, &crate::track::runs::host_name(), &facts(cfg, w, b)?, Some(run_dir))?;
    Ok(Member { group: Arc::new(j.group), hosts: j.hosts, scratch: None })
}

/// Another rank joins, then writes its console output to `rank-N.log` in rank 0's folder.
pub fn follow(w: &World, cfg: &RunConfig, device: Device) -> Result<Member> {
    let b = backend(device)?;
    let j = join(w, b, &crate::track::runs::host_name(), &facts(cfg, w, b)?, None)?;
    let log = j.run_dir.join(format!("rank-{}.log", w.rank));
    redirect_output(&log)?;
    let name = j.run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let scratch = std::env::temp_dir().join(format!("runner-{name}-rank{}-{}", w.rank, std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    eprintln!("rank {} (pid {}) of {} in run {} (its own files in {})", w.rank, std::process::id(), w.size, j.run_dir.display(), scratch.display());
    Ok(Member { group: Arc::new(j.group), hosts: j.hosts, scratch: Some(scratch) })
}

impl Member {
    /// The record's `[dist]` table (rank 0).
    pub fn describe(&self, w: &World) -> toml::Value {
        let mut t = toml::Table::new();
        t.insert("world_size".into(), toml::Value::Integer(w.size as i64));
        t.insert("backend".into(), toml::Value::String(self.group.backend().name().into()));
        t.insert("launcher".into(), toml::Value::String(w.launcher.into()));
        t.insert("hosts".into(), toml::Value::Array(self.hosts.iter().cloned().map(toml::Value::String).collect()));
        t.insert("timeout_s".into(), toml::Value::Float(w.timeout.as_secs_f64()));
        toml::Value::Table(t)
    }
}

/// Sends this process's stdout and stderr to `path` (appended).
fn redirect_output(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("cannot open {}", path.display()))?;
    for fd in [1, 2] {
        // SAFETY: dup2 onto the standard descriptors of this process; `f` stays open for the call.
        if unsafe { libc::dup2(f.as_raw_fd(), fd) } < 0 {
            bail!("cannot send the output to {}: {}", path.display(), std::io::Error::last_os_error());
        }
    }
    Ok(())
}
