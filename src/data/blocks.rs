//! From a table to loaders: fastai's DataBlock step. A classification table has a file
//! column, a label column and `is_valid`; a pairs table (as `siamese_pairs` makes it) has
//! `file1`, `file2`, a true/false `label` and `is_valid`. Each kind of loaders is its items
//! plus the samplers that batch them.
use super::dataloaders::{DataLoaders, ItemSet, LoaderConfig, Samplers};
use super::item::Item;
use super::sampler::{EpisodeLayout, EpisodeSampler, FixedEpisodes, PairRedraw, SequentialSampler};
use super::splitters::Split;
use super::table::{Column, Table};
use super::targets::{Labelled, TargetBlock, TargetKind, Targets};
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// fastai's classification table: one row per file with its label and split. Labels
/// are text, or numbers (a float column regresses, see `targets`).
pub fn image_table(files: &[PathBuf], labels: Column, split: &Split) -> Result<Table> {
    split.check_len(files.len(), "the file list")?;
    if labels.len() != files.len() {
        bail!("{} labels for {} files", labels.len(), files.len());
    }
    Table::new(vec![
        ("file".into(), Column::Str(files.iter().map(|f| f.display().to_string()).collect())),
        ("label".into(), labels),
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

/// Which columns of a table hold what: the image files, the label column(s) (several:
/// numbers to regress, one output each), the validation flag, and how labels read.
#[derive(Clone, Debug)]
pub struct TableColumns {
    pub x: String,
    pub y: Vec<String>,
    pub valid_col: String,
    pub block: TargetBlock,
}

impl Default for TableColumns {
    fn default() -> Self {
        TableColumns { x: "file".into(), y: vec!["label".into()], valid_col: "is_valid".into(), block: TargetBlock::Auto }
    }
}

/// Plain images with their targets (see `targets`: classes, the vocabulary sorted; numbers;
/// label sets). A `turns` column (as `quarter_turns` adds) rotates each row's image.
pub fn image_loaders(table: &Table, cols: &TableColumns, cfg: &LoaderConfig) -> Result<DataLoaders> {
    if cfg.redraw.is_some() {
        bail!("redraw needs the pairs' classes (columns class1 and class2, as siamese_pairs makes them)");
    }
    DataLoaders::build(image_items(table, cols)?, cfg, |kept| Ok(Samplers::shuffled(kept, cfg)))
}

/// The items of a labelled table, split by its validation column.
fn image_items(table: &Table, cols: &TableColumns) -> Result<ItemSet> {
    nonempty(table)?;
    let turns: Vec<u8> = match table.column("turns") {
        Ok(Column::Int(t)) => t.iter().map(|&t| t.rem_euclid(4) as u8).collect(),
        Ok(other) => bail!("column `turns` must hold integers (quarter turns), it holds {}", other.type_name()),
        Err(_) => vec![0; table.len()],
    };
    let files = table.strs(&cols.x)?;
    let labels = cols.y.iter().map(|y| table.column(y)).collect::<Result<Vec<_>>>()?;
    let is_valid = table.bools(&cols.valid_col)?;
    let Labelled { targets, vocab, ys } = Targets::from_columns(&cols.y, &labels, &cols.block)?;
    let mut paths = Paths::default();
    let items: Vec<Item> = files
        .iter()
        .zip(&ys)
        .zip(&turns)
        .map(|((f, &y), &turns)| {
            let id = paths.id(f);
            Item { ids: [id, id], y, turns }
        })
        .collect();
    let (train, valid) = split_items(items, &is_valid);
    Ok(ItemSet { paths: paths.paths, train, valid, vocab, targets, n_inputs: 1 })
}

/// Pairs of images labelled same (1) or different (0); with `cfg.redraw`, the training
/// pairs are drawn anew every epoch after the first.
pub fn pair_loaders(table: &Table, cfg: &LoaderConfig) -> Result<DataLoaders> {
    nonempty(table)?;
    let (f1, f2) = (table.strs("file1")?, table.strs("file2")?);
    let same = table.bools("label")?;
    let is_valid = table.bools("is_valid")?;
    let mut paths = Paths::default();
    let items: Vec<Item> = (0..table.len()).map(|i| Item { ids: [paths.id(&f1[i]), paths.id(&f2[i])], y: same[i] as i64, turns: 0 }).collect();
    let anchor_classes: Option<Vec<String>> = match cfg.redraw {
        Some(_) => {
            let c1 = table.strs("class1")?;
            Some((0..table.len()).filter(|&i| !is_valid[i]).map(|i| c1[i].clone()).collect())
        }
        None => None,
    };
    let (train, valid) = split_items(items, &is_valid);
    let vocab = vec!["different".to_string(), "same".to_string()];
    let set = ItemSet { paths: paths.paths, train, valid, vocab, targets: Targets::classes(2), n_inputs: 2 };
    DataLoaders::build(set, cfg, |kept| {
        Ok(match (cfg.redraw, anchor_classes) {
            (Some(p), Some(classes)) => {
                let classes: Vec<String> = kept.train_rows.iter().map(|&r| classes[r].clone()).collect();
                Samplers {
                    train: Arc::new(PairRedraw::new(kept.train, &classes, p, cfg.bs, cfg.seed)),
                    valid: Arc::new(SequentialSampler::new(kept.valid, cfg.val_bs.unwrap_or(cfg.bs))),
                }
            }
            _ => Samplers::shuffled(kept, cfg),
        })
    })
}

/// Episodic loaders over a classification table (as `image_loaders` reads it): training
/// episodes from the rows of `valid_col` false, validation episodes from the others. The
/// batch size is the episode's size; `cfg.bs` and `cfg.val_bs` are not read.
pub fn episode_loaders(table: &Table, cols: &TableColumns, cfg: &LoaderConfig, layout: &EpisodeLayout) -> Result<DataLoaders> {
    if layout.episodes == 0 || layout.valid_episodes == 0 {
        bail!(
            "episode loaders need at least one episode per epoch and one validation episode, got {} and {}",
            layout.episodes,
            layout.valid_episodes
        );
    }
    let size = layout.size().max(1);
    let cfg = LoaderConfig { bs: size, val_bs: Some(size), redraw: None, ..cfg.clone() };
    let set = image_items(table, cols)?;
    if set.targets.kind != TargetKind::Classes {
        bail!("episode loaders need one class per item, not {}", set.targets.kind);
    }
    let vocab = set.vocab.clone();
    let class_of = |items: &[Item]| -> Vec<String> { items.iter().map(|it| vocab[it.y as usize].clone()).collect() };
    let mut dls = DataLoaders::build(set, &cfg, |kept| {
        let train_classes = class_of(&kept.train);
        let train = EpisodeSampler::new(layout, kept.train, train_classes, cfg.seed)?;
        let valid = FixedEpisodes::new(layout, &kept.valid, &class_of(&kept.valid), cfg.seed)?;
        Ok(Samplers { train: Arc::new(train), valid: Arc::new(valid) })
    })?;
    dls.episodes = Some(layout.clone());
    Ok(dls)
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
        let dls = image_loaders(&t, &TableColumns::default(), &cfg).unwrap();
        assert_eq!(dls.vocab, ["2", "10"]);
        let ys: Vec<i64> = dls.valid.iter(0).unwrap().flat_map(|b| Vec::<i64>::try_from(&b.unwrap().y).unwrap()).collect();
        assert_eq!(ys, [1, 0]);
    }
}
