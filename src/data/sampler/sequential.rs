//! Batches in the items' own order, the last one kept even when partial (validation: every
//! item is scored once, in an order the predictions can be matched to).
use super::{batches, BatchPlan, Sampler};
use crate::data::item::Item;
use anyhow::Result;

pub struct SequentialSampler {
    items: Vec<Item>,
    bs: usize,
}

impl SequentialSampler {
    pub fn new(items: Vec<Item>, bs: usize) -> SequentialSampler {
        SequentialSampler { items, bs: bs.max(1) }
    }
}

impl Sampler for SequentialSampler {
    fn n_batches(&self) -> usize {
        self.items.len().div_ceil(self.bs)
    }
    fn n_items(&self) -> usize {
        self.items.len()
    }
    fn batch_size(&self) -> usize {
        self.bs
    }
    fn plan(&self, _epoch: usize) -> Result<Vec<BatchPlan>> {
        let order: Vec<usize> = (0..self.items.len()).collect();
        Ok(batches(&self.items, &order, self.bs, false))
    }
}
