//! What the learner needs from data: batches of inputs and targets for training (shuffled,
//! varying per epoch) and validation (in order). `DataLoaders` implements it; so does the
//! in-memory `TensorData`, which serves tests and small synthetic problems.
pub use crate::data::targets::TargetKind;
use anyhow::Result;
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

/// A batch: one input tensor (images) or two (pairs), and its targets (int64 classes
/// `[N]`, or float rows `[N, k]` for numbers and label sets).
pub struct XY {
    pub xs: Vec<Tensor>,
    pub y: Tensor,
}

pub type Batches<'a> = Box<dyn Iterator<Item = Result<XY>> + 'a>;

pub trait LearnData {
    /// Training batches of one epoch (the epoch number varies shuffles and redraws).
    fn train(&self, epoch: usize) -> Result<Batches<'_>>;
    fn valid(&self) -> Result<Batches<'_>>;
    fn train_len(&self) -> usize;
    /// Validation items scored in one pass (every rank's share together, for a shard).
    fn valid_len(&self) -> usize;
    /// Rank `rank`'s share of this data in a data-parallel group of `world` processes: what
    /// it trains and validates on (see `data::sampler::ShardSampler`).
    fn shard(&self, _rank: usize, _world: usize) -> Result<Rc<dyn LearnData>> {
        anyhow::bail!("this data cannot be split over the processes of a data-parallel run (use DataLoaders from image_loaders or pair_loaders)")
    }
    /// Class names for targets (`["different", "same"]` for pairs, an episode's ways for
    /// episodic loaders).
    fn vocab(&self) -> Vec<String>;
    /// What the targets are: classes, numbers or label sets.
    fn target_kind(&self) -> TargetKind {
        TargetKind::Classes
    }
    /// The episode layout when batches are N-way K-shot episodes.
    fn episodes(&self) -> Option<&crate::data::sampler::EpisodeLayout> {
        None
    }
    /// One input item's shape `[channels, height, width]`, when the data knows it (so a
    /// summary shows what the loaders really feed the model).
    fn input_shape(&self) -> Option<Vec<i64>> {
        None
    }
    /// Image files through the validation transforms, each turned by its quarter turns, as
    /// one batch; with `tta: Some(n)` also through pass `n` of the training augmentation.
    fn encode(&self, _files: &[std::path::PathBuf], _turns: &[u8], _tta: Option<usize>) -> Result<Tensor> {
        anyhow::bail!("this data cannot encode image files (use DataLoaders from image_loaders or pair_loaders)")
    }
    /// Validation items by index, as u8 pixels before normalisation (for pictures).
    fn valid_images(&self, _indices: &[usize]) -> Result<Vec<Vec<crate::data::pixels::Pixels>>> {
        anyhow::bail!("this data has no images to show (use DataLoaders from image_loaders or pair_loaders)")
    }
    /// Image files through the validation transforms, as one batch (for predictions).
    fn encode_files(&self, files: &[std::path::PathBuf]) -> Result<Tensor> {
        self.encode(files, &vec![0; files.len()], None)
    }
    /// What turns an image file into an input (for exporting a learner), when the data reads files.
    fn pipeline(&self) -> Option<crate::data::pipeline::ItemPipeline> {
        None
    }
    /// The validation batches through pass `n` of the training augmentation (for `tta`).
    fn valid_augmented(&self, _n: usize) -> Result<Batches<'_>> {
        anyhow::bail!("this data has no training augmentation to apply at test time (use DataLoaders)")
    }
}

impl LearnData for crate::data::DataLoaders {
    fn train(&self, epoch: usize) -> Result<Batches<'_>> {
        Ok(Box::new(self.train.iter(epoch)?.map(|b| b.map(|b| XY { xs: b.xs, y: b.y }))))
    }
    fn valid(&self) -> Result<Batches<'_>> {
        Ok(Box::new(self.valid.iter(0)?.map(|b| b.map(|b| XY { xs: b.xs, y: b.y }))))
    }
    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn valid_len(&self) -> usize {
        self.valid.n_items()
    }
    fn shard(&self, rank: usize, world: usize) -> Result<Rc<dyn LearnData>> {
        Ok(Rc::new(crate::data::DataLoaders::shard(self, rank, world)?))
    }
    fn vocab(&self) -> Vec<String> {
        match &self.episodes {
            Some(e) => e.way_names(),
            None => self.vocab.clone(),
        }
    }
    fn episodes(&self) -> Option<&crate::data::sampler::EpisodeLayout> {
        self.episodes.as_ref()
    }
    fn target_kind(&self) -> TargetKind {
        self.targets.kind
    }
    fn input_shape(&self) -> Option<Vec<i64>> {
        Some(vec![self.channels as i64, self.size as i64, self.size as i64])
    }
    fn encode(&self, files: &[std::path::PathBuf], turns: &[u8], tta: Option<usize>) -> Result<Tensor> {
        crate::data::DataLoaders::encode(self, files, turns, tta)
    }
    fn valid_augmented(&self, n: usize) -> Result<Batches<'_>> {
        Ok(Box::new(self.valid.iter_augmented(n)?.map(|b| b.map(|b| XY { xs: b.xs, y: b.y }))))
    }
    fn valid_images(&self, indices: &[usize]) -> Result<Vec<Vec<crate::data::pixels::Pixels>>> {
        Ok(self.valid.items_at(indices)?.into_iter().map(|(px, _)| px).collect())
    }
    fn pipeline(&self) -> Option<crate::data::pipeline::ItemPipeline> {
        Some(crate::data::DataLoaders::pipeline(self))
    }
}

/// Tensors held in memory, batched like fastai's loaders: training shuffled by a seeded
/// permutation with `drop_last`, validation in order.
pub struct TensorData {
    pub train_x: Vec<Tensor>,
    pub train_y: Tensor,
    pub valid_x: Vec<Tensor>,
    pub valid_y: Tensor,
    pub bs: usize,
    pub seed: u64,
    pub device: Device,
    /// Class names; for float targets one name per output column.
    pub vocab: Vec<String>,
    /// What `train_y` and `valid_y` hold.
    pub targets: TargetKind,
}

impl TensorData {
    fn batches(&self, xs: &[Tensor], y: &Tensor, order: Vec<i64>, drop_last: bool) -> Batches<'_> {
        let bs = self.bs;
        let n_batches = if drop_last { order.len() / bs } else { order.len().div_ceil(bs) };
        let xs: Vec<Tensor> = xs.iter().map(|x| x.shallow_clone()).collect();
        let y = y.shallow_clone();
        let device = self.device;
        Box::new((0..n_batches).map(move |b| {
            let idx = Tensor::from_slice(&order[b * bs..((b + 1) * bs).min(order.len())]);
            Ok(XY { xs: xs.iter().map(|x| x.index_select(0, &idx).to_device(device)).collect(), y: y.index_select(0, &idx).to_device(device) })
        }))
    }
}

impl LearnData for TensorData {
    fn train(&self, epoch: usize) -> Result<Batches<'_>> {
        use rand::seq::SliceRandom;
        let mut order: Vec<i64> = (0..self.train_y.size()[0]).collect();
        order.shuffle(&mut crate::seed::rng(self.seed, &format!("shuffle/{epoch}")));
        Ok(self.batches(&self.train_x, &self.train_y, order, true))
    }
    fn valid(&self) -> Result<Batches<'_>> {
        Ok(self.batches(&self.valid_x, &self.valid_y, (0..self.valid_y.size()[0]).collect(), false))
    }
    fn train_len(&self) -> usize {
        self.train_y.size()[0] as usize / self.bs
    }
    fn valid_len(&self) -> usize {
        self.valid_y.size()[0] as usize
    }
    fn vocab(&self) -> Vec<String> {
        self.vocab.clone()
    }
    fn target_kind(&self) -> TargetKind {
        self.targets
    }
}

/// Targets on the kind their losses take: int64 classes, float32 numbers and label sets.
pub fn as_targets(y: &Tensor, kind: TargetKind) -> Tensor {
    let want = if kind == TargetKind::Classes { Kind::Int64 } else { Kind::Float };
    if y.kind() == want {
        y.shallow_clone()
    } else {
        y.to_kind(want)
    }
}
