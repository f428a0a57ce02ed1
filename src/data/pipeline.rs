//! The item pipeline on its own: what turns one image file into a model input (decode,
//! resize by the method to the size, channels, normalisation), as the validation loader
//! applies it. Exported learners keep it, and loaders built from it alone (no items, no
//! training data) prepare images for predictions exactly as the training run's loaders did.
use super::augment::Augment;
use super::dataloaders::{worker_pool, DataLoaders, Samplers};
use super::image::{Method, PadMode};
use super::loader::Renderer;
use super::render::Images;
use super::sampler::SequentialSampler;
use super::targets::{TargetKind, Targets};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tch::Device;

/// The validation transforms of a data set's loaders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemPipeline {
    /// Side in pixels after resizing.
    pub size: u32,
    /// The side an item is resized to first when presizing (its centre then resized to
    /// `size`, as validation does); None: straight to `size`.
    #[serde(default)]
    pub item_size: Option<u32>,
    pub method: Method,
    /// How `pad` fills the border.
    pub pad_mode: PadMode,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Per-channel normalisation, `(x / 255 - mean) / std`.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl DataLoaders {
    /// The pipeline its validation loader applies to an item.
    pub fn pipeline(&self) -> ItemPipeline {
        let images = self.valid.images();
        ItemPipeline {
            size: images.size,
            item_size: (images.item_size != images.size).then_some(images.item_size),
            method: images.method,
            pad_mode: images.augment.pad_mode,
            channels: images.channels,
            mean: self.mean.clone(),
            std: self.std.clone(),
        }
    }

    /// Loaders without items that prepare image files through `pipeline` (for predictions
    /// of a loaded learner): targets of `kind`, `vocab` names the outputs (classes, labels
    /// or numbers), `n_inputs` images make an item.
    pub fn for_inference(pipeline: &ItemPipeline, kind: TargetKind, vocab: Vec<String>, n_inputs: usize, device: Device) -> Result<DataLoaders> {
        let p = pipeline;
        if p.size == 0 || !matches!(p.channels, 1 | 3) || p.mean.len() != p.channels || p.std.len() != p.channels {
            bail!("an item pipeline needs a size, 1 or 3 channels and a mean and std per channel, got {p:?}");
        }
        if p.item_size.is_some_and(|s| s < p.size) {
            bail!("an item pipeline's item_size must be at least its size, got {p:?}");
        }
        if p.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) || p.mean.iter().any(|m| !m.is_finite()) {
            bail!("an item pipeline's mean must be finite and its std positive, got mean {:?} std {:?}", p.mean, p.std);
        }
        let images = Images {
            paths: vec![],
            cache: None,
            size: p.size,
            item_size: p.item_size.unwrap_or(p.size),
            method: p.method,
            channels: p.channels,
            augment: Augment { pad_mode: p.pad_mode, ..Augment::default() },
            seed: 0,
        };
        let targets = Targets::without_rows(kind, vocab.len());
        let r = Renderer {
            images: Arc::new(images),
            targets: Arc::new(targets.clone()),
            n_inputs,
            pool: worker_pool(crate::threads::count())?,
            device,
            prefetch: 1,
            mean: p.mean.clone(),
            std: p.std.clone(),
        };
        let none = || Arc::new(SequentialSampler::new(vec![], 1));
        DataLoaders::rendered_by(r, Samplers { train: none(), valid: none() }, vocab, targets, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{blocks, files, LoaderConfig, Table};
    use std::path::{Path, PathBuf};

    /// Loaders made from the pipeline alone encode files as the loaders it came from do,
    /// bit for bit, whatever the method.
    #[test]
    fn inference_loaders_encode_as_the_originals() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/oxford-iiit-pet-sample/images");
        let files: Vec<PathBuf> = files::get_image_files(&[root]).unwrap().files.into_iter().take(6).collect();
        let col = |v: Vec<String>| crate::data::table::Column::Str(v);
        let table = Table::new(vec![
            ("file".into(), col(files.iter().map(|f| f.display().to_string()).collect())),
            ("label".into(), col((0..6).map(|i| format!("c{}", i % 2)).collect())),
            ("is_valid".into(), crate::data::table::Column::Bool((0..6).map(|i| i >= 4).collect())),
        ])
        .unwrap();
        for (method, item_size) in [(Method::Crop, None), (Method::Pad, None), (Method::Squish, None), (Method::Crop, Some(40))] {
            let cfg = LoaderConfig { size: 24, item_size, bs: 2, method, num_workers: 2, ..LoaderConfig::default() };
            let dls = blocks::image_loaders(&table, &blocks::TableColumns::default(), &cfg).unwrap();
            let p = dls.pipeline();
            assert_eq!((p.size, p.item_size, p.method, p.channels), (24, item_size, method, 3));
            let back: ItemPipeline = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
            let inf = DataLoaders::for_inference(&back, TargetKind::Classes, dls.vocab.clone(), 1, Device::Cpu).unwrap();
            assert!(inf.encode_files(&files).unwrap().equal(&dls.encode_files(&files).unwrap()), "{method:?}");
            assert_eq!((inf.train.n_items(), inf.valid.n_items()), (0, 0));
        }
        let bad = ItemPipeline {
            size: 8,
            item_size: None,
            method: Method::Crop,
            pad_mode: PadMode::Reflection,
            channels: 3,
            mean: vec![0.5; 3],
            std: vec![0.0; 3],
        };
        assert!(DataLoaders::for_inference(&bad, TargetKind::Classes, vec![], 1, Device::Cpu).err().unwrap().to_string().contains("std positive"));
    }
}
