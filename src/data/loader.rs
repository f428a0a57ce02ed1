//! Loaders: items (1 or 2 image files and a class) to normalised NCHW batches on the device.
//!
//! Worker threads (a rayon pool, all cores by default) decode, resize and augment each
//! batch into u8 buffers ahead of the consumer through a bounded channel; the loader thread
//! stages them as u8 host tensors (page-locked for CUDA), and the consumer copies bytes to
//! the device (asynchronously on CUDA) and converts and normalises there, as fastai's
//! `batch_tfms` do: a quarter of float32's bytes cross the bus. Every random choice of an item
//! (crop position, augmentation) comes from (seed, epoch, item index), never from the
//! thread that happens to run it, so batches are identical whatever the thread count.
use super::augment::Augment;
use super::episodic::{EpisodeDraw, EpisodeLayout};
use super::image::{decode_for, load_resized, shrink_for, Method, Pixels};
use super::pairs::Redraw;
pub use super::render::Item;
use super::render::{channel_stats, produce, Images, RawBatch};
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tch::{Device, Tensor};

/// Test-time augmentation pass `n` draws as epoch `TTA_EPOCHS + n` would.
const TTA_EPOCHS: usize = 1 << 40;

/// Batches the workers render at the same time.
const IN_FLIGHT: usize = 2;

pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// One batch: `xs` holds 1 tensor (plain images) or 2 (pairs), float32 NCHW, normalised,
/// on the loader's device; `y` holds int64 class indices (pairs: 1 = same).
pub struct Batch {
    pub xs: Vec<Tensor>,
    pub y: Tensor,
}

impl std::str::FromStr for Normalize {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Normalize> {
        Ok(match s {
            "imagenet" => Normalize::Imagenet,
            "stats" => Normalize::Stats,
            "none" => Normalize::None,
            n => anyhow::bail!("unknown normalize `{n}`: use imagenet, stats or none"),
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Normalize {
    /// ImageNet's mean and std (for pretrained models); grey images use their channel means.
    Imagenet,
    /// Per-channel mean and std of (up to 512) training images, computed when the loaders are built.
    Stats,
    /// Only `/ 255`.
    None,
}

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub size: u32,
    pub method: Method,
    pub normalize: Normalize,
    pub bs: usize,
    /// Validation batch size (default: `bs`).
    pub val_bs: Option<usize>,
    /// 1 (grey) or 3 (RGB; grey images are repeated).
    pub channels: usize,
    pub augment: Augment,
    /// Keep every image decoded (shrunk to what the resize reads) in memory.
    pub cache: bool,
    /// Drop items whose image cannot be decoded (checked when building) instead of failing.
    pub skip_bad: bool,
    pub num_workers: usize,
    pub seed: u64,
    pub device: Device,
    /// Redraw the training pairs every epoch after the first, with this `p_same`.
    pub redraw: Option<f64>,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    fn default() -> LoaderConfig {
        LoaderConfig {
            size: 224,
            method: Method::Crop,
            normalize: Normalize::Imagenet,
            bs: 64,
            val_bs: None,
            channels: 3,
            augment: Augment::default(),
            cache: false,
            skip_bad: false,
            num_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            seed: crate::seed::DEFAULT_SEED,
            device: Device::Cpu,
            redraw: None,
            prefetch: 4,
        }
    }
}

pub struct DataLoader {
    images: Arc<Images>,
    items: Arc<Vec<Item>>,
    n_inputs: usize,
    train: bool,
    bs: usize,
    redraw: Option<Arc<Redraw>>,
    /// Batches are episodes (see `episodic`).
    episodes: Option<Arc<EpisodeDraw>>,
    pool: Arc<rayon::ThreadPool>,
    device: Device,
    prefetch: usize,
    /// `1 / (255 * std)` and `-mean / std`, shaped [1, C, 1, 1] on the device.
    scale: Tensor,
    shift: Tensor,
}

impl DataLoader {
    /// Batches per epoch (train drops the last partial batch).
    pub fn len(&self) -> usize {
        if let Some(e) = self.episodes.as_ref().filter(|_| self.train) {
            e.layout.episodes
        } else if self.train {
            self.items.len() / self.bs
        } else {
            self.items.len().div_ceil(self.bs)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    pub fn batch_size(&self) -> usize {
        self.bs
    }

    /// The items the loader was built with (an episodic training loader's pool).
    pub(crate) fn pool(&self) -> &[Item] {
        &self.items
    }

    /// Makes the batches episodes: training draws them from its items each epoch;
    /// validation gets its fixed episodes' items, laid out.
    pub(crate) fn set_episodes(&mut self, draw: Arc<EpisodeDraw>, items: Option<Vec<Item>>) {
        self.bs = draw.layout.size();
        self.episodes = Some(draw);
        if let Some(items) = items {
            self.items = Arc::new(items);
        }
    }

    /// The items of `epoch` (redrawn pairs after the first epoch when enabled, an
    /// episodic loader's episodes) and their order.
    fn plan(&self, epoch: usize) -> Result<(Arc<Vec<Item>>, Vec<usize>)> {
        let drawn = self.episodes.as_ref().filter(|e| e.classes.is_some());
        let items = match (&self.redraw, drawn) {
            (_, Some(e)) => Arc::new(e.draw(&self.items, epoch)?),
            (Some(r), _) if epoch > 0 => {
                let (items, fb) = r.draw(self.images.seed, epoch);
                if fb.total() > 0 {
                    tracing::warn!("epoch {epoch} pairs: {}", fb.describe());
                }
                Arc::new(items)
            }
            _ => self.items.clone(),
        };
        let mut order: Vec<usize> = (0..items.len()).collect();
        if self.train && self.episodes.is_none() {
            order.shuffle(&mut crate::seed::rng(self.images.seed, &format!("shuffle/{epoch}")));
        }
        Ok((items, order))
    }

    /// Batches of one epoch; `epoch` varies the shuffle (train), the augmentation and the
    /// pair redraw when enabled. Dropping the iterator early stops the workers.
    pub fn iter(&self, epoch: usize) -> Result<BatchIter<'_>> {
        self.iter_with(epoch, self.train)
    }

    /// The items in the loader's order with the training augmentation of pass `n`, for
    /// test-time augmentation (fastai's `tta` puts the training transforms on the
    /// validation set); its random draws are apart from every training epoch's.
    pub fn iter_augmented(&self, n: usize) -> Result<BatchIter<'_>> {
        self.iter_with(TTA_EPOCHS + n, true)
    }

    fn iter_with(&self, epoch: usize, augment: bool) -> Result<BatchIter<'_>> {
        let (items, order) = self.plan(epoch)?;
        let batches: Vec<Vec<usize>> = order.chunks(self.bs).filter(|c| !self.train || c.len() == self.bs).map(<[usize]>::to_vec).collect();
        let (tx, rx) = crossbeam_channel::bounded(self.prefetch.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let (images, pool, stop2, train, n_inputs) = (self.images.clone(), self.pool.clone(), stop.clone(), augment, self.n_inputs);
        let (shape, device) = (self.pixel_shape(), self.device);
        let handle = std::thread::Builder::new()
            .name("runner-loader".into())
            .spawn(move || {
                // Two batches render at once, so that the workers start on the next batch while
                // one finishes and is staged (one at a time left them idle at every boundary).
                let mut rendering = std::collections::VecDeque::new();
                let mut batches = batches.into_iter();
                loop {
                    while rendering.len() < IN_FLIGHT {
                        let Some(b) = batches.next() else { break };
                        let (done, rendered) = crossbeam_channel::bounded(1);
                        let (images, items, stop) = (images.clone(), items.clone(), stop2.clone());
                        pool.spawn(move || {
                            if !stop.load(Ordering::Relaxed) {
                                let _ = done.send(produce(&images, &items, &b, n_inputs, epoch, train).and_then(|r| stage(r, shape, device)));
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
        let (items, order) = self.plan(epoch)?;
        let picked: Vec<usize> = order.into_iter().take(n).collect();
        self.render(&items, &picked, epoch)
    }

    /// Items by their place in the loader's list (the validation order; an episodic
    /// loader's by their place among the targets, its queries), as epoch 0 prepares them
    /// (for plot_top_losses).
    pub fn items_at(&self, picked: &[usize]) -> Result<Vec<(Vec<Pixels>, i64)>> {
        let mapped: Vec<usize>;
        let picked = match &self.episodes {
            Some(e) => {
                mapped = picked.iter().map(|&i| e.layout.item_of_query(i)).collect();
                &mapped[..]
            }
            None => picked,
        };
        if let Some(i) = picked.iter().find(|&&i| i >= self.items.len()) {
            bail!("item {i} is out of range: the loader has {} items", self.items.len());
        }
        self.render(&self.items, picked, 0)
    }

    fn render(&self, items: &[Item], picked: &[usize], epoch: usize) -> Result<Vec<(Vec<Pixels>, i64)>> {
        let (images, n_inputs, train) = (&self.images, self.n_inputs, self.train);
        self.pool.install(|| {
            picked
                .par_iter()
                .map(|&i| Ok((images.render(&items[i], n_inputs, i, epoch, train)?, items[i].y)))
                .collect::<Vec<Result<_>>>()
                .into_iter()
                .collect()
        })
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
        let y = match &self.episodes {
            Some(e) => Tensor::f_from_slice(&e.layout.targets())?.f_to_device(self.device)?,
            None => to_device(&host.y, self.device)?,
        };
        Ok(Batch { xs, y })
    }
}

/// A batch on the host: u8 NHWC pixels per input and int64 classes, page-locked when
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
fn stage(raw: RawBatch, pixel: [i64; 3], device: Device) -> Result<HostBatch> {
    let n = raw.y.len() as i64;
    let shape = [n, pixel[0], pixel[1], pixel[2]];
    let xs = raw.xs.iter().map(|b| host_tensor(b, &shape, device)).collect::<Result<Vec<_>>>()?;
    Ok(HostBatch { xs, y: host_tensor(&raw.y, &[n], device)? })
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

/// The training and validation loaders of one data set, with what a learner needs to know.
pub struct DataLoaders {
    pub train: DataLoader,
    pub valid: DataLoader,
    /// Class names; for pairs `["different", "same"]` (index 1 = same).
    pub vocab: Vec<String>,
    /// 1 (plain images) or 2 (pairs).
    pub n_inputs: usize,
    pub device: Device,
    pub size: u32,
    pub channels: usize,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Items dropped by `skip_bad`.
    pub skipped: usize,
    /// Episodic loaders' layout (batches are episodes, targets episode-local; `vocab`
    /// keeps the data's classes).
    pub episodes: Option<EpisodeLayout>,
}

/// What `DataLoaders::build` is given: images, items per side, classes.
pub struct ItemSet {
    pub paths: Vec<PathBuf>,
    pub train: Vec<Item>,
    pub valid: Vec<Item>,
    pub vocab: Vec<String>,
    pub n_inputs: usize,
    /// For pairs with redraw: the class of each training row's first image.
    pub train_classes: Option<Vec<String>>,
}

impl DataLoaders {
    pub fn build(set: ItemSet, cfg: &LoaderConfig) -> Result<DataLoaders> {
        let ItemSet { paths, mut train, mut valid, vocab, n_inputs, mut train_classes } = set;
        if cfg.size == 0 || cfg.bs == 0 || cfg.val_bs == Some(0) || cfg.num_workers == 0 {
            bail!("size, bs, val_bs and num_workers must be at least 1");
        }
        if cfg.channels != 1 && cfg.channels != 3 {
            bail!("channels must be 1 or 3, got {}", cfg.channels);
        }
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(cfg.num_workers)
                .thread_name(|i| format!("runner-data-{i}"))
                .build()
                .context("cannot start the data worker threads")?,
        );
        let mut skipped = 0;
        let mut cache = None;
        if cfg.cache || cfg.skip_bad {
            let decoded: Vec<Result<Pixels>> = pool.install(|| {
                paths
                    .par_iter()
                    .map(|p| decode_for(p, cfg.channels, cfg.method, cfg.size).and_then(|px| shrink_for(px, cfg.method, cfg.size)))
                    .collect()
            });
            let bad: Vec<usize> = (0..paths.len()).filter(|&i| decoded[i].is_err()).collect();
            if let Some(&first) = bad.first() {
                if !cfg.skip_bad {
                    let e = decoded.into_iter().nth(first).and_then(Result::err).expect("a failed image");
                    bail!("{e:#} ({} unreadable image(s) in all; skip_bad: true drops them)", bad.len());
                }
                let ok = |it: &Item| it.ids[..n_inputs].iter().all(|id| bad.binary_search(id).is_err());
                let before = train.len() + valid.len();
                if let Some(c) = train_classes.as_mut() {
                    *c = train.iter().zip(c.iter()).filter(|(it, _)| ok(it)).map(|(_, c)| c.clone()).collect();
                }
                train.retain(ok);
                valid.retain(ok);
                skipped = before - train.len() - valid.len();
                tracing::warn!("skipped {skipped} item(s) with {} unreadable image(s), e.g. {}", bad.len(), paths[first].display());
            }
            if cfg.cache {
                cache = Some(decoded.into_iter().map(|r| r.unwrap_or(Pixels { width: 0, height: 0, channels: 0, data: vec![] })).collect());
            }
        }
        let bs_valid = cfg.val_bs.unwrap_or(cfg.bs);
        if train.len() < cfg.bs {
            bail!("the training set has {} item(s), fewer than bs {}: every batch would be dropped (drop_last); lower bs", train.len(), cfg.bs);
        }
        let images = Arc::new(Images {
            paths,
            cache,
            size: cfg.size,
            method: cfg.method,
            channels: cfg.channels,
            augment: cfg.augment.clone(),
            seed: cfg.seed,
        });
        let (mean, std) = match cfg.normalize {
            Normalize::Imagenet if cfg.channels == 1 => (vec![IMAGENET_MEAN.iter().sum::<f32>() / 3.0], vec![IMAGENET_STD.iter().sum::<f32>() / 3.0]),
            Normalize::Imagenet => (IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec()),
            Normalize::None => (vec![0.0; cfg.channels], vec![1.0; cfg.channels]),
            Normalize::Stats => pool.install(|| channel_stats(&images, &train, n_inputs))?,
        };
        let redraw = match (cfg.redraw, train_classes) {
            (Some(p), Some(classes)) => Some(Arc::new(Redraw::new(&train, &classes, p))),
            (Some(_), None) => bail!("redraw needs the pairs' classes (columns class1 and class2, as siamese_pairs makes them)"),
            (None, _) => None,
        };
        let c = cfg.channels as i64;
        let norm = |v: Vec<f32>| Tensor::f_from_slice(&v)?.f_view([1, c, 1, 1])?.f_to_device(cfg.device);
        let scale: Vec<f32> = std.iter().map(|s| 1.0 / (255.0 * s)).collect();
        let shift: Vec<f32> = mean.iter().zip(&std).map(|(m, s)| -m / s).collect();
        let loader = |items: Vec<Item>, is_train: bool, bs: usize| -> Result<DataLoader> {
            Ok(DataLoader {
                images: images.clone(),
                items: Arc::new(items),
                n_inputs,
                train: is_train,
                bs,
                redraw: if is_train { redraw.clone() } else { None },
                episodes: None,
                pool: pool.clone(),
                device: cfg.device,
                prefetch: cfg.prefetch,
                scale: norm(scale.clone())?,
                shift: norm(shift.clone())?,
            })
        };
        Ok(DataLoaders {
            train: loader(train, true, cfg.bs)?,
            valid: loader(valid, false, bs_valid)?,
            vocab,
            n_inputs,
            device: cfg.device,
            size: cfg.size,
            channels: cfg.channels,
            mean,
            std,
            skipped,
            episodes: None,
        })
    }

    /// Valid-mode transforms (centre crop, normalise) of arbitrary image files, as one NCHW
    /// batch on the device: for predict and the N-way one-shot evaluation.
    pub fn encode_files(&self, files: &[PathBuf]) -> Result<Tensor> {
        self.encode(files, &vec![0; files.len()], None)
    }

    /// `encode_files` with each image turned by `turns[i]` quarter turns (as `quarter_turns`
    /// rows are) and, for test-time augmentation pass `Some(n)`, the training augmentation.
    pub fn encode(&self, files: &[PathBuf], turns: &[u8], tta: Option<usize>) -> Result<Tensor> {
        if turns.len() != files.len() {
            bail!("{} files but {} quarter-turn counts", files.len(), turns.len());
        }
        let v = &self.valid;
        let img = &v.images;
        let render = |i: usize| -> Result<Pixels> {
            let mut px = load_resized(&files[i], img.channels, img.method, img.size, (0.5, 0.5))?;
            if turns[i] != 0 {
                px = px.rot90(turns[i]);
            }
            if let Some(n) = tta {
                img.augment.apply(&mut px, &mut crate::seed::rng(img.seed, &format!("tta/{n}/{i}")));
            }
            Ok(px)
        };
        let rendered: Vec<Result<Pixels>> = v.pool.install(|| (0..files.len()).into_par_iter().map(render).collect());
        let mut buf = Vec::with_capacity(files.len() * (img.size as usize).pow(2) * img.channels);
        for r in rendered {
            buf.extend_from_slice(&r?.data);
        }
        let [h, w, c] = v.pixel_shape();
        v.to_tensor(&host_tensor(&buf, &[files.len() as i64, h, w, c], v.device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{blocks, files, labels::Labeller, pairs, splitters};
    use std::path::Path;
    use tch::Kind;

    fn orl_pairs() -> crate::data::Table {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/orl_faces");
        let files = files::get_image_files(&[root]).unwrap().files;
        let labels: Vec<String> = files.iter().map(|f| Labeller::Parent(1).label(f).unwrap()).collect();
        let split = splitters::group_splitter(&labels, 0.2, 42).unwrap();
        pairs::siamese_pairs(&files, &labels, &split, 0.5, 42).unwrap().0
    }

    fn cfg(workers: usize) -> LoaderConfig {
        LoaderConfig {
            size: 24,
            bs: 16,
            channels: 1,
            num_workers: workers,
            augment: Augment {
                flip: true,
                rotate: 10.0,
                shear: 0.2,
                scale: 0.1,
                translate: 0.05,
                brightness: 0.1,
                contrast: 0.1,
                ..Augment::default()
            },
            ..LoaderConfig::default()
        }
    }

    fn epoch(dl: &DataLoader, e: usize) -> Vec<(Vec<Tensor>, Tensor)> {
        dl.iter(e).unwrap().map(|b| b.map(|b| (b.xs, b.y)).unwrap()).collect()
    }

    fn same(a: &[(Vec<Tensor>, Tensor)], b: &[(Vec<Tensor>, Tensor)]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.1.equal(&y.1) && x.0.iter().zip(&y.0).all(|(p, q)| p.equal(q)))
    }

    #[test]
    fn batches_are_identical_whatever_the_thread_count() {
        let t = orl_pairs();
        let one = blocks::pair_loaders(&t, &cfg(1)).unwrap();
        let two = blocks::pair_loaders(&t, &cfg(2)).unwrap();
        let three = blocks::pair_loaders(&t, &cfg(3)).unwrap();
        let e1 = epoch(&one.train, 1);
        assert!(same(&e1, &epoch(&two.train, 1)));
        assert!(same(&e1, &epoch(&three.train, 1)));
        assert!(same(&epoch(&one.valid, 0), &epoch(&two.valid, 0)));
        assert!(!same(&e1, &epoch(&one.train, 2)), "epochs differ (shuffle, augmentation)");
    }

    #[test]
    fn shapes_drop_last_and_valid_order() {
        let t = orl_pairs();
        let dls = blocks::pair_loaders(&t, &cfg(2)).unwrap();
        assert_eq!((dls.train.n_items(), dls.valid.n_items()), (320, 80));
        assert_eq!((dls.train.len(), dls.valid.len()), (20, 5));
        assert_eq!(dls.vocab, ["different", "same"]);
        let b = dls.train.iter(0).unwrap().next().unwrap().unwrap();
        assert_eq!(b.xs.len(), 2);
        assert_eq!(b.xs[0].size(), [16, 1, 24, 24]);
        assert_eq!(b.xs[0].kind(), Kind::Float);
        assert_eq!(b.y.kind(), Kind::Int64);
        let ys: Vec<i64> = epoch(&dls.valid, 0).iter().flat_map(|b| Vec::<i64>::try_from(&b.1).unwrap()).collect();
        let want: Vec<i64> = (0..t.len()).filter(|&i| t.bools("is_valid").unwrap()[i]).map(|i| t.bools("label").unwrap()[i] as i64).collect();
        assert_eq!(ys, want, "valid keeps the table's order");
        let mut c = cfg(1);
        c.bs = 400;
        let e = blocks::pair_loaders(&t, &c).err().unwrap().to_string();
        assert!(e.contains("fewer than bs 400"), "{e}");
    }

    #[test]
    fn stats_normalisation_centres_the_data_and_cache_keeps_batches() {
        let t = orl_pairs();
        let mut c = cfg(2);
        c.normalize = Normalize::Stats;
        c.augment = Augment::default();
        let dls = blocks::pair_loaders(&t, &c).unwrap();
        let x = Tensor::cat(&epoch(&dls.train, 0).iter().map(|b| b.0[0].shallow_clone()).collect::<Vec<_>>(), 0);
        assert!(x.mean(Kind::Double).double_value(&[]).abs() < 0.1);
        assert!((x.std(true).double_value(&[]) - 1.0).abs() < 0.1);
        c.cache = true;
        c.size = 112; // no shrinking: the cache holds exactly the decoded faces
        let cached = blocks::pair_loaders(&t, &c).unwrap();
        c.cache = false;
        let plain = blocks::pair_loaders(&t, &c).unwrap();
        assert!(same(&epoch(&cached.valid, 0), &epoch(&plain.valid, 0)));
    }

    #[test]
    fn redraw_gives_new_valid_pairs_each_epoch() {
        let t = orl_pairs();
        let mut c = cfg(2);
        c.redraw = Some(0.5);
        c.augment = Augment::default();
        let dls = blocks::pair_loaders(&t, &c).unwrap();
        let r = dls.train.redraw.as_ref().unwrap();
        let (a, _) = r.draw(42, 1);
        let (b, _) = r.draw(42, 2);
        assert_ne!(a, b);
        assert_eq!(a.len(), 320);
        let valid_ids: std::collections::BTreeSet<usize> = dls.valid.items.iter().flat_map(|i| i.ids).collect();
        for it in &a {
            assert_ne!(it.ids[0], it.ids[1], "no self pairs");
            assert!(!valid_ids.contains(&it.ids[1]), "partners stay in the training split");
        }
        assert_eq!(epoch(&dls.train, 1).len(), 20);
    }

    #[test]
    fn both_images_of_a_pair_share_the_random_crop() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/oxford-iiit-pet-sample/images");
        let paths: Vec<PathBuf> = files::get_image_files(&[root]).unwrap().files.into_iter().take(8).collect();
        let items: Vec<Item> = (0..8).map(|i| Item { ids: [i, i], y: 1, turns: 0 }).collect();
        let set =
            ItemSet { paths, train: items.clone(), valid: items, vocab: vec!["different".into(), "same".into()], n_inputs: 2, train_classes: None };
        let c = LoaderConfig { size: 16, bs: 8, num_workers: 2, ..LoaderConfig::default() };
        let dls = DataLoaders::build(set, &c).unwrap();
        let train = epoch(&dls.train, 0);
        assert!(train[0].0[0].equal(&train[0].0[1]), "same file, same crop fractions, same pixels");
        assert!(!train[0].0[0].equal(&epoch(&dls.train, 1)[0].0[0]), "the crop position changes with the epoch");
    }

    #[test]
    fn corrupt_image_is_named_or_skipped_and_counted() {
        let d = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/orl_faces/s1");
        let mut files = Vec::new();
        for i in 1..=9 {
            let f = d.path().join(format!("{i}.pgm"));
            std::fs::copy(src.join(format!("{i}.pgm")), &f).unwrap();
            files.push(f);
        }
        let bad = d.path().join("bad.pgm");
        std::fs::write(&bad, b"P5\n92 112\n255\nshort").unwrap();
        files.push(bad);
        let table = crate::data::Table::new(vec![
            ("file".into(), crate::data::table::Column::Str(files.iter().map(|f| f.display().to_string()).collect())),
            ("label".into(), crate::data::table::Column::Str((0..10).map(|i| format!("c{}", i % 2)).collect())),
            ("is_valid".into(), crate::data::table::Column::Bool((0..10).map(|i| i == 0).collect())),
        ])
        .unwrap();
        let mut c = cfg(2);
        c.bs = 3;
        let dls = blocks::image_loaders(&table, "file", "label", "is_valid", &c).unwrap();
        let e = dls.train.iter(0).unwrap().find_map(|b| b.err()).map(|e| format!("{e:#}")).unwrap();
        assert!(e.contains("bad.pgm"), "{e}");
        c.cache = true;
        let e = blocks::image_loaders(&table, "file", "label", "is_valid", &c).err().map(|e| format!("{e:#}")).unwrap();
        assert!(e.contains("bad.pgm") && e.contains("skip_bad"), "{e}");
        c.skip_bad = true;
        let dls = blocks::image_loaders(&table, "file", "label", "is_valid", &c).unwrap();
        assert_eq!((dls.skipped, dls.train.n_items()), (1, 8));
        assert_eq!(epoch(&dls.train, 0).len(), 2);
        let x = dls.encode_files(&files[..3]).unwrap();
        assert_eq!(x.size(), [3, 1, 24, 24]);
    }
}
