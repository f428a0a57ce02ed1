//! Finding runs: list the run folders under a runs dir, newest first, and resolve the
//! names people type (`last`, `last~1`, a folder name or path, a unique id prefix, a
//! sweep id for all the runs of a sweep).
use super::record::{RunRecord, Status, RECORD_FILE};
use anyhow::{bail, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub struct RunEntry {
    pub dir: PathBuf,
    pub record: RunRecord,
}

impl RunEntry {
    /// Reads the entry's record again (a fresh, owned copy).
    pub fn clone_entry(&self) -> Result<RunEntry> {
        Ok(RunEntry { dir: self.dir.clone(), record: RunRecord::read(&self.dir)? })
    }

    pub fn folder(&self) -> String {
        self.dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// The status to show: a `running` record whose process is gone on this host crashed.
    pub fn shown_status(&self) -> String {
        if self.record.status == Status::Running && !self.still_running() {
            "crashed".into()
        } else {
            self.record.status.to_string()
        }
    }

    /// Alive when a process with the recorded pid exists on this host and started when the
    /// recorded one did (a crashed run's pid may since belong to another process). Runs of
    /// other hosts, and records without a pid, are taken at their word.
    fn still_running(&self) -> bool {
        let int = |k: &str| self.record.extra.get(k).and_then(|v| v.as_integer());
        let Some(pid) = int("pid").and_then(|p| u32::try_from(p).ok()) else { return true };
        if self.record.host != host_name() {
            return true;
        }
        match (process_start_time(pid), int("pid_start")) {
            (None, _) => false,
            (Some(now), Some(recorded)) => now as i64 == recorded,
            (Some(_), None) => true,
        }
    }
}

/// When process `pid` started, in clock ticks after boot (`/proc/<pid>/stat` field 22);
/// None when there is no such process.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2, the command name, is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The login name of whoever runs this process: `USER` or `LOGNAME`, else the password
/// database's entry for the effective uid.
pub fn user_name() -> Option<String> {
    for var in ["USER", "LOGNAME"] {
        if let Some(u) = std::env::var(var).ok().filter(|u| !u.is_empty()) {
            return Some(u);
        }
    }
    // SAFETY: getpwuid returns a pointer into static storage or null; the name is copied at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned())
    }
}

/// Every readable run under `root`, newest first. Folders whose `run.toml` cannot be read
/// are reported through `skipped` (folder, why) rather than failing the listing.
pub fn list_runs(root: &Path, skipped: &mut Vec<(PathBuf, String)>) -> Result<Vec<RunEntry>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => bail!("cannot read runs dir {}: {e}", root.display()),
    };
    for entry in rd.flatten() {
        let dir = entry.path();
        if !dir.join(RECORD_FILE).exists() {
            continue;
        }
        match RunRecord::read(&dir) {
            Ok(record) => out.push(RunEntry { dir, record }),
            Err(e) => skipped.push((dir, format!("{e:#}"))),
        }
    }
    out.sort_by(|a, b| (&b.record.started, b.folder()).cmp(&(&a.record.started, a.folder())));
    Ok(out)
}

/// Resolves one run name against the runs under `root`.
pub fn find_run(root: &Path, name: &str) -> Result<RunEntry> {
    // A folder name or path is read directly, so a damaged record is named as such.
    for dir in [Path::new(name).to_path_buf(), root.join(name)] {
        if dir.join(RECORD_FILE).exists() {
            return Ok(RunEntry { record: RunRecord::read(&dir)?, dir });
        }
    }
    let mut skipped = Vec::new();
    let mut runs = list_runs(root, &mut skipped)?;
    if runs.is_empty() && skipped.is_empty() {
        bail!("no runs under {}", root.display());
    }
    if let Some(rest) = name.strip_prefix("last") {
        let back = match rest {
            "" => 0,
            r => match r.strip_prefix('~').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => n,
                None => bail!("bad run name `{name}`: use last, last~1, last~2, ..."),
            },
        };
        if back >= runs.len() {
            bail!("`{name}`: there are only {} runs under {}", runs.len(), root.display());
        }
        return Ok(runs.swap_remove(back));
    }
    if let Some(i) = runs.iter().position(|r| r.folder() == name) {
        return Ok(runs.swap_remove(i));
    }
    let matches: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].record.id.starts_with(name)).collect();
    match matches.len() {
        1 => Ok(runs.swap_remove(matches[0])),
        0 => match skipped
            .iter()
            .find(|(dir, _)| dir.file_name().and_then(|f| f.to_str()).and_then(|f| f.rsplit('-').next()).is_some_and(|id| id.starts_with(name)))
        {
            Some((_, why)) => bail!("the run `{name}` names cannot be read: {why}"),
            None => bail!("no run named `{name}` under {} (try `runner runs`)", root.display()),
        },
        _ => bail!("`{name}` is ambiguous: it starts the ids of {}", matches.iter().map(|&i| runs[i].folder()).collect::<Vec<_>>().join(", ")),
    }
}

/// Resolves a name that may stand for several runs: a sweep id (or a unique prefix of one
/// starting with `sweep-`) gives the runs of that sweep in point order, the latest attempt
/// of each point (an earlier, failed attempt is superseded by its resubmission); anything
/// else one run.
pub fn find_runs(root: &Path, name: &str) -> Result<Vec<RunEntry>> {
    if name.starts_with("sweep-") && !Path::new(name).join(RECORD_FILE).exists() {
        let mut skipped = Vec::new();
        let runs = list_runs(root, &mut skipped)?;
        let ids: BTreeSet<&str> = runs.iter().filter_map(|r| r.record.sweep.as_deref()).filter(|s| s.starts_with(name)).collect();
        let id = match ids.len() {
            0 => bail!("no sweep named `{name}` under {} (`runner runs` shows the sweep of each run)", root.display()),
            1 => ids.into_iter().next().unwrap_or_default().to_string(),
            _ => bail!("`{name}` is ambiguous: it starts the sweeps {}", ids.into_iter().collect::<Vec<_>>().join(", ")),
        };
        let mut of_sweep: Vec<RunEntry> = runs.into_iter().filter(|r| r.record.sweep.as_deref() == Some(id.as_str())).collect();
        of_sweep.reverse();
        let int = |r: &RunEntry, k: &str| r.record.extra.get(k).and_then(|v| v.as_integer());
        // Oldest first, then stable by point: a record without a point index keeps its place after the indexed ones.
        of_sweep.sort_by_key(|r| int(r, "sweep_index").unwrap_or(i64::MAX));
        let mut latest: Vec<RunEntry> = Vec::new();
        for r in of_sweep {
            match latest.last_mut() {
                Some(prev) if int(prev, "sweep_index").is_some() && int(prev, "sweep_index") == int(&r, "sweep_index") => *prev = r,
                _ => latest.push(r),
            }
        }
        return Ok(latest);
    }
    Ok(vec![find_run(root, name)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_tells_a_live_process_from_none() {
        let me = process_start_time(std::process::id()).expect("this process has a start time");
        assert_eq!(process_start_time(std::process::id()), Some(me), "stable across reads");
        assert!(me > 0);
        assert_eq!(process_start_time(u32::MAX), None);
    }
}
