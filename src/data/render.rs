//! Per-item pixel work, run in the loader's worker threads: decode (or take from the
//! pixel cache), resize to the item size, augment down to the final size (presizing: the
//! item size may be larger), and gather a batch's u8 buffers; also the channel statistics
//! for `normalize: "stats"`. Each item's random choices come from (seed, epoch, index).
use super::augment::Augment;
use super::image::{load_resized, resize, Method};
use super::item::Item;
use super::pixel_cache::{PixelCache, Transform};
use super::pixels::Pixels;
use super::sampler::BatchPlan;
use anyhow::{Context, Result};
use rand::Rng;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

/// What the workers share: the image files, the optional pixel cache, the transforms.
pub(crate) struct Images {
    pub paths: Vec<PathBuf>,
    pub cache: Option<Arc<PixelCache>>,
    /// The final side of every image.
    pub size: u32,
    /// The side items are loaded at (fastai's item `Resize`): `size`, or larger for presizing.
    pub item_size: u32,
    pub method: Method,
    pub channels: usize,
    pub augment: Augment,
    pub seed: u64,
}

impl Images {
    /// The same transforms over other image files (uncached).
    pub fn with_paths(&self, paths: Vec<PathBuf>) -> Images {
        Images { paths, cache: None, augment: self.augment.clone(), ..*self }
    }

    /// Image `id` at the item size, the crop at `at` (fractions).
    pub fn sized(&self, id: usize, at: (f64, f64)) -> Result<Pixels> {
        match &self.cache {
            Some(c) => {
                let t = Transform { channels: self.channels, method: self.method, pad: self.augment.pad_mode, size: self.item_size };
                let stored = c.get(id).with_context(|| format!("{} could not be decoded", self.paths[id].display()))?;
                t.sized(stored, at).with_context(|| format!("cannot resize {}", self.paths[id].display()))
            }
            None => load_resized(&self.paths[id], self.channels, self.method, self.augment.pad_mode, self.item_size, at),
        }
    }

    /// An item at the final size, unaugmented: as it is, or resized from the item size.
    fn unaugmented(&self, px: Pixels) -> Result<Pixels> {
        if px.width == self.size && px.height == self.size {
            return Ok(px);
        }
        resize(&px, Method::Squish, self.augment.pad_mode, self.size, (0.5, 0.5))
    }

    /// The item's images for `epoch`: random crop position (shared by both images of a
    /// pair) and augmentation on train, centre crop and nothing else on valid.
    pub fn render(&self, item: &Item, n_inputs: usize, index: usize, epoch: usize, train: bool) -> Result<Vec<Pixels>> {
        let at = if train && self.method == Method::Crop {
            let mut r = crate::seed::rng(self.seed, &format!("crop/{epoch}/{index}"));
            (r.gen(), r.gen())
        } else {
            (0.5, 0.5)
        };
        (0..n_inputs)
            .map(|slot| {
                let mut px = self.sized(item.ids[slot], at)?;
                if item.turns != 0 {
                    px = px.rot90(item.turns);
                }
                if train && !self.augment.is_identity() {
                    return Ok(self.augment.apply(px, self.size, &mut crate::seed::rng(self.seed, &format!("aug/{epoch}/{index}/{slot}"))));
                }
                self.unaugmented(px)
            })
            .collect()
    }
}

/// u8 pixels of one batch, one buffer per input, NHWC, and its targets.
pub(crate) struct RawBatch {
    pub xs: Vec<Vec<u8>>,
    pub rows: usize,
    pub y: Vec<i64>,
}

/// Renders one planned batch in the pool; the first failing item (in batch order) is reported.
pub(crate) fn produce(images: &Images, plan: &BatchPlan, n_inputs: usize, epoch: usize, train: bool) -> Result<RawBatch> {
    let rendered: Vec<Result<Vec<Pixels>>> = plan.items.par_iter().map(|d| images.render(&d.item, n_inputs, d.key, epoch, train)).collect();
    let rows = plan.items.len();
    let mut xs: Vec<Vec<u8>> = (0..n_inputs).map(|_| Vec::with_capacity(rows * (images.size as usize).pow(2) * images.channels)).collect();
    for r in rendered {
        for (buf, px) in xs.iter_mut().zip(r?) {
            buf.extend_from_slice(&px.data);
        }
    }
    Ok(RawBatch { xs, rows, y: plan.targets.clone() })
}

/// Per-channel mean and std over up to 512 training images (valid-mode transforms).
pub(crate) fn channel_stats(images: &Images, train: &[Item], n_inputs: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let mut ids: Vec<usize> = train.iter().flat_map(|it| it.ids[..n_inputs].to_vec()).collect();
    ids.sort_unstable();
    ids.dedup();
    let step = ids.len().div_ceil(512).max(1);
    let picked: Vec<usize> = ids.into_iter().step_by(step).collect();
    let c = images.channels;
    let sums: Vec<Result<Vec<f64>>> = picked
        .par_iter()
        .map(|&id| {
            let px = images.unaugmented(images.sized(id, (0.5, 0.5))?)?;
            let mut s = vec![0f64; 2 * c];
            for p in px.data.chunks_exact(c) {
                for k in 0..c {
                    let v = p[k] as f64 / 255.0;
                    s[k] += v;
                    s[c + k] += v * v;
                }
            }
            Ok(s)
        })
        .collect();
    let mut total = vec![0f64; 2 * c];
    for s in sums {
        for (t, v) in total.iter_mut().zip(s?) {
            *t += v;
        }
    }
    let n = (picked.len() * (images.size as usize).pow(2)) as f64;
    let mean: Vec<f64> = total[..c].iter().map(|s| s / n).collect();
    let std: Vec<f32> = (0..c).map(|k| ((total[c + k] / n - mean[k] * mean[k]).max(0.0).sqrt().max(1e-6)) as f32).collect();
    Ok((mean.into_iter().map(|m| m as f32).collect(), std))
}
