//! Test-time augmentation (fastai's `learn.tta`): predict on `n` augmented versions of each
//! input (the training transforms) and on the plain one, then blend them as fastai does:
//! `lerp(mean of augmented, plain, beta)`, so `beta = 1` is the plain prediction alone.
use super::data::LearnData;
use super::Learner;
use crate::model::Model;
use anyhow::{bail, Result};
use std::path::PathBuf;
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tta {
    /// Augmented passes (0: no augmentation, the plain prediction).
    pub n: usize,
    /// Weight of the plain prediction.
    pub beta: f64,
}

impl Tta {
    pub const NONE: Tta = Tta { n: 0, beta: 1.0 };

    pub fn new(n: usize, beta: f64) -> Result<Tta> {
        if !(0.0..=1.0).contains(&beta) {
            bail!("tta beta must be in [0, 1], got {beta}");
        }
        Ok(Tta { n, beta })
    }

    /// Blends the plain value with the augmented ones (`aug(i)` for pass i).
    fn blend(&self, plain: Tensor, mut aug: impl FnMut(usize) -> Result<Tensor>) -> Result<Tensor> {
        if self.n == 0 {
            return Ok(plain);
        }
        let mut sum = aug(0)?;
        for i in 1..self.n {
            sum += aug(i)?;
        }
        Ok((sum / self.n as f64).lerp(&plain, self.beta))
    }
}

/// Embeddings `[len, D]` of image files (each turned by its quarter turns), prepared as
/// `data` prepares its validation set, in batches of 256, averaged over `tta`.
pub fn embed_files(model: &Model, data: &dyn LearnData, files: &[PathBuf], turns: &[u8], tta: Tta) -> Result<Tensor> {
    let pass = |aug: Option<usize>| -> Result<Tensor> {
        let mut out = Vec::new();
        for (f, t) in files.chunks(256).zip(turns.chunks(256)) {
            let x = data.encode(f, t, aug)?;
            out.push(tch::no_grad(|| model.embedding(&x, false)));
        }
        if out.is_empty() {
            bail!("no images to embed");
        }
        Ok(Tensor::cat(&out, 0))
    };
    tta.blend(pass(None)?, |i| pass(Some(i)))
}

/// fastai's `learn.tta()`: class probabilities over the validation set, blended over `tta`
/// passes of the training augmentation, and the targets.
pub fn learner_tta(learn: &Learner, tta: Tta) -> Result<(Tensor, Tensor)> {
    let (plain, targets) = learn.get_preds()?;
    let probs = tta.blend(plain, |i| {
        let mut probs = Vec::new();
        tch::no_grad(|| -> Result<()> {
            for b in learn.data.valid_augmented(i)? {
                probs.push(learn.probs(&learn.forward(&b?.xs, false)?));
            }
            Ok(())
        })?;
        Ok(Tensor::cat(&probs, 0))
    })?;
    Ok((probs, targets))
}
