//! Training batches in a new seeded order every epoch, the last partial batch dropped
//! (fastai's `shuffle=True, drop_last=True` for the training loader).
use super::{batches, shuffled, BatchPlan, Sampler};
use crate::data::item::Item;
use anyhow::Result;

pub struct RandomSampler {
    items: Vec<Item>,
    bs: usize,
    seed: u64,
}

impl RandomSampler {
    pub fn new(items: Vec<Item>, bs: usize, seed: u64) -> RandomSampler {
        RandomSampler { items, bs: bs.max(1), seed }
    }
}

impl Sampler for RandomSampler {
    fn n_batches(&self) -> usize {
        self.items.len() / self.bs
    }
    fn n_items(&self) -> usize {
        self.items.len()
    }
    fn batch_size(&self) -> usize {
        self.bs
    }
    fn plan(&self, epoch: usize) -> Result<Vec<BatchPlan>> {
        Ok(batches(&self.items, &shuffled(self.items.len(), self.seed, epoch), self.bs, true))
    }
}
