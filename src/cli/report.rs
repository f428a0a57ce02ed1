//! `runner report`: resolve the named runs (or a sweep) and write the HTML page.
use crate::track::{find_runs, RunEntry};
use anyhow::Result;
use std::path::Path;

pub fn report(root: &Path, names: &[String], out: &Path) -> Result<()> {
    if names.is_empty() {
        return Err(super::usage("name the runs to report on (folder, id prefix, last, last~1, ..., or a sweep id)"));
    }
    let mut runs: Vec<RunEntry> = Vec::new();
    for n in names {
        runs.extend(find_runs(root, n)?);
    }
    let sweeps: Vec<&str> = runs.iter().filter_map(|r| r.record.sweep.as_deref()).collect();
    let title = match names {
        [one] if one.starts_with("sweep-") && !sweeps.is_empty() => format!("runner report: {}", sweeps[0]),
        _ if runs.len() == 1 => format!("runner report: {}", runs[0].folder()),
        _ => format!("runner report: {} runs", runs.len()),
    };
    crate::report::write(&runs, &title, out)?;
    eprintln!("wrote {} ({} runs; opens offline)", out.display(), runs.len());
    Ok(())
}
