//! Episodic loaders (learn2learn's `TaskDataset` behind a DataLoader): each batch is one
//! N-way K-shot episode, its `n_way * k_shot` support images first (class-major), then its
//! `n_way * n_query` queries (class-major); the batch's targets are the queries'
//! episode-local classes `0..n_way`. Training draws new episodes every epoch from
//! (seed, epoch); validation is a fixed seeded set. Rendering, augmentation and the cache
//! are the ordinary loader's: only which items make a batch, and its targets, change.
use super::blocks;
use super::episodes::{draw_episodes, Episode, EpisodeSpec, Part};
use super::loader::{DataLoaders, Item, LoaderConfig};
use super::table::Table;
use anyhow::{bail, Result};
use std::sync::Arc;

/// The shape of every episode, and how many make an epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeLayout {
    pub n_way: usize,
    pub k_shot: usize,
    pub n_query: usize,
    /// Training episodes per epoch.
    pub episodes: usize,
    /// Validation episodes (drawn once).
    pub valid_episodes: usize,
    /// Queries per class in validation episodes (`n_query` when None): a validation split
    /// with few items per class still gives episodes the model reads (queries are free).
    pub valid_query: Option<usize>,
    /// All of an episode's classes under one parent (see `EpisodeSpec::within_parent`).
    pub within_parent: bool,
}

impl EpisodeLayout {
    /// Images in one episode (the batch size).
    pub fn size(&self) -> usize {
        self.n_way * (self.k_shot + self.n_query)
    }

    pub fn n_support(&self) -> usize {
        self.n_way * self.k_shot
    }

    /// The targets of every episode: each query's class, class-major.
    pub fn targets(&self) -> Vec<i64> {
        (0..self.n_way as i64).flat_map(|c| std::iter::repeat_n(c, self.n_query)).collect()
    }

    /// The model's output classes: an episode's ways, not the data's classes.
    pub fn way_names(&self) -> Vec<String> {
        (0..self.n_way).map(|c| format!("way{c}")).collect()
    }

    /// The place, in the laid-out validation items, of query `i` of the targets.
    pub fn item_of_query(&self, i: usize) -> usize {
        let q = self.n_way * self.n_query;
        (i / q) * self.size() + self.n_support() + i % q
    }

    fn spec(&self, part: Part, n_episodes: usize, seed: u64) -> EpisodeSpec {
        EpisodeSpec { n_way: self.n_way, k_shot: self.k_shot, n_query: self.n_query, n_episodes, part, seed, within_parent: self.within_parent }
    }
}

/// What an episodic loader keeps: its layout and, for training, the class of each item
/// of its pool, to draw each epoch's episodes from.
pub(crate) struct EpisodeDraw {
    pub layout: EpisodeLayout,
    /// Training only (validation items are their fixed episodes, laid out).
    pub classes: Option<Vec<String>>,
    pub seed: u64,
}

impl EpisodeDraw {
    /// The items of `epoch`'s training episodes, laid out batch after batch.
    pub fn draw(&self, pool: &[Item], epoch: usize) -> Result<Vec<Item>> {
        let classes = self.classes.as_deref().unwrap_or_default();
        let spec = self.layout.spec(Part::Train, self.layout.episodes, self.seed);
        Ok(lay_out(pool, &draw_episodes(classes, &spec, &format!("episodes/train/epoch{epoch}"))?))
    }
}

/// Episodes as items: each episode's support then its queries.
fn lay_out(pool: &[Item], episodes: &[Episode]) -> Vec<Item> {
    episodes.iter().flat_map(|e| e.support.iter().chain(&e.query).map(|&i| pool[i])).collect()
}

/// Episodic loaders over a classification table (as `image_loaders` reads it): training
/// episodes from the rows of `valid_col` false, validation episodes from the others. The
/// batch size is the episode's size; `cfg.bs` and `cfg.val_bs` are not read.
pub fn episode_loaders(table: &Table, x: &str, y: &str, valid_col: &str, cfg: &LoaderConfig, layout: &EpisodeLayout) -> Result<DataLoaders> {
    if layout.episodes == 0 || layout.valid_episodes == 0 {
        bail!(
            "episode loaders need at least one episode per epoch and one validation episode, got {} and {}",
            layout.episodes,
            layout.valid_episodes
        );
    }
    let size = layout.size();
    let cfg = LoaderConfig { bs: size.max(1), val_bs: Some(size.max(1)), redraw: None, ..cfg.clone() };
    let class_of = |items: &[Item], vocab: &[String]| -> Vec<String> { items.iter().map(|it| vocab[it.y as usize].clone()).collect() };
    let mut dls = blocks::image_loaders(table, x, y, valid_col, &cfg)?;
    let train = EpisodeDraw { layout: layout.clone(), classes: Some(class_of(dls.train.pool(), &dls.vocab)), seed: cfg.seed };
    // A training split that cannot make an episode fails here, at the script's line, not at the first fit.
    train.draw(dls.train.pool(), 0)?;
    let valid_classes = class_of(dls.valid.pool(), &dls.vocab);
    let valid = EpisodeLayout { n_query: layout.valid_query.unwrap_or(layout.n_query), ..layout.clone() };
    let spec = valid.spec(Part::Valid, layout.valid_episodes, cfg.seed);
    let valid_items = lay_out(dls.valid.pool(), &draw_episodes(&valid_classes, &spec, "episodes/valid")?);
    dls.train.set_episodes(Arc::new(train), None);
    dls.valid.set_episodes(Arc::new(EpisodeDraw { layout: valid, classes: None, seed: cfg.seed }), Some(valid_items));
    dls.episodes = Some(layout.clone());
    Ok(dls)
}
