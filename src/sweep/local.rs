//! Running a submission on this machine, `jobs` points at a time, each point its own
//! `runner sweep task` process (a crash ends one point, not the sweep). With several GPUs,
//! each job slot gets its own (`CUDA_VISIBLE_DEVICES`).
use super::manifest::Manifest;
use super::submit::{add_submission, Submission};
use anyhow::{Context, Result};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A point's console output when points run side by side, in its run folder.
pub const OUTPUT_FILE: &str = "output.log";

/// Runs `points` here as one new submission, this process standing for it (its pid in
/// the manifest tells pending points from missing ones); returns each task's exit code,
/// in task order.
pub fn submit(m: &mut Manifest, sweep_dir: &Path, points: &[usize], jobs: usize, runner: &Path) -> Result<Vec<i32>> {
    let sub = Submission { array: m.arrays.len(), points: points.to_vec() };
    add_submission(m, sweep_dir, &sub, false)?;
    m.arrays[sub.array].pid = Some(std::process::id());
    m.arrays[sub.array].pid_start = crate::track::runs::process_start_time(std::process::id());
    m.write(sweep_dir)?;
    crate::session::handle_stop_signals();
    run(m, sweep_dir, sub.array, jobs, runner)
}

/// Runs every task of submission `array`; returns each task's exit code, in task order.
fn run(m: &Manifest, sweep_dir: &Path, array: usize, jobs: usize, runner: &Path) -> Result<Vec<i32>> {
    let n = m.arrays[array].points.len();
    let jobs = jobs.clamp(1, n.max(1));
    let gpus = if jobs > 1 { tch::Cuda::device_count() as usize } else { 0 };
    let mut codes = vec![0; n];
    let mut running: Vec<(usize, usize, Child)> = Vec::new();
    let mut next = 0;
    while next < n || !running.is_empty() {
        while next < n && running.len() < jobs {
            let slot = (0..jobs).find(|s| !running.iter().any(|(_, rs, _)| rs == s)).unwrap_or(0);
            let mut c = Command::new(runner);
            c.args(["sweep", "task"]).arg(sweep_dir).args(["--array", &array.to_string(), "--task", &next.to_string()]);
            if gpus > 1 {
                c.env("CUDA_VISIBLE_DEVICES", (slot % gpus).to_string());
            }
            if jobs > 1 {
                let (_, attempt, _) = m.task(array, next)?;
                let log = m.runs_dir().join(&attempt.run).join(OUTPUT_FILE);
                let f = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
                c.stdout(Stdio::from(f.try_clone()?)).stderr(Stdio::from(f));
                eprintln!(
                    "point {} ({}): started, output in {}",
                    m.arrays[array].points[next],
                    m.points[m.arrays[array].points[next]].sets.join(" "),
                    log.display()
                );
            }
            let child = c.spawn().with_context(|| format!("cannot start {}", runner.display()))?;
            running.push((next, slot, child));
            next += 1;
        }
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].2.try_wait()? {
                let (task, _, _) = running.swap_remove(i);
                codes[task] = status.code().unwrap_or(1);
                if jobs > 1 {
                    let index = m.arrays[array].points[task];
                    eprintln!(
                        "point {index} ({}): {}",
                        m.points[index].sets.join(" "),
                        if codes[task] == 0 { "completed".to_string() } else { format!("exit code {}", codes[task]) }
                    );
                }
            } else {
                i += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(codes)
}
