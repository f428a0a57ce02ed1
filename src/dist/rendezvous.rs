//! Ranks meet before any work: each posts in the store what it runs (world size, script
//! and params fingerprints, backend) and its host; rank 0 compares them all and posts a
//! verdict every rank waits for. A rank that disagrees, or never comes (a wrong
//! MASTER_ADDR), stops the whole group at start-up with the difference named, instead of a
//! hang or a fit of mismatched processes.
use super::group::{Backend, ProcessGroup};
use super::world::World;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What one rank posts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Post {
    host: String,
    pid: u32,
    /// What every rank must agree on, by name.
    facts: BTreeMap<String, String>,
    /// Rank 0's run folder, which the others write their logs into.
    #[serde(default)]
    run_dir: Option<PathBuf>,
}

/// A group every rank of which runs the same thing.
pub struct Joined {
    pub group: ProcessGroup,
    /// Each rank's host, by rank (rank 0 knows them all; the others only rank 0's and their own).
    pub hosts: Vec<String>,
    /// Rank 0's run folder.
    pub run_dir: PathBuf,
}

const VERDICT_OK: &str = "ok";

/// Joins `world`'s group from `host`: connects to its store, agrees on `facts` with every
/// other rank (rank 0 gives `run_dir`, its run's folder), then starts `backend`.
pub fn join(world: &World, backend: Backend, host: &str, facts: &[(&str, String)], run_dir: Option<&Path>) -> Result<Joined> {
    let mut group = ProcessGroup::connect(&world.master_addr, world.master_port, world.rank, world.size, world.serves_store(), world.timeout)?;
    let key = |what: &str| format!("runner/a{}/{what}", world.attempt);
    let post = Post {
        host: host.to_string(),
        pid: std::process::id(),
        facts: facts.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        run_dir: run_dir.map(Path::to_path_buf),
    };
    group.store_set(&key(&format!("rank/{}", world.rank)), &serde_json::to_vec(&post)?)?;
    let wait = world.timeout;
    let read = |rank: usize| -> Result<Post> {
        let v = group.store_get(&key(&format!("rank/{rank}")), wait).map_err(|e| {
            anyhow!(
                "rank {rank} did not join the group within {}s: is it running, with the same MASTER_ADDR:MASTER_PORT ({}:{})? ({e})",
                wait.as_secs(),
                world.master_addr,
                world.master_port
            )
        })?;
        serde_json::from_slice(&v).with_context(|| format!("rank {rank}'s entry in the store is not the runner's"))
    };
    let mut hosts = vec![String::new(); world.size];
    hosts[world.rank] = post.host.clone();
    let dir;
    // A rank tells rank 0 it has read what it needs, so that rank 0, which serves the
    // store, does not stop the group and take the store away before a rank read why.
    let seen = |rank: usize| key(&format!("seen/{rank}"));
    if world.rank == 0 {
        let mut came = Vec::new();
        let verdict = (1..world.size).try_for_each(|r| {
            let theirs = read(r)?;
            came.push(r);
            hosts[r] = theirs.host.clone();
            differs(&post, &theirs, r)
        });
        let text = match &verdict {
            Ok(()) => VERDICT_OK.to_string(),
            Err(e) => format!("{e:#}"),
        };
        group.store_set(&key("verdict"), text.as_bytes())?;
        if verdict.is_err() {
            for r in came {
                let _ = group.store_get(&seen(r), wait);
            }
        }
        verdict?;
        dir = run_dir.context("rank 0 joins with its run folder")?.to_path_buf();
    } else {
        let leader = read(0)?;
        hosts[0] = leader.host.clone();
        if let Err(e) = differs(&leader, &post, world.rank) {
            let _ = group.store_set(&seen(world.rank), b"1");
            return Err(e);
        }
        let verdict = group
            .store_get(&key("verdict"), wait)
            .map_err(|e| anyhow!("rank 0 gave no word within {}s on whether the group may start ({e})", wait.as_secs()))?;
        let _ = group.store_set(&seen(world.rank), b"1");
        let verdict = String::from_utf8_lossy(&verdict).into_owned();
        if verdict != VERDICT_OK {
            bail!("rank 0 stopped the group: {verdict}");
        }
        dir = leader.run_dir.context("rank 0 posted no run folder")?;
    }
    group.start_backend(backend, world.gloo_bind())?;
    Ok(Joined { group, hosts, run_dir: dir })
}

/// The first fact rank `r` sees differently from rank 0, named.
fn differs(leader: &Post, theirs: &Post, r: usize) -> Result<()> {
    for (name, mine) in &leader.facts {
        let other = theirs.facts.get(name).map(String::as_str).unwrap_or("(none)");
        if other != mine {
            bail!("rank {r} (pid {} on {}) and rank 0 disagree on {name}: {other} there, {mine} on rank 0", theirs.pid, theirs.host);
        }
    }
    Ok(())
}
