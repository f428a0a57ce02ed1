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

/// How a run was started, as its record's `[dist]` table says (a run without one was one process).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedWorld {
    pub size: usize,
    /// `runner launch`, `torchrun`, `srun` or `env`.
    pub launcher: String,
    pub timeout: Option<std::time::Duration>,
}

impl RecordedWorld {
    pub fn of(record: &crate::track::RunRecord) -> RecordedWorld {
        let dist = record.extra.get("dist").and_then(|d| d.as_table());
        let get = |k: &str| dist.and_then(|d| d.get(k));
        RecordedWorld {
            size: get("world_size").and_then(|v| v.as_integer()).filter(|&n| n > 0).map_or(1, |n| n as usize),
            launcher: get("launcher").and_then(|v| v.as_str()).unwrap_or("").to_string(),
            timeout: get("timeout_s").and_then(|v| v.as_float()).filter(|t| *t > 0.0 && t.is_finite()).map(std::time::Duration::from_secs_f64),
        }
    }

    /// A run resumes in a world of its recorded size: a group's batches were `bs` on each of
    /// N ranks, and its sampler gave each rank 1/N of every epoch.
    pub fn check_resume(&self, dir: &Path, world: Option<&World>) -> Result<(), String> {
        let now = world.map_or(1, |w| w.size);
        if now == self.size {
            return Ok(());
        }
        let procs = |n: usize| if n == 1 { "one process".to_string() } else { format!("{n} processes") };
        if now == 1 {
            let how = match self.launcher.as_str() {
                "runner launch" => "`runner resume` starts its group again".to_string(),
                l => {
                    format!("resume it as it was started: every rank running `runner resume` under {}", if l.is_empty() { "its launcher" } else { l })
                }
            };
            return Err(format!("{} was a data-parallel run of {}, but this resume is one process: {how}", dir.display(), procs(self.size)));
        }
        Err(format!(
            "{} was a run of {}, but this resume is a group of {}: a run resumes with the world size it was recorded with",
            dir.display(),
            procs(self.size),
            procs(now)
        ))
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
    take_checkpoints(&j.run_dir, &scratch)?;
    eprintln!("rank {} (pid {}) of {} in run {} (its own files in {})", w.rank, std::process::id(), w.size, j.run_dir.display(), scratch.display());
    Ok(Member { group: Arc::new(j.group), hosts: j.hosts, scratch: Some(scratch) })
}

/// A follower restores what rank 0 checkpointed: when rank 0's folder holds resume
/// checkpoints at joining (it is resuming: a new run has none yet), the follower copies its
/// `models/` into its own folder before the script starts. Rank 0 cannot write newer ones
/// before then: it needs this rank for the next collective.
fn take_checkpoints(run_dir: &Path, scratch: &Path) -> Result<()> {
    let models = run_dir.join("models");
    if !run_dir.join(crate::learn::resume::RESUME_DIR).is_dir() {
        return Ok(());
    }
    let mut files = Vec::new();
    crate::fs_walk::walk(&models, &mut |e| {
        if let crate::fs_walk::Entry::File { path, .. } = e {
            files.push(path);
        }
    })?;
    for from in files {
        let to = scratch.join(from.strip_prefix(run_dir).unwrap_or(&from));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::copy(&from, &to).with_context(|| format!("cannot copy rank 0's checkpoint {} to {}", from.display(), to.display()))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn world(size: usize) -> World {
        let (rank, local_rank, master_addr, master_port, agent_store) = (0, 0, "127.0.0.1".into(), 1, false);
        World { rank, size, local_rank, master_addr, master_port, agent_store, launcher: "srun", timeout: crate::dist::DEFAULT_TIMEOUT, attempt: 0 }
    }

    #[test]
    fn a_run_resumes_only_in_a_world_of_its_recorded_size_and_says_how() {
        let dir = Path::new("runs/r");
        let by = |launcher: &str| RecordedWorld { size: 2, launcher: launcher.into(), timeout: None };
        assert_eq!(by("srun").check_resume(dir, Some(&world(2))), Ok(()));
        let one = RecordedWorld { size: 1, launcher: String::new(), timeout: None };
        assert_eq!(one.check_resume(dir, None), Ok(()));
        let e = by("srun").check_resume(dir, None).unwrap_err();
        assert!(e.contains("runs/r was a data-parallel run of 2 processes") && e.contains("under srun"), "{e}");
        assert!(by("runner launch").check_resume(dir, None).unwrap_err().contains("`runner resume` starts its group again"));
        let e = by("torchrun").check_resume(dir, Some(&world(3))).unwrap_err();
        assert!(e.contains("a run of 2 processes, but this resume is a group of 3 processes"), "{e}");
        let e = one.check_resume(dir, Some(&world(2))).unwrap_err();
        assert!(e.contains("a run of one process, but this resume is a group of 2 processes"), "{e}");
    }
}
