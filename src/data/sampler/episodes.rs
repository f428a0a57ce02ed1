//! N-way K-shot episodes as batches (learn2learn's `TaskDataset` behind a DataLoader): each
//! batch is one episode, its `n_way * k_shot` support images first (class-major), then its
//! `n_way * n_query` queries (class-major); its targets are the queries' episode-local
//! classes `0..n_way`. Training draws new episodes every epoch from (seed, epoch); validation
//! is a fixed seeded set.
use super::{BatchPlan, Drawn, Sampler};
use crate::data::episodes::{draw_episodes, Episode, EpisodeSpec, Part};
use crate::data::item::Item;
use anyhow::Result;

crate::options! {
    /// The shape of every episode, and how many make an epoch.
    #[derive(Clone, Debug, PartialEq)]
    pub struct EpisodeLayout {
        /// classes per episode
        opt n_way: usize = 5,
        /// support images per class
        opt k_shot: usize = 1,
        /// query images per class
        opt n_query: usize = 5,
        /// training episodes per epoch (drawn afresh each epoch)
        opt episodes: usize = 100,
        /// validation episodes (drawn once)
        opt valid_episodes: usize = 100,
        // A validation split with few items per class still gives episodes the model reads.
        /// query images per class in validation episodes
        opt valid_query: Option<usize> = None => "n_query",
        /// draw all of an episode's classes from one parent (see episodes)
        opt within_parent: bool = false,
    }
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

    /// The validation episodes' layout (`valid_query` queries per class).
    pub fn valid(&self) -> EpisodeLayout {
        EpisodeLayout { n_query: self.valid_query.unwrap_or(self.n_query), ..self.clone() }
    }

    fn spec(&self, part: Part, n_episodes: usize, seed: u64) -> EpisodeSpec {
        EpisodeSpec { n_way: self.n_way, k_shot: self.k_shot, n_query: self.n_query, n_episodes, part, seed, within_parent: self.within_parent }
    }

    /// Episodes of `pool` as batches: each episode's support then its queries, keyed by
    /// their place in the epoch's laid-out items.
    fn plans(&self, pool: &[Item], episodes: &[Episode]) -> Vec<BatchPlan> {
        let mut key = 0;
        episodes
            .iter()
            .map(|e| {
                let items = e
                    .support
                    .iter()
                    .chain(&e.query)
                    .map(|&i| {
                        key += 1;
                        Drawn { key: key - 1, item: pool[i] }
                    })
                    .collect();
                BatchPlan { items, targets: self.targets(), first_target: self.n_support() }
            })
            .collect()
    }
}

/// Training episodes, drawn anew each epoch from the pool's classes.
pub struct EpisodeSampler {
    layout: EpisodeLayout,
    pool: Vec<Item>,
    /// The class of each item of the pool.
    classes: Vec<String>,
    seed: u64,
}

impl EpisodeSampler {
    /// Fails, naming what is missing, when the pool cannot make an episode (so a script
    /// learns it at the loaders' line, not at the first fit).
    pub fn new(layout: &EpisodeLayout, pool: Vec<Item>, classes: Vec<String>, seed: u64) -> Result<EpisodeSampler> {
        let s = EpisodeSampler { layout: layout.clone(), pool, classes, seed };
        s.plan(0)?;
        Ok(s)
    }
}

impl Sampler for EpisodeSampler {
    fn n_batches(&self) -> usize {
        self.layout.episodes
    }
    fn n_items(&self) -> usize {
        self.pool.len()
    }
    fn batch_size(&self) -> usize {
        self.layout.size()
    }
    fn plan(&self, epoch: usize) -> Result<Vec<BatchPlan>> {
        let spec = self.layout.spec(Part::Train, self.layout.episodes, self.seed);
        Ok(self.layout.plans(&self.pool, &draw_episodes(&self.classes, &spec, &format!("episodes/train/epoch{epoch}"))?))
    }
}

/// Validation episodes: drawn once from the seed, the same every epoch.
pub struct FixedEpisodes {
    layout: EpisodeLayout,
    plans: Vec<BatchPlan>,
}

impl FixedEpisodes {
    /// `layout.valid_episodes` episodes of `layout.valid()`'s shape over `pool`.
    pub fn new(layout: &EpisodeLayout, pool: &[Item], classes: &[String], seed: u64) -> Result<FixedEpisodes> {
        let valid = layout.valid();
        let spec = valid.spec(Part::Valid, layout.valid_episodes, seed);
        let plans = valid.plans(pool, &draw_episodes(classes, &spec, "episodes/valid")?);
        Ok(FixedEpisodes { layout: valid, plans })
    }
}

impl Sampler for FixedEpisodes {
    fn n_batches(&self) -> usize {
        self.plans.len()
    }
    fn n_items(&self) -> usize {
        self.plans.iter().map(|p| p.items.len()).sum()
    }
    fn batch_size(&self) -> usize {
        self.layout.size()
    }
    fn plan(&self, _epoch: usize) -> Result<Vec<BatchPlan>> {
        Ok(self.plans.clone())
    }
}
