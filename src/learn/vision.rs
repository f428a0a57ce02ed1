//! fastai's `vision_learner`: one call from loaders and an arch to a learner. The body is
//! the arch cut as its registry row says, the head is fastai's sized from the loaders
//! (n classes from the vocabulary, nf from the body), the splitter is the arch's, and a
//! body asked to start from pretrained weights must see images normalised as those
//! weights were trained (fastai adds that Normalize itself; here the loaders already
//! normalise, so other statistics are refused rather than silently trained on). Pair
//! loaders get the Siamese model of fastai's tutorial: the encoder on both images, the
//! two feature maps concatenated, then a two-class head.
use super::learner::{Learner, LearnerOptions, RunOut};
use crate::data::DataLoaders;
use crate::model::head::HeadSpec;
use crate::model::registry::Arch;
use crate::model::{BodySpec, Model, PairHeadSpec};
use anyhow::{bail, Result};
use std::rc::Rc;

/// What `vision_learner` builds over the body, besides the learner's own options.
#[derive(Debug, Clone)]
pub struct VisionOptions {
    /// The head's options (`lin_ftrs`, `ps`, ...); `nf` and `n_out` come from the body and loaders.
    pub head: HeadSpec,
    /// Whether the body was asked to start from pretrained weights (whether or not they could
    /// be had, so that a script behaves the same offline): the loaders must then normalise
    /// with the arch's statistics.
    pub pretrained: bool,
    pub learner: LearnerOptions,
}

/// Refuses loaders whose normalisation is not the one the arch's pretrained weights expect.
pub fn check_stats(dls: &DataLoaders, arch: &Arch) -> Result<()> {
    let close = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
    if !close(&dls.mean, &arch.stats.mean) || !close(&dls.std, &arch.stats.std) {
        bail!(
            "vision_learner: {}'s pretrained weights expect images normalised with {} statistics (mean {:?}, std {:?}), but the loaders normalise with mean {:?}, std {:?}: build the loaders with normalize: \"{}\" (the default), or pass pretrained: false to train from random weights",
            arch.name,
            arch.stats.name,
            arch.stats.mean,
            arch.stats.std,
            dls.mean,
            dls.std,
            arch.stats.name
        );
    }
    Ok(())
}

/// The model `vision_learner` builds for `dls` over `body`: a classifier of the loaders'
/// classes, or for pair loaders fastai's Siamese model (two classes, different and same).
pub fn vision_model(dls: &DataLoaders, body: &BodySpec, head: &HeadSpec) -> Result<Model> {
    if dls.episodes.is_some() {
        bail!("vision_learner builds classifiers and Siamese models; episode loaders feed a protonet: use learner(dls, protonet(body, #{{ n_way, k_shot }}))");
    }
    let nf = body.out_channels();
    match dls.n_inputs {
        1 => Model::classifier(body, &HeadSpec { nf, n_out: dls.vocab.len() as i64, ..head.clone() }, dls.device),
        2 => Model::siamese(body, &PairHeadSpec::Concat(HeadSpec { nf: 2 * nf, n_out: 2, ..head.clone() }), dls.device),
        n => bail!("vision_learner takes loaders of one image per item, or pairs; these give {n}"),
    }
}

/// fastai's `vision_learner(dls, arch)`: the model `vision_model` builds, in a learner
/// with `opts.learner` (whose splitter should be `Arch`, fastai's choice).
pub fn vision_learner(dls: Rc<DataLoaders>, body: &BodySpec, opts: VisionOptions, out: RunOut, seed: u64) -> Result<Learner> {
    if let (true, BodySpec::Arch { arch, .. }) = (opts.pretrained, body) {
        check_stats(&dls, arch)?;
    }
    let model = vision_model(&dls, body, &opts.head)?;
    Learner::new(Rc::new(model), dls, opts.learner, out, seed)
}
