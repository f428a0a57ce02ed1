//! Labels from a file's path: a regex on the file name (fastai's `RegexLabeller` applied
//! to `name`) or the parent folder(s). Closures are applied by the script layer, which
//! owns the engine, and get the whole path as fastai's label functions do; `file_name` and
//! `parent_name` take it apart. Every labeller ends in `label_all`, which reports all
//! failures at once.
use anyhow::{bail, Context, Result};
use regex::Regex;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub enum Labeller {
    /// The first capture group (or the whole match) of a regex on the file name.
    Regex(Regex),
    /// The last `n` parent folder names joined with `/` (1 = the parent folder).
    Parent(usize),
}

impl Labeller {
    pub fn regex(pattern: &str) -> Result<Labeller> {
        Regex::new(pattern).map(Labeller::Regex).with_context(|| format!("invalid regex `{pattern}`"))
    }

    pub fn parent(levels: usize) -> Result<Labeller> {
        if levels == 0 {
            bail!("parent_label levels must be at least 1");
        }
        Ok(Labeller::Parent(levels))
    }

    pub fn label(&self, path: &Path) -> Result<String> {
        match self {
            Labeller::Regex(re) => {
                let name = file_name(path);
                let caps = re.captures(&name).with_context(|| format!("regex `{re}` does not match file name `{name}`"))?;
                Ok(caps.get(1).or_else(|| caps.get(0)).map(|m| m.as_str().to_string()).unwrap_or_default())
            }
            Labeller::Parent(n) => {
                let parts: Vec<String> =
                    path.ancestors().skip(1).take(*n).filter_map(|p| p.file_name().map(|s| s.to_string_lossy().into_owned())).collect();
                if parts.len() < *n {
                    bail!("{} has fewer than {n} parent folders", path.display());
                }
                Ok(parts.into_iter().rev().collect::<Vec<_>>().join("/"))
            }
        }
    }
}

/// The last part of a path (fastai's `Path.name`): `/d/images/pug_12.jpg` gives `pug_12.jpg`.
pub fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The name of the folder holding a path (fastai's `Path.parent.name`): `s7` for `/d/s7/3.pgm`.
pub fn parent_name(path: &Path) -> String {
    path.parent().map(file_name).unwrap_or_default()
}

/// Labels every file; when some fail, one error says how many and shows a few, so a regex
/// that matches nothing reads differently from one that misses a handful.
pub fn label_all(files: &[PathBuf], mut label: impl FnMut(&Path) -> Result<String>) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(files.len());
    let mut failed: Vec<(PathBuf, anyhow::Error)> = Vec::new();
    for f in files {
        match label(f) {
            Ok(l) => out.push(l),
            Err(e) => failed.push((f.clone(), e)),
        }
    }
    if failed.is_empty() {
        return Ok(out);
    }
    let examples: Vec<String> = failed.iter().take(3).map(|(_, e)| format!("{e:#}")).collect();
    if failed.len() == files.len() {
        bail!("labelling failed for all {} files: {}", files.len(), examples.join("; "));
    }
    bail!("labelling failed for {} of {} files, e.g. {}", failed.len(), files.len(), examples.join("; "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_and_parent_labels() {
        let re = Labeller::regex(r"^(.*)_\d+\.jpg$").unwrap();
        assert_eq!(re.label(Path::new("/x/images/great_pyrenees_12.jpg")).unwrap(), "great_pyrenees");
        let p = Labeller::parent(1).unwrap();
        assert_eq!(p.label(Path::new("/d/orl_faces/s7/3.pgm")).unwrap(), "s7");
        let p2 = Labeller::parent(2).unwrap();
        assert_eq!(p2.label(Path::new("/d/Greek/character03/x.png")).unwrap(), "Greek/character03");
    }

    #[test]
    fn file_and_parent_names() {
        assert_eq!(file_name(Path::new("/x/images/great_pyrenees_12.jpg")), "great_pyrenees_12.jpg");
        assert_eq!(parent_name(Path::new("/d/orl_faces/s7/3.pgm")), "s7");
        assert_eq!((file_name(Path::new("/")), parent_name(Path::new("a.jpg"))), (String::new(), String::new()));
    }

    #[test]
    fn regex_that_matches_nothing_says_so() {
        let re = Labeller::regex(r"^(\d+)\.png$").unwrap();
        let files: Vec<PathBuf> = ["a_1.jpg", "b_2.jpg"].iter().map(PathBuf::from).collect();
        let e = label_all(&files, |f| re.label(f)).unwrap_err().to_string();
        assert!(e.contains("all 2 files") && e.contains("a_1.jpg"), "{e}");
        let files: Vec<PathBuf> = ["1.png", "b_2.jpg"].iter().map(PathBuf::from).collect();
        let e = label_all(&files, |f| re.label(f)).unwrap_err().to_string();
        assert!(e.contains("1 of 2 files") && e.contains("b_2.jpg"), "{e}");
        assert!(Labeller::regex("(").unwrap_err().to_string().contains("invalid regex"));
    }
}
