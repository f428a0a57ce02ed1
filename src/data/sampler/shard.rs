//! One rank's share of another sampler's plan, for data-parallel training (PyTorch's
//! `DistributedSampler`, fastai's `DistributedDL`): every rank plans the same (seed, epoch)
//! order, pads it to a multiple of the world size by repeating its first items, takes
//! every `world`-th item from its rank on (`items[rank::world]`) and batches them by the
//! inner sampler's batch size. With batches of `bs` per rank over an inner plan of
//! `bs * world`, the ranks' batches of one step together are exactly the one-process
//! batch of that step. Items keep their keys, so their random draws (crops,
//! augmentation) are the one-process run's.
use super::{BatchPlan, Drawn, Sampler};
use anyhow::{bail, Result};
use std::sync::Arc;

pub struct ShardSampler {
    inner: Arc<dyn Sampler>,
    rank: usize,
    world: usize,
    drop_last: bool,
    n_batches: usize,
}

impl ShardSampler {
    /// Rank `rank`'s share of `inner`'s plans; the last partial batch is dropped when
    /// `drop_last` (training). Refuses plans whose batches are not plain items (episodes:
    /// support images without targets).
    pub fn new(inner: Arc<dyn Sampler>, rank: usize, world: usize, drop_last: bool) -> Result<ShardSampler> {
        if world == 0 || rank >= world {
            bail!("rank {rank} is out of range for world size {world}");
        }
        let plan = inner.plan(0)?;
        if plan.iter().any(|b| b.first_target != 0 || b.targets.len() != b.items.len()) {
            bail!("episode loaders cannot be split over the processes of a data-parallel run yet: run episodic training in one process");
        }
        let mut s = ShardSampler { inner, rank, world, drop_last, n_batches: 0 };
        s.n_batches = s.share(plan).len();
        Ok(s)
    }

    /// Items of this rank per epoch (padding included).
    fn share(&self, plan: Vec<BatchPlan>) -> Vec<BatchPlan> {
        let mut all: Vec<Drawn> = plan.into_iter().flat_map(|b| b.items).collect();
        let padded = all.len().div_ceil(self.world) * self.world;
        for i in all.len()..padded {
            all.push(all[i % all.len().max(1)]);
        }
        let mine: Vec<Drawn> = all.into_iter().skip(self.rank).step_by(self.world).collect();
        let bs = self.inner.batch_size();
        mine.chunks(bs).filter(|c| !self.drop_last || c.len() == bs).map(|c| BatchPlan::of(c.to_vec())).collect()
    }
}

impl Sampler for ShardSampler {
    fn n_batches(&self) -> usize {
        self.n_batches
    }
    /// Items the whole group draws from (every rank's share together).
    fn n_items(&self) -> usize {
        self.inner.n_items()
    }
    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }
    fn plan(&self, epoch: usize) -> Result<Vec<BatchPlan>> {
        Ok(self.share(self.inner.plan(epoch)?))
    }
}

/// Puts back in plan order what the ranks computed on their shares: `gathered` is
/// `[world, per_rank, ...]` (every rank's outputs, in rank order, of a `ShardSampler` over
/// a plan of `n` items); the result is `[n, ...]`, the padding dropped.
pub fn unshard(gathered: &tch::Tensor, n: usize) -> Result<tch::Tensor> {
    let size = gathered.size();
    if size.len() < 2 || (size[0] * size[1]) < n as i64 {
        bail!("gathered outputs of shape {size:?} cannot hold {n} items");
    }
    let mut flat = vec![size[0] * size[1]];
    flat.extend_from_slice(&size[2..]);
    Ok(gathered.f_transpose(0, 1)?.f_reshape(&flat)?.f_narrow(0, 0, n as i64)?)
}

#[cfg(test)]
mod tests {
    use super::super::{RandomSampler, SequentialSampler};
    use super::*;
    use crate::data::item::Item;

    fn items(n: usize) -> Vec<Item> {
        (0..n).map(|i| Item { ids: [i, i], y: (i % 3) as i64, turns: 0 }).collect()
    }

    fn keys(plan: &[BatchPlan]) -> Vec<Vec<usize>> {
        plan.iter().map(|b| b.items.iter().map(|d| d.key).collect()).collect()
    }

    #[test]
    fn the_ranks_batches_of_a_step_make_the_one_process_batch() {
        let one = RandomSampler::new(items(37), 16, 5);
        let ranks: Vec<ShardSampler> =
            (0..2).map(|r| ShardSampler::new(Arc::new(RandomSampler::new(items(37), 8, 5)), r, 2, true).unwrap()).collect();
        for epoch in [0, 3] {
            let whole = keys(&one.plan(epoch).unwrap());
            let parts: Vec<Vec<Vec<usize>>> = ranks.iter().map(|s| keys(&s.plan(epoch).unwrap())).collect();
            assert_eq!(whole.len(), 2);
            assert!(ranks.iter().all(|s| s.n_batches() == 2 && s.batch_size() == 8));
            for (step, batch) in whole.iter().enumerate() {
                let mut union: Vec<usize> = parts.iter().flat_map(|p| p[step].clone()).collect();
                let mut want = batch.clone();
                union.sort();
                want.sort();
                assert_eq!(union, want, "epoch {epoch} step {step}");
                assert_eq!(parts[0][step], batch.iter().copied().step_by(2).collect::<Vec<_>>(), "rank 0 takes items[0::2]");
            }
        }
    }

    #[test]
    fn validation_is_padded_to_the_world_and_unsharded_back_in_order() {
        let n = 11;
        let ranks: Vec<ShardSampler> =
            (0..3).map(|r| ShardSampler::new(Arc::new(SequentialSampler::new(items(n), 2)), r, 3, false).unwrap()).collect();
        let shares: Vec<Vec<usize>> = ranks.iter().map(|s| keys(&s.plan(0).unwrap()).concat()).collect();
        assert!(shares.iter().all(|s| s.len() == 4), "12 padded items, 4 a rank: {shares:?}");
        assert_eq!(shares[2], [2, 5, 8, 0], "the padding repeats the first item");
        assert_eq!(ranks[0].n_batches(), 2);
        let gathered = tch::Tensor::from_slice(&shares.concat().iter().map(|&k| k as i64).collect::<Vec<_>>()).view([3, 4]);
        let back = Vec::<i64>::try_from(unshard(&gathered, n).unwrap()).unwrap();
        assert_eq!(back, (0..n as i64).collect::<Vec<_>>());
    }

    #[test]
    fn a_bad_rank_is_refused() {
        let e = ShardSampler::new(Arc::new(SequentialSampler::new(items(4), 2)), 2, 2, false).err().unwrap().to_string();
        assert!(e.contains("out of range"), "{e}");
    }
}
