//! Train/validation splits as one flag per item. fastai's splitters (random, grandparent
//! folder, function, column) plus a group splitter that keeps every item of a group (a
//! person, an alphabet) on one side, for verification on identities never trained on.
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub is_valid: Vec<bool>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.is_valid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.is_valid.is_empty()
    }

    pub fn train(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| !self.is_valid[i]).collect()
    }

    pub fn valid(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.is_valid[i]).collect()
    }

    /// Errors unless the split covers exactly `n` items (a split built for other files).
    pub fn check_len(&self, n: usize, what: &str) -> Result<()> {
        if self.len() != n {
            bail!("the split has {} items but {what} has {n}: split the same files", self.len());
        }
        Ok(())
    }
}

fn check_pct(valid_pct: f64) -> Result<()> {
    if !(0.0..1.0).contains(&valid_pct) {
        bail!("valid_pct must be in [0, 1), got {valid_pct}");
    }
    Ok(())
}

/// fastai's `RandomSplitter`: shuffle the indices, the first `int(valid_pct * n)` are valid.
pub fn random_splitter(n: usize, valid_pct: f64, seed: u64) -> Result<Split> {
    check_pct(valid_pct)?;
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut crate::seed::rng(seed, "split"));
    let cut = (valid_pct * n as f64) as usize;
    let mut is_valid = vec![false; n];
    for &i in &idx[..cut] {
        is_valid[i] = true;
    }
    Ok(Split { is_valid })
}

/// fastai's `GrandparentSplitter` (`level` 2) or the same on the parent folder (`level` 1):
/// items under a folder named `valid_name` are valid, under `train_name` train. An item
/// under neither is an error (fastai silently drops it, which hides a wrong layout).
pub fn folder_splitter(files: &[PathBuf], level: usize, train_name: &str, valid_name: &str) -> Result<Split> {
    let folder = |f: &Path| f.ancestors().nth(level).and_then(|p| p.file_name()).map(|s| s.to_string_lossy().into_owned());
    let mut is_valid = Vec::with_capacity(files.len());
    let mut stray = Vec::new();
    for f in files {
        match folder(f).as_deref() {
            Some(n) if n == valid_name => is_valid.push(true),
            Some(n) if n == train_name => is_valid.push(false),
            _ => {
                stray.push(f.display().to_string());
                is_valid.push(false);
            }
        }
    }
    if !stray.is_empty() {
        let which = if level == 1 { "parent" } else { "grandparent" };
        bail!("{} of {} files have a {which} folder named neither `{train_name}` nor `{valid_name}`, e.g. {}", stray.len(), files.len(), stray[0]);
    }
    Ok(Split { is_valid })
}

/// Whole groups go to the validation set: the groups are shuffled and the first
/// `int(valid_pct * n_groups)` are valid, so no group is on both sides.
pub fn group_splitter(groups: &[String], valid_pct: f64, seed: u64) -> Result<Split> {
    check_pct(valid_pct)?;
    let mut names: Vec<&str> = groups.iter().map(String::as_str).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let cut = (valid_pct * names.len() as f64) as usize;
    if valid_pct > 0.0 && cut == 0 {
        bail!("valid_pct {valid_pct} of {} groups puts no group in the validation set", names.len());
    }
    names.shuffle(&mut crate::seed::rng(seed, "group_split"));
    let valid: BTreeMap<&str, bool> = names.iter().enumerate().map(|(i, n)| (*n, i < cut)).collect();
    Ok(Split { is_valid: groups.iter().map(|g| valid[g.as_str()]).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_split_is_seeded_and_sized_like_fastai() {
        let a = random_splitter(370, 0.2, 42).unwrap();
        assert_eq!(a.valid().len(), 74);
        assert_eq!(a, random_splitter(370, 0.2, 42).unwrap());
        assert_ne!(a, random_splitter(370, 0.2, 43).unwrap());
        assert!(random_splitter(10, 1.0, 1).is_err());
    }

    #[test]
    fn groups_never_straddle_the_split() {
        let groups: Vec<String> = (0..400).map(|i| format!("s{}", i / 10)).collect();
        let s = group_splitter(&groups, 0.2, 42).unwrap();
        assert_eq!(s.valid().len(), 80);
        for g in groups.chunks(10).zip(s.is_valid.chunks(10)) {
            assert!(g.1.iter().all(|&v| v == g.1[0]));
        }
        assert!(group_splitter(&groups, 0.01, 42).unwrap_err().to_string().contains("no group"));
    }

    #[test]
    fn folder_split_names_strays() {
        let files: Vec<PathBuf> = ["d/train/cat/1.jpg", "d/valid/dog/2.jpg", "d/test/dog/3.jpg"].iter().map(PathBuf::from).collect();
        let e = folder_splitter(&files, 2, "train", "valid").unwrap_err().to_string();
        assert!(e.contains("1 of 3") && e.contains("test/dog/3.jpg"), "{e}");
        let s = folder_splitter(&files[..2], 2, "train", "valid").unwrap();
        assert_eq!(s.is_valid, vec![false, true]);
    }
}
