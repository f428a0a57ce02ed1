//! Image discovery: recursive, sorted (so results never depend on the file system's
//! order), links followed once (`fs_walk`), and de-duplicated by relative path when several
//! roots overlap (Omniglot's two minimal background sets share their Greek and Latin folders
//! file for file).
use crate::fs_walk::Entry;
use anyhow::{bail, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// File extensions (lower-case) treated as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "pgm", "ppm", "pbm", "bmp", "webp", "gif", "tif", "tiff"];

pub fn is_image(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// What `get_image_files` found: the files, and how many were dropped as duplicates
/// of a file with the same path relative to an earlier root.
#[derive(Debug)]
pub struct Found {
    pub files: Vec<PathBuf>,
    pub duplicates: usize,
}

/// Every image under `roots` (hidden files and folders skipped), sorted within each root.
pub fn get_image_files(roots: &[PathBuf]) -> Result<Found> {
    if roots.is_empty() {
        bail!("get_image_files needs at least one folder");
    }
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    let mut duplicates = 0;
    for root in roots {
        if !root.is_dir() {
            if root.exists() {
                bail!("{} is not a folder", root.display());
            }
            bail!("image folder {} does not exist", root.display());
        }
        let mut found = Vec::new();
        walk(root, &mut found)?;
        if found.is_empty() {
            bail!("no image files ({}) under {}", IMAGE_EXTENSIONS.join(", "), root.display());
        }
        found.sort();
        for f in found {
            let rel = f.strip_prefix(root).unwrap_or(&f).to_path_buf();
            if seen.insert(rel) {
                files.push(f);
            } else {
                duplicates += 1;
            }
        }
    }
    Ok(Found { files, duplicates })
}

/// The images below `dir` (see `fs_walk`); a link that leads nowhere is kept when it is
/// named like an image, so that decoding it names it.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    crate::fs_walk::walk(dir, &mut |e| match e {
        Entry::File { path, .. } | Entry::BadLink { path, .. } if is_image(&path) => out.push(path),
        _ => {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datasets() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets")
    }

    #[test]
    fn finds_the_orl_faces_sorted() {
        let f = get_image_files(&[datasets().join("orl_faces")]).unwrap();
        assert_eq!(f.files.len(), 400);
        assert!(f.files.windows(2).all(|w| w[0] < w[1]));
        assert!(f.files.iter().all(|p| p.extension().unwrap() == "pgm"));
    }

    #[test]
    fn overlapping_roots_are_deduplicated() {
        let d = tempfile::tempdir().unwrap();
        for root in ["a", "b"] {
            for name in ["x/1.png", "y/2.png"] {
                let p = d.path().join(root).join(name);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, b"").unwrap();
            }
        }
        std::fs::write(d.path().join("b/y/3.png"), b"").unwrap();
        std::os::unix::fs::symlink(d.path().join("b"), d.path().join("b/y/loop")).unwrap();
        let f = get_image_files(&[d.path().join("a"), d.path().join("b")]).unwrap();
        assert_eq!(f.files.len(), 3);
        assert_eq!(f.duplicates, 2);
        assert!(f.files[2].ends_with("b/y/3.png"));
    }

    #[test]
    fn missing_and_empty_folders_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let e = get_image_files(&[d.path().join("nope")]).unwrap_err().to_string();
        assert!(e.contains("does not exist") && e.contains("nope"), "{e}");
        std::fs::write(d.path().join("notes.txt"), b"hi").unwrap();
        let e = get_image_files(&[d.path().to_path_buf()]).unwrap_err().to_string();
        assert!(e.contains("no image files"), "{e}");
    }
}
