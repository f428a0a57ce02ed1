//! One process at a time per run folder (a run, rerun, resume or sweep task) and per sweep
//! (`sweep resubmit`): an exclusive `flock` on `.lock` in the folder, held as long as the
//! process holds the returned guard. The kernel drops it when the process ends, however it
//! ends (`kill -9`, a dead node's job requeued), so a stale lock never blocks a resume; it
//! works across the nodes of a cluster on NFS. The file says who holds it, for the error.
use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

pub const LOCK_FILE: &str = ".lock";

/// Held while it lives; dropping it (or the process ending) releases the folder.
#[derive(Debug)]
pub struct FolderLock {
    _file: std::fs::File,
}

/// Takes `dir`'s lock for `what` (`run <folder>`, `sweep <id> resubmit`), or fails with
/// "<what> is already running as pid N on HOST" when another process holds it.
pub fn lock(dir: &Path, what: &str) -> Result<FolderLock> {
    let path = dir.join(LOCK_FILE);
    // Not truncated on open: until the lock is ours the file says who holds it.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a file descriptor this function owns; it touches no memory.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(err).with_context(|| format!("cannot lock {}", path.display()));
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        match holder.split_whitespace().collect::<Vec<_>>()[..] {
            [pid, host, ..] => bail!("{what} is already running as pid {pid} on {host}"),
            _ => bail!("{what} is already running in another process (it holds {})", path.display()),
        }
    }
    let holder = format!("{} {}\n", std::process::id(), super::runs::host_name());
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(FolderLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_who_has_it_until_the_first_lets_go() {
        let d = tempfile::tempdir().unwrap();
        let held = lock(d.path(), "run x").unwrap();
        let e = lock(d.path(), "run x").unwrap_err().to_string();
        let host = super::super::runs::host_name();
        assert_eq!(e, format!("run x is already running as pid {} on {host}", std::process::id()));
        drop(held);
        let again = lock(d.path(), "run x").unwrap();
        drop(again);
    }
}
