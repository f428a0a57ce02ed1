//! Which data a run used: each data set `untar_data` resolved, with its folder, the number
//! of files and a fingerprint of the file list (relative names and sizes), so that
//! `compare` can say when two runs trained on different data without hashing gigabytes.
use crate::fs_walk::Entry;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataUse {
    /// The name given to `untar_data` (`pets`) or the archive's stem for a URL.
    pub name: String,
    pub folder: String,
    /// `full`, `sample` (a sample folder found in place of the full set) or `bundled sample`.
    pub source: String,
    pub files: u64,
    /// sha256 over the sorted `name<TAB>size` lines of every file below `folder`.
    pub fingerprint: String,
}

impl DataUse {
    /// Lists `folder` (recursively, hidden files skipped, links followed once) and
    /// fingerprints the list.
    pub fn scan(name: &str, folder: &Path, source: &str) -> Result<DataUse> {
        let mut entries: Vec<(String, u64)> = Vec::new();
        walk(folder, &mut entries).with_context(|| format!("cannot list {}", folder.display()))?;
        entries.sort();
        let mut h = Sha256::new();
        for (rel, size) in &entries {
            h.update(format!("{rel}\t{size}\n").as_bytes());
        }
        Ok(DataUse {
            name: name.to_string(),
            folder: folder.display().to_string(),
            source: source.to_string(),
            files: entries.len() as u64,
            fingerprint: hex::encode(h.finalize()),
        })
    }

    /// `pets: 7390 files, 3f2a9c01` for tables (`pets (bundled sample): ...` for a sample).
    pub fn short(&self) -> String {
        let what = if self.source == "full" { self.name.clone() } else { format!("{} ({})", self.name, self.source) };
        format!("{what}: {} files, {}", self.files, &self.fingerprint[..8.min(self.fingerprint.len())])
    }
}

/// Every file below `root` as (relative name, size), links followed as `get_image_files`
/// follows them; a link that leads nowhere is left out with a warning naming it.
fn walk(root: &Path, out: &mut Vec<(String, u64)>) -> Result<()> {
    crate::fs_walk::walk(root, &mut |e| match e {
        Entry::File { path, len } => out.push((path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned(), len)),
        Entry::BadLink { path, why } => {
            tracing::warn!("data fingerprint of {}: left out {}, a link that leads nowhere ({why})", root.display(), path.display())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_follows_names_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        std::fs::write(dir.path().join("images/a.jpg"), b"abc").unwrap();
        std::fs::write(dir.path().join("images/b.jpg"), b"de").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        let a = DataUse::scan("pets", dir.path(), "full").unwrap();
        assert_eq!(a.files, 2);
        let same = DataUse::scan("pets", dir.path(), "full").unwrap();
        assert_eq!(a.fingerprint, same.fingerprint);
        std::fs::write(dir.path().join("images/b.jpg"), b"def").unwrap();
        let grown = DataUse::scan("pets", dir.path(), "full").unwrap();
        assert_ne!(a.fingerprint, grown.fingerprint, "a changed size changes the fingerprint");
        assert!(grown.short().starts_with("pets: 2 files, "));
    }

    #[test]
    fn link_loops_and_dangling_links_do_not_fail_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        std::fs::write(dir.path().join("images/a.jpg"), b"abc").unwrap();
        let plain = DataUse::scan("x", dir.path(), "full").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("images/loop")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone.jpg"), dir.path().join("images/dangling.jpg")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("images/me"), dir.path().join("images/me")).unwrap();
        let linked = DataUse::scan("x", dir.path(), "full").unwrap();
        assert_eq!((linked.files, &linked.fingerprint), (1, &plain.fingerprint), "the loop is walked once, the bad links left out");
    }
}
