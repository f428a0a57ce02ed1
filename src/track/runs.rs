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

    fn still_running(&self) -> bool {
        let pid = self.record.extra.get("pid").and_then(|v| v.as_integer());
        let host = host_name();
        match pid {
            Some(pid) if self.record.host == host => Path::new(&format!("/proc/{pid}")).exists(),
            _ => true,
        }
    }
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Every readable run under `root`, newest first. Folders without a readable `run.toml`
/// are reported through `skipped` rather than failing the listing.
pub fn list_runs(root: &Path, skipped: &mut Vec<String>) -> Result<Vec<RunEntry>> {
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
            Err(e) => skipped.push(format!("{e:#}")),
        }
    }
    out.sort_by(|a, b| (&b.record.started, b.folder()).cmp(&(&a.record.started, a.folder())));
    Ok(out)
}

/// Resolves one run name against the runs under `root`.
pub fn find_run(root: &Path, name: &str) -> Result<RunEntry> {
    let as_path = Path::new(name);
    if as_path.join(RECORD_FILE).exists() {
        let dir = as_path.to_path_buf();
        return Ok(RunEntry { record: RunRecord::read(&dir)?, dir });
    }
    let mut skipped = Vec::new();
    let mut runs = list_runs(root, &mut skipped)?;
    if runs.is_empty() {
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
        0 => bail!("no run named `{name}` under {} (try `runner runs`)", root.display()),
        _ => bail!("`{name}` is ambiguous: it starts the ids of {}", matches.iter().map(|&i| runs[i].folder()).collect::<Vec<_>>().join(", ")),
    }
}

/// Resolves a name that may stand for several runs: a sweep id (or a unique prefix of one
/// starting with `sweep-`) gives every run of that sweep, oldest first; anything else one run.
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
        return Ok(of_sweep);
    }
    Ok(vec![find_run(root, name)?])
}
