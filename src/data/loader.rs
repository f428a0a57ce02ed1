//! A loader renders the batches its sampler plans into normalised NCHW tensors on the
//! device, fast: it knows nothing of how items were chosen.
//!
//! Worker threads (a rayon pool) decode, resize and augment each batch into u8 buffers
//! ahead of the consumer through a bounded channel; the loader thread stages them as u8
//! host tensors (page-locked for CUDA), and the consumer copies bytes to the device
//! (asynchronously on CUDA) and converts and normalises there, as fastai's `batch_tfms` do:
//! a quarter of float32's bytes cross the bus. Every random choice of an item (crop
//! position, augmentation) comes from (seed, epoch, the item's key), never from the thread
//! that happens to run it, so batches are identical whatever the thread count. Training,
//! validation, test-time augmentation and image files from outside the data set all go
//! through this one render path.
pub use super::item::Item;
use super::pixels::Pixels;
use super::render::{produce, Images, RawBatch};
use super::sampler::{BatchPlan, Drawn, Sampler, ShardSampler};
use super::targets::{BatchTargets, Targets};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tch::{Device, Tensor};

/// Test-time augmentation pass `n` draws as epoch `TTA_EPOCHS + n` would.
const TTA_EPOCHS: usize = 1 << 40;

/// Batches the workers render at the same time.
const IN_FLIGHT: usize = 2;

/// One batch: `xs` holds one tensor per input of its items (one image, or two), float32
/// NCHW, normalised, on the loader's device; `y` holds the targets: int64 classes `[N]`, or
/// float rows `[N, width]` (numbers, label sets).
pub struct Batch {
    pub xs: Vec<Tensor>,
    pub y: Tensor,
}

pub struct DataLoader {
    images: Arc<Images>,
    targets: Arc<Targets>,
    sampler: Arc<dyn Sampler>,
    n_inputs: usize,
    /// Training transforms (random crop, augmentation) on its batches.
    train: bool,
    pool: Arc<rayon::ThreadPool>,
    device: Device,
    prefetch: usize,
    /// `1 / (255 * std)` and `-mean / std`, shaped [1, C, 1, 1] on the device.
    scale: Tensor,
    shift: Tensor,
}

/// What a loader renders with, shared by a data set's loaders.
pub(crate) struct Renderer {
    pub images: Arc<Images>,
    pub targets: Arc<Targets>,
    pub n_inputs: usize,
    pub pool: Arc<rayon::ThreadPool>,
    pub device: Device,
    pub prefetch: usize,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl DataLoader {
    pub(crate) fn new(r: &Renderer, sampler: Arc<dyn Sampler>, train: bool) -> Result<DataLoader> {
        let c = r.mean.len() as i64;
        let norm = |v: Vec<f32>| Tensor::f_from_slice(&v)?.f_view([1, c, 1, 1])?.f_to_device(r.device);
        let scale: Vec<f32> = r.std.iter().map(|s| 1.0 / (255.0 * s)).collect();
        let shift: Vec<f32> = r.mean.iter().zip(&r.std).map(|(m, s)| -m / s).collect();
        Ok(DataLoader {
            images: r.images.clone(),
            targets: r.targets.clone(),
            sampler,
            n_inputs: r.n_inputs,
            train,
            pool: r.pool.clone(),
            device: r.device,
            prefetch: r.prefetch,
            scale: norm(scale)?,
            shift: norm(shift)?,
        })
    }

    /// Rank `rank`'s share of this loader in a data-parallel group of `world` (see
    /// `ShardSampler`; a training loader drops its last partial batch): same images and
    /// transforms, `bs` items a batch.
    pub fn shard(&self, rank: usize, world: usize) -> Result<DataLoader> {
        let sampler = ShardSampler::new(self.sampler.clone(), rank, world, self.train)?;
        Ok(DataLoader {
            images: self.images.clone(),
            targets: self.targets.clone(),
            sampler: Arc::new(sampler),
            n_inputs: self.n_inputs,
            train: self.train,
            pool: self.pool.clone(),
            device: self.device,
            prefetch: self.prefetch,
            scale: self.scale.shallow_clone(),
            shift: self.shift.shallow_clone(),
        })
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        self.sampler.n_batches()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn n_items(&self) -> usize {
        self.sampler.n_items()
    }

    pub fn batch_size(&self) -> usize {
        self.sampler.batch_size()
    }

    /// The images and transforms it renders with.
    pub(crate) fn images(&self) -> &Images {
        &self.images
    }

    /// What plans its batches.
    pub fn sampler(&self) -> &dyn Sampler {
        self.sampler.as_ref()
    }

    /// Batches of one epoch; `epoch` varies what the sampler draws and the augmentation.
    /// Dropping the iterator early stops the workers.
    pub fn iter(&self, epoch: usize) -> Result<BatchIter<'_>> {
        self.iter_with(epoch, self.train)
    }

    /// The loader's batches with the training augmentation of pass `n`, for test-time
    /// augmentation (fastai's `tta` puts the training transforms on the validation set);
    /// its random draws are apart from every training epoch's.
    pub fn iter_augmented(&self, n: usize) -> Result<BatchIter<'_>> {
        self.iter_with(TTA_EPOCHS + n, true)
    }

    fn iter_with(&self, epoch: usize, augment: bool) -> Result<BatchIter<'_>> {
        let plans = self.sampler.plan(epoch)?;
        let (tx, rx) = crossbeam_channel::bounded(self.prefetch.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let (images, pool, stop2, n_inputs) = (self.images.clone(), self.pool.clone(), stop.clone(), self.n_inputs);
        let targets = self.targets.clone();
        let (shape, device) = (self.pixel_shape(), self.device);
        let handle = std::thread::Builder::new()
            .name("runner-loader".into())
            .spawn(move || {
                // Two batches render at once, so that the workers start on the next batch while
                // one finishes and is staged (one at a time left them idle at every boundary).
                let mut rendering = std::collections::VecDeque::new();
                let mut plans = plans.into_iter();
                loop {
                    while rendering.len() < IN_FLIGHT {
                        let Some(plan) = plans.next() else { break };
                        let (done, rendered) = crossbeam_channel::bounded(1);
                        let (images, targets, stop) = (images.clone(), targets.clone(), stop2.clone());
                        pool.spawn(move || {
                            if !stop.load(Ordering::Relaxed) {
                                let _ = done.send(produce(&images, &plan, n_inputs, epoch, augment).and_then(|r| stage(r, &targets, shape, device)));
                            }
                        });
                        rendering.push_back(rendered);
                    }
                    let Some(Ok(raw)) = rendering.pop_front().map(|r| r.recv()) else { break };
                    let failed = raw.is_err();
                    if stop2.load(Ordering::Relaxed) || tx.send(raw).is_err() || failed {
                        break;
                    }
                }
            })
            .context("cannot start the loader thread")?;
        Ok(BatchIter { loader: self, rx: Some(rx), handle: Some(handle), stop })
    }

    /// The first `n` items of `epoch` as u8 pixels with their classes, as the loader would
    /// prepare them (for show_batch).
    pub fn preview(&self, epoch: usize, n: usize) -> Result<Vec<(Vec<Pixels>, i64)>> {
        let drawn: Vec<Drawn> = self.sampler.plan(epoch)?.into_iter().flat_map(|p| p.items).take(n).collect();
        self.render(&drawn, epoch)
    }

    /// The items behind targets `picked` (places among all of epoch 0's targets: the
    /// validation order), as epoch 0 prepares them (for plot_top_losses).
    pub fn items_at(&self, picked: &[usize]) -> Result<Vec<(Vec<Pixels>, i64)>> {
        let plans = self.sampler.plan(0)?;
        let targeted: Vec<Drawn> = plans.iter().flat_map(BatchPlan::targeted).copied().collect();
        let drawn = picked
            .iter()
            .map(|&i| targeted.get(i).copied().with_context(|| format!("item {i} is out of range: the loader has {} items", targeted.len())))
            .collect::<Result<Vec<_>>>()?;
        self.render(&drawn, 0)
    }

    fn render(&self, drawn: &[Drawn], epoch: usize) -> Result<Vec<(Vec<Pixels>, i64)>> {
        let (images, n_inputs, train) = (&self.images, self.n_inputs, self.train);
        self.pool.install(|| {
            drawn
                .par_iter()
                .map(|d| Ok((images.render(&d.item, n_inputs, d.key, epoch, train)?, d.item.y)))
                .collect::<Vec<Result<_>>>()
                .into_iter()
                .collect()
        })
    }

    /// Image files from outside the data set (each turned by `turns[i]` quarter turns, as
    /// `quarter_turns` rows are), as one batch through the validation transforms or, for
    /// test-time augmentation pass `Some(n)`, through the training transforms of pass `n`:
    /// the same path as the loader's own batches.
    pub fn render_files(&self, files: &[PathBuf], turns: &[u8], tta: Option<usize>) -> Result<Tensor> {
        if turns.len() != files.len() {
            bail!("{} files but {} quarter-turn counts", files.len(), turns.len());
        }
        let images = self.images.with_paths(files.to_vec());
        let items = (0..files.len()).map(|i| Drawn { key: i, item: Item { ids: [i, i], y: 0, turns: turns[i] } }).collect();
        let (epoch, augment) = tta.map_or((0, false), |n| (TTA_EPOCHS + n, true));
        let raw = self.pool.install(|| produce(&images, &BatchPlan::of(items), 1, epoch, augment))?;
        let host = stage(raw, &Targets::classes(0), self.pixel_shape(), self.device)?;
        self.to_tensor(&host.xs[0])
    }

    /// One image's (height, width, channels).
    fn pixel_shape(&self) -> [i64; 3] {
        let s = self.images.size as i64;
        [s, s, self.images.channels as i64]
    }

    /// u8 NHWC host tensor -> normalised float NCHW on the device: the bytes go over
    /// (without waiting, from page-locked memory), the u8 transpose is cheap, and
    /// `shift + x * scale` converts and normalises in a single pass over the floats.
    fn to_tensor(&self, host: &Tensor) -> Result<Tensor> {
        let t = to_device(host, self.device)?.f_permute([0, 3, 1, 2])?.f_contiguous()?;
        Ok(self.shift.f_addcmul(&t, &self.scale)?)
    }

    fn to_batch(&self, host: HostBatch) -> Result<Batch> {
        let xs = host.xs.iter().map(|x| self.to_tensor(x)).collect::<Result<Vec<_>>>()?;
        Ok(Batch { xs, y: to_device(&host.y, self.device)? })
    }
}

/// A batch on the host: u8 NHWC pixels per input and its targets, page-locked when
/// bound for CUDA so that the copy to the device runs asynchronously.
struct HostBatch {
    xs: Vec<Tensor>,
    y: Tensor,
}

/// Copies `buf` into a host tensor of `shape`, page-locked when bound for CUDA.
fn host_tensor<T: tch::kind::Element>(buf: &[T], shape: &[i64], device: Device) -> Result<Tensor> {
    let t = Tensor::f_from_slice(buf)?.f_view(shape)?;
    Ok(if device.is_cuda() { t.f_pin_memory(device)? } else { t })
}

/// Runs in the loader thread, so the training loop finds its batch ready to copy.
fn stage(raw: RawBatch, targets: &Targets, pixel: [i64; 3], device: Device) -> Result<HostBatch> {
    let shape = [raw.rows as i64, pixel[0], pixel[1], pixel[2]];
    let xs = raw.xs.iter().map(|b| host_tensor(b, &shape, device)).collect::<Result<Vec<_>>>()?;
    let y = match targets.batch(&raw.y) {
        BatchTargets::Classes(y) => host_tensor(&y, &[y.len() as i64], device)?,
        BatchTargets::Rows { values, width } => host_tensor(&values, &[raw.y.len() as i64, width as i64], device)?,
    };
    Ok(HostBatch { xs, y })
}

/// A non-blocking copy to `device` (a no-op on the CPU): the caching host allocator keeps
/// a pinned source alive until the copy has run.
fn to_device(host: &Tensor, device: Device) -> Result<Tensor> {
    Ok(host.f_to_device_(device, host.kind(), true, false)?)
}

/// One epoch's batches, prepared ahead by the worker threads.
pub struct BatchIter<'a> {
    loader: &'a DataLoader,
    rx: Option<crossbeam_channel::Receiver<Result<HostBatch>>>,
    handle: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Iterator for BatchIter<'_> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let raw = self.rx.as_ref()?.recv().ok()?;
        Some(raw.and_then(|r| self.loader.to_batch(r)))
    }
}

impl Drop for BatchIter<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
