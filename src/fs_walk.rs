//! The one walk over a folder tree that every listing of data uses (`get_image_files`, the
//! data fingerprint in run records): hidden entries skipped, entries sorted (so the result
//! never depends on the file system's order), links to folders followed but each real
//! folder visited once (a link loop ends there), and a link that leads nowhere (dangling,
//! or a loop of links) handed to the caller by name instead of failing the whole walk.
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What the walk found: a file (anything not a folder) or a link that cannot be followed.
pub enum Entry {
    File { path: PathBuf, len: u64 },
    BadLink { path: PathBuf, why: std::io::Error },
}

/// Calls `visit` for every entry below `root`, in sorted order within each folder.
pub fn walk(root: &Path, visit: &mut dyn FnMut(Entry)) -> Result<()> {
    walk_dir(root, visit, &mut BTreeSet::new())
}

fn walk_dir(dir: &Path, visit: &mut dyn FnMut(Entry), visited: &mut BTreeSet<PathBuf>) -> Result<()> {
    let real = dir.canonicalize().with_context(|| format!("cannot open {}", dir.display()))?;
    if !visited.insert(real) {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).and_then(|rd| rd.map(|e| e.map(|e| e.path())).collect()).with_context(|| format!("cannot list {}", dir.display()))?;
    // Sorted, so that which path reaches a linked folder first never depends on the file system.
    entries.sort();
    for path in entries {
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk_dir(&path, visit, visited)?,
            Ok(meta) => visit(Entry::File { path, len: meta.len() }),
            Err(why) => visit(Entry::BadLink { path, why }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_followed_once_and_bad_ones_named() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/1.png"), b"xy").unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("a/b/up")).unwrap(); // a loop through a folder
        std::os::unix::fs::symlink(root.join("nowhere"), root.join("a/dangling.png")).unwrap();
        std::os::unix::fs::symlink(root.join("a/self.png"), root.join("a/self.png")).unwrap(); // a loop of links
        let (mut files, mut bad) = (Vec::new(), Vec::new());
        walk(root, &mut |e| match e {
            Entry::File { path, len } => files.push((path.strip_prefix(root).unwrap().display().to_string(), len)),
            Entry::BadLink { path, .. } => bad.push(path.strip_prefix(root).unwrap().display().to_string()),
        })
        .unwrap();
        assert_eq!(files, [("a/b/1.png".to_string(), 2)]);
        assert_eq!(bad, ["a/dangling.png", "a/self.png"]);
    }
}
