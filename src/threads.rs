//! How many threads a run computes with: libtorch's intra-op pool and the loader's
//! decoding workers. A process that takes every core fights its neighbours (two sweep
//! points on one node ran 13-30x slower per epoch than one alone), and the count changes
//! the numbers, so it comes from what the process was given and is recorded with its
//! source. In order: `--threads` (a run config's count), `RUNNER_THREADS`,
//! `OMP_NUM_THREADS`, Slurm's `SLURM_CPUS_PER_TASK`, the CPU affinity mask (which
//! `taskset` and cpuset cgroups set), then all cores.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where a thread count came from, as `run.toml` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThreadSource {
    #[serde(rename = "--threads")]
    Flag,
    #[serde(rename = "RUNNER_THREADS")]
    RunnerThreads,
    #[serde(rename = "OMP_NUM_THREADS")]
    OmpNumThreads,
    #[serde(rename = "SLURM_CPUS_PER_TASK")]
    Slurm,
    /// The affinity mask allows fewer CPUs than the machine has.
    #[serde(rename = "the affinity mask")]
    Affinity,
    #[serde(rename = "all cores")]
    AllCores,
    /// A local sweep's share: this process's count divided by `--jobs`.
    #[serde(rename = "sweep --jobs")]
    SweepShare,
    /// What the run being repeated (`rerun`, `resume`) recorded.
    #[serde(rename = "the recorded run")]
    Recorded,
}

impl std::fmt::Display for ThreadSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The serde names are the display names: one spelling everywhere.
        let v = toml::Value::try_from(self).map_err(|_| std::fmt::Error)?;
        f.write_str(v.as_str().unwrap_or_default())
    }
}

/// A thread count and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Threads {
    pub count: usize,
    pub from: ThreadSource,
}

impl std::fmt::Display for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} thread{} from {}", self.count, if self.count == 1 { "" } else { "s" }, self.from)
    }
}

/// The CPUs the affinity mask allows this process, if the kernel says.
fn affinity_cpus() -> Option<usize> {
    // SAFETY: `set` is a plain bit set the kernel fills; its size is passed with it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        Some(libc::CPU_COUNT(&set) as usize).filter(|&n| n > 0)
    }
}

/// The cores online, whatever the mask says.
fn all_cores() -> usize {
    // SAFETY: sysconf only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// The CPUs this process may run on: the affinity mask's, else all cores.
pub fn available() -> usize {
    affinity_cpus().unwrap_or_else(all_cores)
}

/// A count from an environment variable; an empty one counts as unset. `OMP_NUM_THREADS`
/// may list one count per nesting level (`4,2`): the first is the outer level's.
fn parse_count(var: &str, text: &str) -> Result<Option<usize>> {
    let first = text.split(',').next().unwrap_or("").trim();
    if first.is_empty() {
        return Ok(None);
    }
    match first.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => bail!("{var}=`{text}` is not a thread count (a whole number, at least 1)"),
    }
}

/// The count the environment gives, by the order above, from `var` (an environment
/// lookup), the affinity mask's CPUs and the machine's cores.
fn from_sources(var: impl Fn(&str) -> Option<String>, affinity: Option<usize>, cores: usize) -> Result<Threads> {
    for (name, from) in [
        ("RUNNER_THREADS", ThreadSource::RunnerThreads),
        ("OMP_NUM_THREADS", ThreadSource::OmpNumThreads),
        ("SLURM_CPUS_PER_TASK", ThreadSource::Slurm),
    ] {
        if let Some(count) = var(name).map(|t| parse_count(name, &t)).transpose()?.flatten() {
            return Ok(Threads { count, from });
        }
    }
    Ok(match affinity {
        Some(n) if n < cores => Threads { count: n, from: ThreadSource::Affinity },
        _ => Threads { count: cores, from: ThreadSource::AllCores },
    })
}

/// The count this process's environment gives (everything after `--threads`).
pub fn from_environment() -> Result<Threads> {
    from_sources(|v| std::env::var(v).ok(), affinity_cpus(), all_cores())
}

/// The count a run uses: the one its config asks for, else the environment's.
pub fn resolve(asked: Option<Threads>) -> Result<Threads> {
    match asked {
        Some(t) if t.count == 0 => bail!("a run needs at least 1 thread ({} gave 0)", t.from),
        Some(t) => Ok(t),
        None => from_environment(),
    }
}

/// Each of `jobs` side-by-side runs' share of `total` threads, at least 1.
pub fn share(total: Threads, jobs: usize) -> Threads {
    Threads { count: (total.count / jobs.max(1)).max(1), from: ThreadSource::SweepShare }
}

/// A warning when `t` asks for more threads than this process has CPUs (they will share
/// them, slower), or None.
pub fn oversubscribed(t: Threads) -> Option<String> {
    let cpus = available();
    (t.count > cpus).then(|| {
        let why = if t.from == ThreadSource::Recorded { ": kept, so that the numbers can match the recorded run's" } else { "" };
        format!("{t}, but this process has {cpus} CPU(s): the threads will share them, slower{why}")
    })
}

/// The count `apply` set for this process; 0 while none was.
static APPLIED: AtomicUsize = AtomicUsize::new(0);

/// Sizes libtorch's intra-op pool to `t`; the loaders' default workers follow it.
pub fn apply(t: Threads) {
    tch::set_num_threads(t.count as i32);
    APPLIED.store(t.count, Ordering::Relaxed);
}

/// `t` with the count libtorch's pool has, so that what a run prints is what took effect.
pub fn in_effect(t: Threads) -> Threads {
    Threads { count: tch::get_num_threads().max(0) as usize, ..t }
}

/// The threads this process computes with: what `apply` set, else what the environment
/// gives (a bad variable counts as unset here; a run refuses it before it starts).
pub fn count() -> usize {
    match APPLIED.load(Ordering::Relaxed) {
        0 => from_environment().map_or_else(|_| available(), |t| t.count),
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn each_source_wins_over_the_ones_after_it() {
        let all = [("RUNNER_THREADS", "3"), ("OMP_NUM_THREADS", "5,2"), ("SLURM_CPUS_PER_TASK", "7")];
        let t = |vars: &[(&str, &str)], aff| from_sources(env(vars), aff, 16).unwrap();
        assert_eq!(t(&all, Some(4)), Threads { count: 3, from: ThreadSource::RunnerThreads });
        assert_eq!(t(&all[1..], Some(4)), Threads { count: 5, from: ThreadSource::OmpNumThreads });
        assert_eq!(t(&all[2..], Some(4)), Threads { count: 7, from: ThreadSource::Slurm });
        assert_eq!(t(&[], Some(4)), Threads { count: 4, from: ThreadSource::Affinity });
        assert_eq!(t(&[], Some(16)), Threads { count: 16, from: ThreadSource::AllCores }, "a mask of every core is no restriction");
        assert_eq!(t(&[], None), Threads { count: 16, from: ThreadSource::AllCores });
        assert_eq!(t(&[("OMP_NUM_THREADS", "")], None).from, ThreadSource::AllCores, "empty is unset");
    }

    #[test]
    fn a_bad_count_is_refused_naming_the_variable() {
        for bad in ["two", "0", "-1", "1.5"] {
            let e = from_sources(env(&[("OMP_NUM_THREADS", bad)]), None, 2).unwrap_err().to_string();
            assert!(e.contains(&format!("OMP_NUM_THREADS=`{bad}`")) && e.contains("thread count"), "{e}");
        }
        assert!(resolve(Some(Threads { count: 0, from: ThreadSource::Flag })).is_err());
    }

    #[test]
    fn sweep_points_share_the_count_and_sources_read_as_recorded() {
        let two = Threads { count: 2, from: ThreadSource::Affinity };
        assert_eq!(share(two, 2), Threads { count: 1, from: ThreadSource::SweepShare });
        assert_eq!(share(two, 3).count, 1, "at least one each");
        assert_eq!(share(Threads { count: 16, from: ThreadSource::AllCores }, 3).count, 5);
        assert_eq!(ThreadSource::Slurm.to_string(), "SLURM_CPUS_PER_TASK");
        assert_eq!(two.to_string(), "2 threads from the affinity mask");
        let back: Threads = toml::from_str("count = 1\nfrom = \"sweep --jobs\"\n").unwrap();
        assert_eq!(back.from, ThreadSource::SweepShare);
        assert!(oversubscribed(Threads { count: available() + 1, from: ThreadSource::Recorded }).unwrap().contains("recorded run"));
        assert_eq!(oversubscribed(Threads { count: 1, from: ThreadSource::Flag }), None);
    }
}
