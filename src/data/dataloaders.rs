//! A data set's training and validation loaders, built from its items: fastai's
//! `DataLoaders`. Building checks the settings, starts the worker pool, opens (or builds)
//! the pixel cache or decodes ahead for `skip_bad`, and computes the normalisation; which items make each batch is
//! left to the samplers the caller chooses from the items that survived.
use super::augment::Augment;
use super::image::{decode_for, Method};
use super::item::Item;
use super::loader::{DataLoader, Renderer};
use super::pixel_cache::{PixelCache, Transform};
use super::render::{channel_stats, Images};
use super::sampler::{EpisodeLayout, RandomSampler, Sampler, SequentialSampler};
use super::targets::Targets;
use crate::opts::Choice;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use tch::{Device, Tensor};

/// The pixel cache folder's default bound, in GB.
pub const DEFAULT_CACHE_MAX_GB: f64 = 20.0;

pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

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

impl Choice for Normalize {
    fn name(&self) -> &'static str {
        match self {
            Normalize::Imagenet => "imagenet",
            Normalize::Stats => "stats",
            Normalize::None => "none",
        }
    }
}

crate::options! {
    /// How a data set's loaders are built: what every image loader function takes.
    #[derive(Clone, Debug)]
    pub struct LoaderConfig {
        /// image side in pixels after resizing
        opt size: u32 = 224,
        /// presizing (fastai's item_tfms=Resize(460)): items are loaded at this larger side, then augmentation and the resize to size are one resample
        opt item_size: Option<u32> = None,
        /// resize method: crop (random on training, centre on validation), pad or squish
        opt method: Method = Method::Crop,
        /// imagenet statistics, stats (of up to 512 training images) or none (only / 255)
        opt normalize: Normalize = Normalize::Imagenet,
        /// 1 (grey) or 3 (RGB)
        opt channels: usize = 3,
        /// The training images' random changes (and the pad mode); its options are these loaders'.
        flat augment: Augment = Augment::default(),
        /// serve images from the pixel cache on disk (decoded and resized once, shared by runs; see the README)
        opt cache: bool = false,
        /// the most the pixel cache folder may hold on disk, in GB; a cache that would not fit is not written
        opt cache_max_gb: f64 = DEFAULT_CACHE_MAX_GB,
        /// skip (and count) images that fail to decode instead of stopping
        opt skip_bad: bool = false,
        /// decoding threads (default: the run's --threads, see the README)
        opt num_workers: usize = crate::threads::count() => "the run's threads",
        /// the seed of this step's random choices
        opt seed: u64 = crate::seed::DEFAULT_SEED => "the run's seed",
        /// batch size
        opt bs: usize = 64,
        /// validation batch size (default: bs)
        opt val_bs: Option<usize> = None,
        /// Where batches are sent.
        field device: Device = Device::Cpu,
        /// Redraw the training pairs every epoch after the first, with this `p_same`.
        field redraw: Option<f64> = None,
        /// Batches prepared ahead of the consumer.
        field prefetch: usize = 4,
        /// Where pixel caches live (default: `pixels/` in the runner's cache folder).
        field cache_dir: PathBuf = super::pixel_cache::default_dir(),
    }
}

impl LoaderConfig {
    /// The side items are loaded at: `item_size` when presizing, else `size`.
    pub fn item_side(&self) -> u32 {
        self.item_size.unwrap_or(self.size)
    }
}

/// The training and validation loaders of one data set, with what a learner needs to know.
pub struct DataLoaders {
    pub train: DataLoader,
    pub valid: DataLoader,
    /// Class names; for pairs `["different", "same"]` (index 1 = same); for label sets
    /// every label; for numbers the label columns' names (one per output).
    pub vocab: Vec<String>,
    /// What items are labelled with: classes, numbers or label sets.
    pub targets: Targets,
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
    pub targets: Targets,
    pub n_inputs: usize,
}

/// The items left after `skip_bad`, for the samplers: `train_rows[k]` is the place in
/// the `ItemSet`'s training items of `train[k]`.
pub struct Kept {
    pub train: Vec<Item>,
    pub valid: Vec<Item>,
    pub train_rows: Vec<usize>,
}

/// The samplers of the two loaders.
pub struct Samplers {
    pub train: Arc<dyn Sampler>,
    pub valid: Arc<dyn Sampler>,
}

impl Samplers {
    /// fastai's defaults: training shuffled each epoch with `drop_last`, validation in order.
    pub fn shuffled(kept: Kept, cfg: &LoaderConfig) -> Samplers {
        Samplers {
            train: Arc::new(RandomSampler::new(kept.train, cfg.bs, cfg.seed)),
            valid: Arc::new(SequentialSampler::new(kept.valid, cfg.val_bs.unwrap_or(cfg.bs))),
        }
    }
}

/// The worker threads that decode, augment and collate items.
pub(crate) fn worker_pool(n: usize) -> Result<Arc<rayon::ThreadPool>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(n).thread_name(|i| format!("runner-data-{i}")).build();
    Ok(Arc::new(pool.context("cannot start the data worker threads")?))
}

impl DataLoaders {
    /// Loaders over `set`, their batches planned by the samplers `samplers` makes of the
    /// items that survive `skip_bad`.
    pub fn build(set: ItemSet, cfg: &LoaderConfig, samplers: impl FnOnce(Kept) -> Result<Samplers>) -> Result<DataLoaders> {
        let ItemSet { paths, train, valid, vocab, targets, n_inputs } = set;
        if cfg.size == 0 || cfg.bs == 0 || cfg.val_bs == Some(0) || cfg.num_workers == 0 {
            bail!("size, bs, val_bs and num_workers must be at least 1");
        }
        if cfg.channels != 1 && cfg.channels != 3 {
            bail!("channels must be 1 or 3, got {}", cfg.channels);
        }
        if cfg.item_side() < cfg.size {
            bail!("item_size {} is smaller than size {}: presizing loads items larger than the final size", cfg.item_side(), cfg.size);
        }
        cfg.augment.check()?;
        let pool = worker_pool(cfg.num_workers)?;
        let (kept, cache, skipped) = decode_ahead(&paths, train, valid, n_inputs, cfg, &pool)?;
        if kept.train.len() < cfg.bs {
            bail!("the training set has {} item(s), fewer than bs {}: every batch would be dropped (drop_last); lower bs", kept.train.len(), cfg.bs);
        }
        let images = Arc::new(Images {
            paths,
            cache: cache.map(Arc::new),
            size: cfg.size,
            item_size: cfg.item_side(),
            method: cfg.method,
            channels: cfg.channels,
            augment: cfg.augment.clone(),
            seed: cfg.seed,
        });
        let (mean, std) = match cfg.normalize {
            Normalize::Imagenet if cfg.channels == 1 => (vec![IMAGENET_MEAN.iter().sum::<f32>() / 3.0], vec![IMAGENET_STD.iter().sum::<f32>() / 3.0]),
            Normalize::Imagenet => (IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec()),
            Normalize::None => (vec![0.0; cfg.channels], vec![1.0; cfg.channels]),
            Normalize::Stats => pool.install(|| channel_stats(&images, &kept.train, n_inputs))?,
        };
        let samplers = samplers(kept)?;
        let r = Renderer { images, targets: Arc::new(targets.clone()), n_inputs, pool, device: cfg.device, prefetch: cfg.prefetch, mean, std };
        DataLoaders::rendered_by(r, samplers, vocab, targets, skipped)
    }

    /// The loaders whose batches `r` renders from the samplers' plans: what `build` makes of
    /// a data set, and `for_inference` of a stored pipeline with no items.
    pub(crate) fn rendered_by(r: Renderer, samplers: Samplers, vocab: Vec<String>, targets: Targets, skipped: usize) -> Result<DataLoaders> {
        Ok(DataLoaders {
            train: DataLoader::new(&r, samplers.train, true)?,
            valid: DataLoader::new(&r, samplers.valid, false)?,
            vocab,
            targets,
            n_inputs: r.n_inputs,
            device: r.device,
            size: r.images.size,
            channels: r.images.channels,
            mean: r.mean,
            std: r.std,
            skipped,
            episodes: None,
        })
    }

    /// Rank `rank`'s share of both loaders in a data-parallel group of `world` processes
    /// (see `ShardSampler`): `bs` stays the batch of one process, so one step of the group
    /// trains on `bs * world` items.
    pub fn shard(&self, rank: usize, world: usize) -> Result<DataLoaders> {
        let train = self.train.shard(rank, world)?;
        if train.is_empty() {
            bail!(
                "the training set has {} item(s), fewer than one batch of {} on each of {world} processes: lower bs",
                self.train.n_items(),
                self.train.batch_size()
            );
        }
        Ok(DataLoaders {
            valid: self.valid.shard(rank, world)?,
            train,
            vocab: self.vocab.clone(),
            targets: self.targets.clone(),
            n_inputs: self.n_inputs,
            device: self.device,
            size: self.size,
            channels: self.channels,
            mean: self.mean.clone(),
            std: self.std.clone(),
            skipped: self.skipped,
            episodes: None,
        })
    }

    /// Valid-mode transforms (centre crop, normalise) of arbitrary image files, as one NCHW
    /// batch on the device: for predict and the N-way one-shot evaluation.
    pub fn encode_files(&self, files: &[PathBuf]) -> Result<Tensor> {
        self.encode(files, &vec![0; files.len()], None)
    }

    /// `encode_files` with each image turned by `turns[i]` quarter turns and, for test-time
    /// augmentation pass `Some(n)`, the training transforms of that pass.
    pub fn encode(&self, files: &[PathBuf], turns: &[u8], tta: Option<usize>) -> Result<Tensor> {
        self.valid.render_files(files, turns, tta)
    }
}

/// For the cache or `skip_bad`: opens the pixel cache (building it on first use) or,
/// uncached, decodes every image once up front; drops the items of unreadable images when
/// `skip_bad` (or names the first).
fn decode_ahead(
    paths: &[PathBuf],
    train: Vec<Item>,
    valid: Vec<Item>,
    n_inputs: usize,
    cfg: &LoaderConfig,
    pool: &rayon::ThreadPool,
) -> Result<(Kept, Option<PixelCache>, usize)> {
    let all = Kept { train_rows: (0..train.len()).collect(), train, valid };
    let transform = Transform { channels: cfg.channels, method: cfg.method, pad: cfg.augment.pad_mode, size: cfg.item_side() };
    let cache =
        if cfg.cache { PixelCache::open_or_build(&cfg.cache_dir, (cfg.cache_max_gb.max(0.0) * 1e9) as u64, paths, transform, pool)? } else { None };
    let bad: Vec<usize> = match &cache {
        Some(c) => c.unreadable(),
        None if cfg.skip_bad => pool.install(|| {
            (0..paths.len()).into_par_iter().filter(|&i| decode_for(&paths[i], cfg.channels, cfg.method, cfg.item_side()).is_err()).collect()
        }),
        None => vec![],
    };
    let mut kept = all;
    let mut skipped = 0;
    if let Some(&first) = bad.first() {
        if !cfg.skip_bad {
            let e = transform.stored(&paths[first]).err().unwrap_or_else(|| anyhow::anyhow!("cannot read {}", paths[first].display()));
            bail!("{e:#} ({} unreadable image(s) in all; skip_bad: true drops them)", bad.len());
        }
        let ok = |it: &Item| it.ids[..n_inputs].iter().all(|id| bad.binary_search(id).is_err());
        let before = kept.train.len() + kept.valid.len();
        (kept.train_rows, kept.train) = kept.train_rows.into_iter().zip(kept.train).filter(|(_, it)| ok(it)).unzip();
        kept.valid.retain(ok);
        skipped = before - kept.train.len() - kept.valid.len();
        tracing::warn!("skipped {skipped} item(s) with {} unreadable image(s), e.g. {}", bad.len(), paths[first].display());
    }
    Ok((kept, cache, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::loader::DataLoader;
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
    fn stats_normalisation_centres_the_data() {
        let t = orl_pairs();
        let mut c = cfg(2);
        c.normalize = Normalize::Stats;
        c.augment = Augment::default();
        let dls = blocks::pair_loaders(&t, &c).unwrap();
        let x = Tensor::cat(&epoch(&dls.train, 0).iter().map(|b| b.0[0].shallow_clone()).collect::<Vec<_>>(), 0);
        assert!(x.mean(Kind::Double).double_value(&[]).abs() < 0.1);
        assert!((x.std(true).double_value(&[]) - 1.0).abs() < 0.1);
    }

    #[test]
    fn epochs_from_the_pixel_cache_equal_uncached_ones() {
        let t = orl_pairs();
        let d = tempfile::tempdir().unwrap();
        for method in [Method::Squish, Method::Crop] {
            // Random crops, flips and warps on top of the cached pixels.
            let mut c = LoaderConfig { method, cache_dir: d.path().to_path_buf(), ..cfg(2) };
            c.augment.flip = true;
            c.augment.rotate = 10.0;
            let plain = blocks::pair_loaders(&t, &c).unwrap();
            c.cache = true;
            let cached = blocks::pair_loaders(&t, &c).unwrap();
            let again = blocks::pair_loaders(&t, &c).unwrap();
            for e in 0..2 {
                assert!(same(&epoch(&cached.train, e), &epoch(&plain.train, e)), "{method:?} training epoch {e}");
                assert!(same(&epoch(&again.train, e), &epoch(&plain.train, e)), "{method:?} from the file built before, epoch {e}");
            }
            assert!(same(&epoch(&cached.valid, 0), &epoch(&plain.valid, 0)), "{method:?} validation");
        }
        assert_eq!(std::fs::read_dir(d.path()).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "px")).count(), 2);
    }

    #[test]
    fn presized_epochs_are_deterministic_and_cached_equal_uncached() {
        // fastai's presizing: items at 40 px, aug_transforms' crop, warp and lighting down to 24.
        let t = orl_pairs();
        let d = tempfile::tempdir().unwrap();
        let aug = crate::data::augment::AugTransforms { min_scale: 0.75, ..Default::default() }.augment();
        let c = LoaderConfig { item_size: Some(40), augment: aug, cache_dir: d.path().to_path_buf(), ..cfg(1) };
        let plain = blocks::pair_loaders(&t, &c).unwrap();
        let three = blocks::pair_loaders(&t, &LoaderConfig { num_workers: 3, ..c.clone() }).unwrap();
        let cached = blocks::pair_loaders(&t, &LoaderConfig { cache: true, ..c.clone() }).unwrap();
        let e1 = epoch(&plain.train, 1);
        assert_eq!(e1[0].0[0].size(), [16, 1, 24, 24]);
        assert!(same(&e1, &epoch(&three.train, 1)), "thread count");
        assert!(same(&e1, &epoch(&cached.train, 1)), "pixel cache");
        assert!(same(&epoch(&plain.valid, 0), &epoch(&cached.valid, 0)));
        assert!(!same(&e1, &epoch(&plain.train, 2)));
        let e = blocks::pair_loaders(&t, &LoaderConfig { item_size: Some(16), ..c.clone() }).err().unwrap().to_string();
        assert!(e.contains("item_size 16 is smaller than size 24"), "{e}");
    }

    #[test]
    fn redraw_gives_new_valid_pairs_each_epoch() {
        let t = orl_pairs();
        let mut c = cfg(2);
        c.redraw = Some(0.5);
        c.augment = Augment::default();
        let dls = blocks::pair_loaders(&t, &c).unwrap();
        let items = |e: usize| -> Vec<Item> { dls.train.sampler().plan(e).unwrap().into_iter().flat_map(|p| p.items).map(|d| d.item).collect() };
        let (a, b) = (items(1), items(2));
        assert_ne!(a, b);
        assert_eq!(a.len(), 320);
        let valid_ids: std::collections::BTreeSet<usize> =
            dls.valid.sampler().plan(0).unwrap().into_iter().flat_map(|p| p.items).flat_map(|d| d.item.ids).collect();
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
        let set = ItemSet {
            paths,
            train: items.clone(),
            valid: items,
            vocab: vec!["different".into(), "same".into()],
            targets: Targets::classes(2),
            n_inputs: 2,
        };
        let c = LoaderConfig { size: 16, bs: 8, num_workers: 2, ..LoaderConfig::default() };
        let dls = DataLoaders::build(set, &c, |kept| Ok(Samplers::shuffled(kept, &c))).unwrap();
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
        let mut c = LoaderConfig { bs: 3, cache_dir: d.path().join("pixels"), ..cfg(2) };
        let dls = blocks::image_loaders(&table, &blocks::TableColumns::default(), &c).unwrap();
        let e = dls.train.iter(0).unwrap().find_map(|b| b.err()).map(|e| format!("{e:#}")).unwrap();
        assert!(e.contains("bad.pgm"), "{e}");
        c.cache = true;
        let e = blocks::image_loaders(&table, &blocks::TableColumns::default(), &c).err().map(|e| format!("{e:#}")).unwrap();
        assert!(e.contains("bad.pgm") && e.contains("skip_bad"), "{e}");
        c.skip_bad = true;
        let dls = blocks::image_loaders(&table, &blocks::TableColumns::default(), &c).unwrap();
        assert_eq!((dls.skipped, dls.train.n_items()), (1, 8));
        assert_eq!(epoch(&dls.train, 0).len(), 2);
        let x = dls.encode_files(&files[..3]).unwrap();
        assert_eq!(x.size(), [3, 1, 24, 24]);
    }
}
