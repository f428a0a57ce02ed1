//! Siamese training pairs drawn anew every epoch after the first: each training anchor
//! keeps its place and gets a new partner from the training split (same class with
//! probability `p_same`), then the epoch is shuffled and batched as `RandomSampler` does.
//! Fresh pairs each epoch show the model far more of the possible pairs than one table.
use super::{batches, shuffled, BatchPlan, Sampler};
use crate::data::item::Item;
use crate::data::pairs::{Fallbacks, PartnerPool};
use anyhow::Result;

pub struct PairRedraw {
    /// Epoch 0's pairs: the table's.
    first: Vec<Item>,
    pool: PartnerPool,
    /// Image id of each candidate partner.
    members: Vec<usize>,
    /// Candidate index of each row's anchor.
    anchors: Vec<usize>,
    p_same: f64,
    bs: usize,
    seed: u64,
}

impl PairRedraw {
    /// `classes[i]` is the class of `items[i]`'s first image (its anchor).
    pub fn new(items: Vec<Item>, classes: &[String], p_same: f64, bs: usize, seed: u64) -> PairRedraw {
        let mut members: Vec<usize> = Vec::new();
        let mut member_classes = Vec::new();
        let mut index = std::collections::HashMap::new();
        let anchors = items
            .iter()
            .zip(classes)
            .map(|(it, c)| {
                *index.entry(it.ids[0]).or_insert_with(|| {
                    members.push(it.ids[0]);
                    member_classes.push(c.clone());
                    members.len() - 1
                })
            })
            .collect();
        PairRedraw { first: items, pool: PartnerPool::new(member_classes), members, anchors, p_same, bs: bs.max(1), seed }
    }

    /// The pairs of `epoch` (> 0) and the fallbacks their draws needed.
    pub fn draw(&self, epoch: usize) -> (Vec<Item>, Fallbacks) {
        let mut rng = crate::seed::rng(self.seed, &format!("redraw/{epoch}"));
        let mut fb = Fallbacks::default();
        let items = self
            .anchors
            .iter()
            .map(|&a| {
                let (k, same) = self.pool.draw(a, self.p_same, &mut rng, &mut fb);
                Item { ids: [self.members[a], self.members[k]], y: same as i64, turns: 0 }
            })
            .collect();
        (items, fb)
    }
}

impl Sampler for PairRedraw {
    fn n_batches(&self) -> usize {
        self.first.len() / self.bs
    }
    fn n_items(&self) -> usize {
        self.first.len()
    }
    fn batch_size(&self) -> usize {
        self.bs
    }
    fn plan(&self, epoch: usize) -> Result<Vec<BatchPlan>> {
        let redrawn;
        let items = if epoch == 0 {
            &self.first
        } else {
            let (items, fb) = self.draw(epoch);
            if fb.total() > 0 {
                tracing::warn!("epoch {epoch} pairs: {}", fb.describe());
            }
            redrawn = items;
            &redrawn
        };
        Ok(batches(items, &shuffled(items.len(), self.seed, epoch), self.bs, true))
    }
}
