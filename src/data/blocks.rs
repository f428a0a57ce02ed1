//! From a table to loaders: fastai's DataBlock step. A classification table has a file
//! column, a label column and `is_valid`; a pairs table (as `siamese_pairs` makes it) has
//! `file1`, `file2`, a true/false `label` and `is_valid`.
use super::loader::{DataLoaders, Item, ItemSet, LoaderConfig};
use super::splitters::Split;
use super::table::{Column, Table};
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::path::PathBuf;

/// fastai's classification table: one row per file with its label and split.
pub fn image_table(files: &[PathBuf], labels: Vec<String>, split: &Split) -> Result<Table> {
    split.check_len(files.len(), "the file list")?;
    if labels.len() != files.len() {
        bail!("{} labels for {} files", labels.len(), files.len());
    }
    Table::new(vec![
        ("file".into(), Column::Str(files.iter().map(|f| f.display().to_string()).collect())),
        ("label".into(), Column::Str(labels)),
        ("is_valid".into(), Column::Bool(split.is_valid.clone())),
    ])
}

/// Interns file paths so that an image used by many rows is decoded (and cached) once.
#[derive(Default)]
struct Paths {
    ids: HashMap<String, usize>,
    paths: Vec<PathBuf>,
}

impl Paths {
    fn id(&mut self, p: &str) -> usize {
        *self.ids.entry(p.to_string()).or_insert_with(|| {
            self.paths.push(PathBuf::from(p));
            self.paths.len() - 1
        })
    }
}

fn split_items(items: Vec<Item>, is_valid: &[bool]) -> (Vec<Item>, Vec<Item>) {
    let (v, t): (Vec<_>, Vec<_>) = items.into_iter().zip(is_valid).partition(|(_, &v)| v);
    (t.into_iter().map(|p| p.0).collect(), v.into_iter().map(|p| p.0).collect())
}

fn nonempty(table: &Table) -> Result<()> {
    if table.is_empty() {
        bail!("the table has no rows");
    }
    Ok(())
}

/// Plain images with a class each; the vocabulary is the sorted distinct labels. A
/// `turns` column (as `quarter_turns` adds) rotates each row's image.
pub fn image_loaders(table: &Table, x: &str, y: &str, valid_col: &str, cfg: &LoaderConfig) -> Result<DataLoaders> {
    nonempty(table)?;
    let turns: Vec<u8> = match table.column("turns") {
        Ok(Column::Int(t)) => t.iter().map(|&t| t.rem_euclid(4) as u8).collect(),
        Ok(other) => bail!("column `turns` must hold integers (quarter turns), it holds {}", other.type_name()),
        Err(_) => vec![0; table.len()],
    };
    let files = table.strs(x)?;
    let labels = table.column(y)?;
    let is_valid = table.bools(valid_col)?;
    let names: Vec<String> = (0..table.len()).map(|i| labels.get(i).to_string()).collect();
    let mut vocab = names.clone();
    match labels {
        // Integer classes in numeric order (2 before 10), as fastai's CategoryMap sorts them.
        Column::Int(_) => vocab.sort_by_key(|v| v.parse::<i64>().unwrap_or(i64::MAX)),
        _ => vocab.sort(),
    }
    vocab.dedup();
    let index: HashMap<&str, i64> = vocab.iter().enumerate().map(|(i, v)| (v.as_str(), i as i64)).collect();
    let mut paths = Paths::default();
    let items: Vec<Item> = files
        .iter()
        .zip(&names)
        .zip(&turns)
        .map(|((f, n), &turns)| {
            let id = paths.id(f);
            Item { ids: [id, id], y: index[n.as_str()], turns }
        })
        .collect();
    let (train, valid) = split_items(items, is_valid);
    DataLoaders::build(ItemSet { paths: paths.paths, train, valid, vocab, n_inputs: 1, train_classes: None }, cfg)
}

/// Pairs of images labelled same (1) or different (0).
pub fn pair_loaders(table: &Table, cfg: &LoaderConfig) -> Result<DataLoaders> {
    nonempty(table)?;
    let (f1, f2) = (table.strs("file1")?, table.strs("file2")?);
    let same = table.bools("label")?;
    let is_valid = table.bools("is_valid")?;
    let mut paths = Paths::default();
    let items: Vec<Item> = (0..table.len()).map(|i| Item { ids: [paths.id(&f1[i]), paths.id(&f2[i])], y: same[i] as i64, turns: 0 }).collect();
    let train_classes = match cfg.redraw {
        Some(_) => {
            let c1 = table.strs("class1")?;
            Some((0..table.len()).filter(|&i| !is_valid[i]).map(|i| c1[i].clone()).collect())
        }
        None => None,
    };
    let (train, valid) = split_items(items, is_valid);
    let vocab = vec!["different".to_string(), "same".to_string()];
    DataLoaders::build(ItemSet { paths: paths.paths, train, valid, vocab, n_inputs: 2, train_classes }, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_classes_sort_numerically_and_map_to_their_index() {
        let face = |i: usize| format!("{}/../shared/datasets/orl_faces/s1/{}.pgm", env!("CARGO_MANIFEST_DIR"), i + 1);
        let t = Table::new(vec![
            ("file".into(), Column::Str((0..6).map(face).collect())),
            ("label".into(), Column::Int(vec![10, 2, 10, 2, 10, 2])),
            ("is_valid".into(), Column::Bool(vec![false, false, false, false, true, true])),
        ])
        .unwrap();
        let cfg = LoaderConfig { size: 8, bs: 2, channels: 1, num_workers: 1, ..LoaderConfig::default() };
        let dls = image_loaders(&t, "file", "label", "is_valid", &cfg).unwrap();
        assert_eq!(dls.vocab, ["2", "10"]);
        let ys: Vec<i64> = dls.valid.iter(0).unwrap().flat_map(|b| Vec::<i64>::try_from(&b.unwrap().y).unwrap()).collect();
        assert_eq!(ys, [1, 0]);
    }
}
