//! Samplers decide which items make each batch of an epoch (PyTorch's `Sampler`, fastai's
//! `get_idxs`); the loader only renders what they plan. A plan is a function of (seed,
//! epoch) alone, so every process of a data-parallel run draws the same one. A new way of
//! batching (pairs redrawn, episodes, a shard of a distributed run) is one new file here.
mod episodes;
mod pair_redraw;
mod random;
mod sequential;
mod shard;

pub use episodes::{EpisodeLayout, EpisodeSampler, FixedEpisodes};
pub use pair_redraw::PairRedraw;
pub use random::RandomSampler;
pub use sequential::SequentialSampler;
pub use shard::{unshard, ShardSampler};

use super::item::Item;
use anyhow::Result;

/// An item of a planned batch and the key its random draws (crop, augmentation) are
/// seeded by: its place in the epoch's item list, whatever the batch order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drawn {
    pub key: usize,
    pub item: Item,
}

/// The items of one batch and its targets: `targets[j]` belongs to
/// `items[first_target + j]` (an episode's queries follow its support images, which have
/// no target; other batches target every item's class).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchPlan {
    pub items: Vec<Drawn>,
    pub targets: Vec<i64>,
    pub first_target: usize,
}

impl BatchPlan {
    /// A batch whose targets are its items' own classes.
    pub fn of(items: Vec<Drawn>) -> BatchPlan {
        let targets = items.iter().map(|d| d.item.y).collect();
        BatchPlan { items, targets, first_target: 0 }
    }

    /// The items the targets belong to, in target order.
    pub fn targeted(&self) -> &[Drawn] {
        &self.items[self.first_target..]
    }
}

/// Which items make each batch of an epoch.
pub trait Sampler: Send + Sync {
    /// Batches in one epoch.
    fn n_batches(&self) -> usize;
    /// Items it draws from.
    fn n_items(&self) -> usize;
    /// Items per batch.
    fn batch_size(&self) -> usize;
    /// The batches of `epoch`, drawn from the sampler's seed and `epoch` alone.
    fn plan(&self, epoch: usize) -> Result<Vec<BatchPlan>>;
}

/// `items` taken in `order` (positions in `items`, which key their draws) in batches of
/// `bs`, the last partial batch dropped when `drop_last`.
fn batches(items: &[Item], order: &[usize], bs: usize, drop_last: bool) -> Vec<BatchPlan> {
    order
        .chunks(bs)
        .filter(|c| !drop_last || c.len() == bs)
        .map(|c| BatchPlan::of(c.iter().map(|&key| Drawn { key, item: items[key] }).collect()))
        .collect()
}

/// fastai's training order: a permutation seeded by (seed, epoch).
fn shuffled(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut crate::seed::rng(seed, &format!("shuffle/{epoch}")));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Item> {
        (0..n).map(|i| Item { ids: [i, i], y: (i % 3) as i64, turns: 0 }).collect()
    }

    #[test]
    fn random_order_is_a_function_of_seed_and_epoch_and_drops_the_last_batch() {
        let s = RandomSampler::new(items(10), 3, 7);
        assert_eq!((s.n_batches(), s.n_items(), s.batch_size()), (3, 10, 3));
        let (a, b) = (s.plan(1).unwrap(), s.plan(1).unwrap());
        assert_eq!(a, b);
        assert_ne!(a, s.plan(2).unwrap());
        assert_eq!(a.len(), 3);
        let keys: Vec<usize> = a.iter().flat_map(|p| p.items.iter().map(|d| d.key)).collect();
        assert_eq!(keys.len(), 9);
        assert!(a.iter().flat_map(|p| &p.items).all(|d| d.item.ids[0] == d.key), "keys are places in the item list");
        assert!(a.iter().all(|p| p.targets == p.items.iter().map(|d| d.item.y).collect::<Vec<_>>()));
    }

    #[test]
    fn sequential_keeps_order_and_the_last_partial_batch() {
        let s = SequentialSampler::new(items(7), 3);
        let plan = s.plan(5).unwrap();
        assert_eq!(s.n_batches(), 3);
        assert_eq!(plan.iter().map(|p| p.items.len()).collect::<Vec<_>>(), [3, 3, 1]);
        let keys: Vec<usize> = plan.iter().flat_map(|p| p.items.iter().map(|d| d.key)).collect();
        assert_eq!(keys, (0..7).collect::<Vec<_>>());
        assert_eq!(plan, s.plan(0).unwrap(), "validation does not change with the epoch");
    }
}
