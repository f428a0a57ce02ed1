//! The Slurm commands a sweep uses, run as a user would (`sbatch`, `squeue`, `scontrol`),
//! honouring `SLURM_CONF` and the rest of the environment. Outputs are parsed defensively:
//! a line we cannot read is skipped, never a reason to fail a status.
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Slurm's default when `scontrol` does not say.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

fn slurm(cmd: &str) -> Command {
    Command::new(cmd)
}

fn run(mut c: Command, what: &str) -> Result<String> {
    let out =
        c.output().with_context(|| format!("cannot run {what}: is Slurm installed? (scripts/slurm-local up starts a one-node test cluster)"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("{what} failed ({}): {}", out.status, err.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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
