//! What to build as a model's body (encoder): an arch of the registry (a ResNet, a
//! ConvNeXt) cut as fastai cuts it, with the weights it starts from, or a small convnet;
//! with the checks that belong to the body, the input it takes and the channels it gives
//! a head, so that every model kind asks the same questions of it.
use super::convnet::{self, ConvNetSpec};
use super::layers::Seq;
use super::registry::{self, Arch, Family};
use super::{convnext, resnet};
use anyhow::{bail, Result};
use std::path::PathBuf;
use tch::nn;

/// What to build as the body (encoder); the model is created when body and head meet.
#[derive(Debug, Clone, PartialEq)]
pub enum BodySpec {
    /// A registry arch, its first `kept` children, loaded from `weights` (random init without).
    Arch {
        arch: &'static Arch,
        kept: usize,
        weights: Option<PathBuf>,
    },
    ConvNet(ConvNetSpec),
}

impl BodySpec {
    /// `create_body(arch, cut)`: fastai's default cut is -2 (keep the last feature map).
    /// `weights` is the file to start from (see `pretrained` for finding one).
    pub fn arch(name: &str, cut: i64, weights: Option<PathBuf>) -> Result<BodySpec> {
        let arch = registry::arch(name)?;
        if let Some(w) = weights.as_ref().filter(|w| !w.is_file()) {
            bail!("weights file {} not found", w.display());
        }
        Ok(BodySpec::Arch { arch, kept: arch.children_kept(cut)?, weights })
    }

    pub fn name(&self) -> String {
        match self {
            BodySpec::Arch { arch, .. } => arch.name.into(),
            BodySpec::ConvNet(_) => "convnet".into(),
        }
    }

    /// Channels (feature map) or features (vector) the body outputs.
    pub fn out_channels(&self) -> i64 {
        match self {
            BodySpec::Arch { arch, kept, .. } => match arch.family {
                Family::ResNet { block, .. } => resnet::out_channels(block, *kept),
                Family::ConvNeXt { dims, .. } => dims[3],
            },
            BodySpec::ConvNet(c) => c.out_features(),
        }
    }

    /// Refuses items of `shape` [channels, height, width] that the body cannot take, before
    /// any batch meets it: the channels it was built for, and the exact size of a convnet
    /// that flattens into its embedding.
    pub fn check_input(&self, shape: &[i64]) -> Result<()> {
        let [c, h, w] = shape else { return Ok(()) };
        let wants = self.default_input();
        if *c != wants[0] {
            bail!(
                "the {} body takes {}-channel images, but the loaders give {c} channels: set in_channels: {c} in the body, or channels: {} in the loaders",
                self.name(),
                wants[0],
                wants[0]
            );
        }
        if let BodySpec::ConvNet(spec) = self {
            if spec.embed > 0 && (*h, *w) != spec.input {
                let (eh, ew) = spec.input;
                bail!("the convnet was built for {eh}x{ew} images (input: [{eh}, {ew}]), but the loaders give {h}x{w}: make the two agree");
            }
        }
        Ok(())
    }

    /// The input shape `summary` uses when none is given.
    pub fn default_input(&self) -> Vec<i64> {
        match self {
            BodySpec::Arch { .. } => vec![3, 224, 224],
            BodySpec::ConvNet(c) => vec![c.in_channels, c.input.0, c.input.1],
        }
    }

    /// Whether the body ends in a feature map (to pool) rather than a vector.
    pub(crate) fn outputs_feature_map(&self) -> bool {
        matches!(self, BodySpec::Arch { arch, kept, .. } if *kept < arch.children.len() - 1)
    }

    /// A head reading `have` channels must be built for them: `nf` of its spec.
    pub(crate) fn check_nf(&self, nf: i64, have: i64, what: &str) -> Result<()> {
        if nf != have {
            bail!("head nf = {nf}, but the {what} gives {have} channels ({} body outputs {})", self.name(), self.out_channels());
        }
        Ok(())
    }

    pub(crate) fn build(&self, p: &nn::Path) -> Result<Seq> {
        match self {
            BodySpec::Arch { arch, kept, .. } => Ok(match arch.family {
                Family::ResNet { block, layers } => resnet::resnet_body(p, block, layers, *kept),
                Family::ConvNeXt { depths, dims, stochastic_depth } => convnext::convnext_body(p, depths, dims, stochastic_depth, *kept),
            }),
            BodySpec::ConvNet(spec) => convnet::convnet(p, spec),
        }
    }
}
