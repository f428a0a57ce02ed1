//! The 20 official Omniglot one-shot runs (Lake et al. 2015): in each, 20 support images
//! (`training/classNN.png`) and 20 queries (`test/itemNN.png`) whose correct support image
//! `class_labels.txt` names.
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub struct OneShotRun {
    pub name: String,
    pub support: Vec<PathBuf>,
    /// Query image and the index of its class in `support`.
    pub queries: Vec<(PathBuf, usize)>,
}

/// Reads every `runNN` folder of an extracted `all_runs.zip` (see `untar_data("omniglot_runs")`).
pub fn read_oneshot_runs(dir: &Path) -> Result<Vec<OneShotRun>> {
    if dir.is_file() {
        bail!("{} is a file: give the extracted folder (untar_data(\"omniglot_runs\"))", dir.display());
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read one-shot runs folder {}", dir.display()))?
        .flatten()
        .filter(|e| e.path().join("class_labels.txt").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("no one-shot runs (runNN/class_labels.txt) in {}", dir.display());
    }
    names.into_iter().map(|name| read_run(dir, name)).collect()
}

fn read_run(dir: &Path, name: String) -> Result<OneShotRun> {
    let run = dir.join(&name);
    let mut support: Vec<PathBuf> = std::fs::read_dir(run.join("training"))
        .with_context(|| format!("cannot read {}", run.join("training").display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| super::files::is_image(p))
        .collect();
    support.sort();
    let labels_file = run.join("class_labels.txt");
    let text = std::fs::read_to_string(&labels_file).with_context(|| format!("cannot read {}", labels_file.display()))?;
    let mut queries = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = || format!("{}:{}: expected `runNN/test/itemNN.png runNN/training/classNN.png`", labels_file.display(), n + 1);
        let (query, class) = line.trim().split_once(char::is_whitespace).with_context(bad)?;
        let (query, class) = (dir.join(query.trim()), dir.join(class.trim()));
        let idx = support.iter().position(|s| *s == class).with_context(|| format!("{}: {} is not a support image", bad(), class.display()))?;
        if !query.is_file() {
            bail!("{}: query image {} is missing", bad(), query.display());
        }
        queries.push((query, idx));
    }
    Ok(OneShotRun { name, support, queries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_official_runs() {
        let d = tempfile::tempdir().unwrap();
        let zip = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/omniglot/all_runs.zip");
        let dir = crate::data::archive::extract(&zip, &d.path().join("all_runs"), Default::default(), |_| Ok(())).unwrap();
        let runs = read_oneshot_runs(&dir).unwrap();
        assert_eq!(runs.len(), 20);
        assert!(runs.iter().all(|r| r.support.len() == 20 && r.queries.len() == 20));
        assert_eq!(runs[0].name, "run01");
        assert!(runs[0].queries[0].0.ends_with("run01/test/item01.png"));
        assert_eq!(runs[0].queries[0].1, 7, "item01 -> class08");
    }
}
