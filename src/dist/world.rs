//! Where this process stands in a data-parallel group, read from the environment as
//! torchrun, `runner launch` and Slurm's `srun` describe it. No group in the environment,
//! or a world of one, means a single process: the run is then exactly what it was before
//! data-parallel training existed.
use anyhow::{bail, Context, Result};
use std::time::Duration;

/// How long a rank waits for the others (joining, a collective) before it gives up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
pub struct World {
    pub rank: usize,
    pub size: usize,
    /// The rank among this node's processes (picks the GPU).
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// torchrun's agent already serves the store at the master port, so every rank,
    /// rank 0 included, joins it as a client.
    pub agent_store: bool,
    /// What set the variables: `torchrun`, `runner launch`, `srun` or `env`.
    pub launcher: &'static str,
    pub timeout: Duration,
    /// The launcher's restart count: each attempt's keys in a surviving store are apart.
    pub attempt: u64,
}

impl World {
    /// The group this process belongs to, if any.
    pub fn from_env() -> Result<Option<World>> {
        World::from_vars(&|k| std::env::var(k).ok().filter(|v| !v.is_empty()), &first_slurm_host)
    }

    /// `from_env` over any variables; `first_host` expands a Slurm node list to its first
    /// host (`scontrol show hostnames`).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>, first_host: &dyn Fn(&str) -> Result<String>) -> Result<Option<World>> {
        let num = |name: &str| -> Result<Option<usize>> {
            var(name).map(|v| v.trim().parse::<usize>().with_context(|| format!("{name}={v} is not a whole number"))).transpose()
        };
        let timeout = match var("RUNNER_DIST_TIMEOUT") {
            None => DEFAULT_TIMEOUT,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s),
                _ => bail!("RUNNER_DIST_TIMEOUT={v} is not a positive number of seconds"),
            },
        };
        let attempt = num("TORCHELASTIC_RESTART_COUNT")?.or(num("SLURM_RESTART_COUNT")?).unwrap_or(0) as u64;
        let port = |v: String| -> Result<u16> {
            v.trim().parse::<u16>().ok().filter(|&p| p > 0).with_context(|| format!("MASTER_PORT={v} is not a port (1-65535)"))
        };
        let (rank, size, local_rank, master_addr, master_port, launcher) = if let Some(size) = num("WORLD_SIZE")? {
            if size <= 1 {
                return Ok(None);
            }
            let rank = num("RANK")?.context("WORLD_SIZE is set but RANK is not: every process of a group needs its RANK")?;
            let addr = var("MASTER_ADDR").context("WORLD_SIZE is set but MASTER_ADDR is not: the address of rank 0's host")?;
            let p = port(var("MASTER_PORT").context("WORLD_SIZE is set but MASTER_PORT is not: the port of the group's store")?)?;
            let launcher = if var("TORCHELASTIC_RUN_ID").is_some() || var("TORCHELASTIC_USE_AGENT_STORE").is_some() {
                "torchrun"
            } else if var("RUNNER_LAUNCH").is_some() {
                "runner launch"
            } else {
                "env"
            };
            (rank, size, num("LOCAL_RANK")?.unwrap_or(rank), addr, p, launcher)
        } else if let (Some(size), Some(rank)) = (num("SLURM_STEP_NUM_TASKS")?, num("SLURM_PROCID")?) {
            // Only srun's tasks: a batch script's own step is one process, whatever --ntasks says.
            if size <= 1 {
                return Ok(None);
            }
            let addr = match var("MASTER_ADDR") {
                Some(a) => a,
                None => {
                    let list = var("SLURM_STEP_NODELIST").or(var("SLURM_JOB_NODELIST")).context("srun set SLURM_PROCID but no SLURM_JOB_NODELIST")?;
                    first_host(&list)?
                }
            };
            let p = match var("MASTER_PORT") {
                Some(v) => port(v)?,
                None => {
                    let job = num("SLURM_JOB_ID")?.context("srun set SLURM_PROCID but no SLURM_JOB_ID (the store's port derives from it)")?;
                    slurm_port(job)
                }
            };
            (rank, size, num("SLURM_LOCALID")?.unwrap_or(0), addr, p, "srun")
        } else {
            return Ok(None);
        };
        if rank >= size {
            bail!("RANK {rank} is out of range for WORLD_SIZE {size} (ranks are 0..{})", size - 1);
        }
        let agent_store = var("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(Some(World { rank, size, local_rank, master_addr, master_port, agent_store, launcher, timeout, attempt }))
    }

    /// Whether this process serves the group's store (rank 0, unless torchrun's agent does).
    pub fn serves_store(&self) -> bool {
        self.rank == 0 && !self.agent_store
    }

    /// The address Gloo binds to: loopback for a group on 127.0.0.1 (or localhost), else
    /// this machine's hostname (None), as torch does.
    pub fn gloo_bind(&self) -> Option<&'static str> {
        let local = self.master_addr == "localhost" || self.master_addr.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
        local.then_some("127.0.0.1")
    }
}

/// A port for a Slurm job's store, the same on every task of the job: 15000 + the job id
/// modulo 20000 (clear of the ephemeral range).
pub fn slurm_port(job_id: usize) -> u16 {
    (15000 + job_id % 20000) as u16
}

/// The first host of a Slurm node list (`node[01-04]` -> `node01`), by `scontrol show
/// hostnames`; a list of plain names needs no scontrol.
fn first_slurm_host(list: &str) -> Result<String> {
    if !list.contains(['[', ',']) {
        return Ok(list.trim().to_string());
    }
    let out = std::process::Command::new("scontrol")
        .args(["show", "hostnames", list])
        .output()
        .with_context(|| format!("cannot run `scontrol show hostnames {list}` to find rank 0's host (or set MASTER_ADDR)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.lines().next().map(str::trim).filter(|h| out.status.success() && !h.is_empty()) {
        Some(h) => Ok(h.to_string()),
        None => bail!("`scontrol show hostnames {list}` gave no host: {}", String::from_utf8_lossy(&out.stderr).trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn world(vars: &[(&str, &str)]) -> Result<Option<World>> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        World::from_vars(&|k| m.get(k).cloned(), &|list| Ok(format!("first-of-{list}")))
    }

    #[test]
    fn no_group_or_a_world_of_one_is_a_single_process() {
        assert_eq!(world(&[]).unwrap(), None);
        assert_eq!(world(&[("WORLD_SIZE", "1"), ("RANK", "0")]).unwrap(), None);
        assert_eq!(world(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "4"), ("SLURM_JOB_ID", "7")]).unwrap(), None, "a batch step is one process");
    }

    #[test]
    fn torchrun_makes_every_rank_a_client_of_its_agents_store() {
        let w = world(&[
            ("WORLD_SIZE", "2"),
            ("RANK", "0"),
            ("LOCAL_RANK", "0"),
            ("MASTER_ADDR", "127.0.0.1"),
            ("MASTER_PORT", "29500"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((w.rank, w.size, w.master_port, w.launcher, w.attempt), (0, 2, 29500, "torchrun", 1));
        assert!(!w.serves_store());
        assert_eq!(w.gloo_bind(), Some("127.0.0.1"));
        let w = world(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_ADDR", "10.0.0.5"), ("MASTER_PORT", "29500")]).unwrap().unwrap();
        assert!(w.serves_store());
        assert_eq!((w.launcher, w.gloo_bind(), w.timeout), ("env", None, DEFAULT_TIMEOUT));
    }

    #[test]
    fn srun_tasks_find_rank_0s_host_and_a_port_from_the_job_id() {
        let w = world(&[
            ("SLURM_PROCID", "3"),
            ("SLURM_STEP_NUM_TASKS", "4"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_JOB_NODELIST", "node[01-02]"),
            ("SLURM_JOB_ID", "12345"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((w.rank, w.size, w.local_rank, w.launcher), (3, 4, 1, "srun"));
        assert_eq!((w.master_addr.as_str(), w.master_port), ("first-of-node[01-02]", 15000 + 12345));
        assert_eq!(first_slurm_host("node7").unwrap(), "node7");
    }

    #[test]
    fn bad_variables_are_named() {
        let e = |vars: &[(&str, &str)]| world(vars).unwrap_err().to_string();
        assert!(e(&[("WORLD_SIZE", "2")]).contains("RANK"));
        assert!(e(&[("WORLD_SIZE", "two")]).contains("WORLD_SIZE=two"));
        assert!(e(&[("WORLD_SIZE", "2"), ("RANK", "2"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "1")]).contains("out of range"));
        assert!(e(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_ADDR", "h")]).contains("MASTER_PORT"));
        assert!(e(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "70000")]).contains("not a port"));
        assert!(e(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "1"), ("RUNNER_DIST_TIMEOUT", "-1")])
            .contains("RUNNER_DIST_TIMEOUT"));
    }
}
