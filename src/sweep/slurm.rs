//! The Slurm commands a sweep uses, run as a user would (`sbatch`, `squeue`, `scontrol`),
//! honouring `SLURM_CONF` and the rest of the environment. Before any of them runs, the
//! controller named in slurm.conf is asked for a connection (at most a second): Slurm's
//! own commands retry for many seconds and print pages of diagnostics when it is down,
//! and without a slurm.conf they look it up in DNS. Outputs are parsed defensively: a line
//! we cannot read is skipped, never a reason to fail a status.
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Slurm's default when `scontrol` does not say.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// Where Slurm reads its configuration without `SLURM_CONF` (Debian's and upstream's default).
const DEFAULT_CONF: &str = "/etc/slurm/slurm.conf";
/// slurmctld's port unless slurm.conf says.
const DEFAULT_PORT: u16 = 6817;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

fn slurm(cmd: &str) -> Command {
    Command::new(cmd)
}

/// Runs a Slurm command once the controller answers; a failure is its last line of
/// diagnostics, not the whole of them.
fn run(mut c: Command, what: &str) -> Result<String> {
    reachable()?;
    let out =
        c.output().with_context(|| format!("cannot run {what}: is Slurm installed? (scripts/slurm-local up starts a one-node test cluster)"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("no message");
        bail!("{what} failed ({}): {last}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The slurm.conf Slurm's commands read: `SLURM_CONF`, else the default path.
fn conf_path() -> (PathBuf, bool) {
    match std::env::var_os("SLURM_CONF").filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), true),
        None => (PathBuf::from(DEFAULT_CONF), false),
    }
}

/// The controller's addresses in slurm.conf: every `SlurmctldHost` (the primary and its
/// backups; `name(address)` connects to the address) or the older `ControlMachine`/
/// `ControlAddr`, and `SlurmctldPort` (the first of a range).
fn controllers(conf: &str) -> Vec<(String, u16)> {
    let mut hosts = Vec::new();
    let mut port = DEFAULT_PORT;
    let mut control_addr = None;
    for line in conf.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.split_whitespace().next().unwrap_or("");
        match k.trim().to_ascii_lowercase().as_str() {
            "slurmctldhost" | "controlmachine" => {
                let host = match (v.find('('), v.strip_suffix(')')) {
                    (Some(open), Some(inner)) => &inner[open + 1..],
                    _ => v,
                };
                hosts.push(host.to_string());
            }
            "controladdr" => control_addr = Some(v.to_string()),
            "slurmctldport" => port = v.split('-').next().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_PORT),
            _ => {}
        }
    }
    if let Some(a) = control_addr {
        hosts.insert(0, a);
    }
    hosts.into_iter().filter(|h| !h.is_empty()).map(|h| (h, port)).collect()
}

/// Whether a Slurm controller answers, said in one line with what to do when it does not.
pub fn reachable() -> Result<()> {
    let (conf, from_env) = conf_path();
    let test = "a test cluster: `scripts/slurm-local up DIR`, then the `export SLURM_CONF=...` it prints";
    let text = match std::fs::read_to_string(&conf) {
        Ok(t) => t,
        Err(_) if !from_env => {
            bail!("Slurm is not configured here: SLURM_CONF is unset and there is no {DEFAULT_CONF}; set SLURM_CONF to your cluster's slurm.conf ({test})")
        }
        Err(e) => bail!("cannot read SLURM_CONF={} ({e}): set SLURM_CONF to your cluster's slurm.conf ({test})", conf.display()),
    };
    let ctl = controllers(&text);
    if ctl.is_empty() {
        bail!("{} names no SlurmctldHost: set SLURM_CONF to your cluster's slurm.conf ({test})", conf.display());
    }
    for (host, port) in &ctl {
        let addrs = (host.as_str(), *port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()).unwrap_or_default();
        if addrs.iter().any(|a| TcpStream::connect_timeout(a, CONNECT_TIMEOUT).is_ok()) {
            return Ok(());
        }
    }
    let at = ctl.iter().map(|(h, p)| format!("{h}:{p}")).collect::<Vec<_>>().join(", ");
    let via = if from_env { format!("SLURM_CONF={}", conf.display()) } else { conf.display().to_string() };
    bail!("Slurm's controller does not answer at {at} ({via}): start it ({test}), or set SLURM_CONF to a running cluster's slurm.conf")
}

/// The cluster's `MaxArraySize` (array indices must stay below it).
pub fn max_array_size() -> Result<usize> {
    let mut c = slurm("scontrol");
    c.args(["show", "config"]);
    let text = run(c, "scontrol show config")?;
    Ok(parse_max_array_size(&text).unwrap_or(DEFAULT_MAX_ARRAY_SIZE))
}

fn parse_max_array_size(text: &str) -> Option<usize> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "MaxArraySize").then(|| v.trim().parse().ok()).flatten()
    })
}

/// `sbatch --parsable`: submits `script` with `args` (ours first, the user's after, so the
/// user's win) and returns the job id.
pub fn sbatch(script: &Path, args: &[String]) -> Result<String> {
    let mut c = slurm("sbatch");
    c.arg("--parsable").args(args).arg(script);
    let out = run(c, "sbatch")?;
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let id = out.trim().split(';').next().unwrap_or("").trim().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed `{}`, not a job id", out.trim());
    }
    Ok(id)
}

/// One array task as `squeue` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub state: String,
    pub reason: String,
}

impl Queued {
    /// Still waiting or running (as opposed to the finished states squeue keeps a while).
    pub fn active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "REQUEUED"
                | "REQUEUE_HOLD"
                | "REQUEUE_FED"
                | "RESIZING"
                | "SUSPENDED"
                | "STOPPED"
                | "SIGNALING"
        )
    }
    pub fn pending(&self) -> bool {
        matches!(self.state.as_str(), "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED")
    }
}

/// The tasks of jobs named `name` that squeue still knows (finished ones vanish after
/// `MinJobAge`), keyed by (array job id, task index).
pub fn queue(name: &str) -> Result<HashMap<(String, usize), Queued>> {
    let mut c = slurm("squeue");
    c.args(["-h", "-r", "--states=all", "--name", name, "-o", "%F|%K|%T|%r"]);
    Ok(parse_queue(&run(c, "squeue")?))
}

fn parse_queue(text: &str) -> HashMap<(String, usize), Queued> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.trim().split('|').collect();
        let [job, task, state, reason] = f[..] else { continue };
        // A pending array not yet split shows `[3-7%2]`; `-r` should prevent it, but be lenient.
        let Ok(task) = task.trim().parse::<usize>() else { continue };
        // States may carry a suffix such as `CANCELLED by 0`.
        let state = state.split_whitespace().next().unwrap_or("").to_string();
        out.insert((job.trim().to_string(), task), Queued { state, reason: reason.trim().to_string() });
    }
    out
}

/// The job name of a sweep's arrays, which `queue` looks them up by.
pub fn job_name(sweep_id: &str) -> String {
    format!("runner-{sweep_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_controller_in_slurm_conf() {
        let conf = "ClusterName=x\nSlurmctldHost=head(10.0.0.1) # primary\nSlurmctldHost=backup\nSlurmctldPort=7000-7001\n";
        assert_eq!(controllers(conf), [("10.0.0.1".to_string(), 7000), ("backup".to_string(), 7000)]);
        assert_eq!(controllers("ControlMachine=old\nControlAddr=1.2.3.4\n"), [("1.2.3.4".to_string(), 6817), ("old".to_string(), 6817)]);
        assert!(controllers("NodeName=a\n").is_empty());
    }

    #[test]
    fn parses_what_slurm_prints() {
        assert_eq!(parse_max_array_size("MaxArraySize            = 4\nMaxJobCount = 10000\n"), Some(4));
        assert_eq!(parse_max_array_size("nothing here"), None);
        let q = parse_queue("8812|0|RUNNING|None\n8812|1|PENDING|JobArrayTaskLimit\n8812|[2-3%2]|PENDING|x\ngarbage\n8813|0|CANCELLED by 0|None\n");
        assert_eq!(q.len(), 3);
        assert!(q[&("8812".into(), 0)].active() && !q[&("8812".into(), 0)].pending());
        assert_eq!(q[&("8812".into(), 1)].reason, "JobArrayTaskLimit");
        assert!(q[&("8812".into(), 1)].pending());
        assert!(!q[&("8813".into(), 0)].active());
    }
}
