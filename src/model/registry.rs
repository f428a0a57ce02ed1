//! The architectures a body can be, one row each, as fastai's `model_meta` has them: the
//! family that builds it, fastai's default cut and parameter-group split, the statistics
//! its weights were trained with, and torchvision's pretrained weights files (tag, file
//! name with its sha256 prefix, size). Adding an arch is a row here plus its body.
use super::resnet::{Block, RESNET_CHILDREN};
use crate::data::dataloaders::{IMAGENET_MEAN, IMAGENET_STD};
use anyhow::{bail, Result};

/// Where torchvision's weights are served; `RUNNER_WEIGHTS_URL_BASE` replaces it (a mirror,
/// or a test's local server).
pub const TORCHVISION_URL: &str = "https://download.pytorch.org/models/";

/// How an arch is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Family {
    /// torchvision's ResNet: block type and blocks per stage.
    ResNet { block: Block, layers: [usize; 4] },
    /// torchvision's ConvNeXt: blocks and channels per stage, and the stochastic depth of
    /// the last block (torchvision's `stochastic_depth_prob`, rising linearly from 0).
    ConvNeXt { depths: [usize; 4], dims: [i64; 4], stochastic_depth: f64 },
}

/// How fastai splits a model over this body into parameter groups (for freezing and
/// discriminative learning rates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Split {
    /// `_resnet_split`: stem..layer2 | layer3..layer4 | head.
    Resnet,
    /// `default_split`: body | head.
    BodyHead,
}

impl Split {
    /// The splitter name that asks for this split.
    pub fn name(self) -> &'static str {
        match self {
            Split::Resnet => "resnet",
            Split::BodyHead => "body_head",
        }
    }

    /// How many groups the body's parameters fall into (the head is one more).
    pub fn body_groups(self) -> usize {
        match self {
            Split::Resnet => 2,
            Split::BodyHead => 1,
        }
    }

    /// The group of a body parameter (its name inside the body).
    pub fn group(self, name_in_body: &str) -> usize {
        match self {
            Split::Resnet => super::resnet::resnet_group(name_in_body),
            Split::BodyHead => 0,
        }
    }
}

/// The per-channel statistics of the images the weights were trained on; `name` is the
/// loaders' `normalize` value that applies them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub name: &'static str,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

pub const IMAGENET: Stats = Stats { name: "imagenet", mean: IMAGENET_MEAN, std: IMAGENET_STD };

/// One pretrained weights file of torchvision's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pretrained {
    /// torchvision's name for it (`IMAGENET1K_V1`).
    pub tag: &'static str,
    /// The file name under `TORCHVISION_URL`; it carries the start of the file's sha256.
    pub file: &'static str,
    /// The size torchvision gives (`meta["_file_size"]`), in MiB rounded to 3 decimals.
    pub size_mib: f64,
}

impl Pretrained {
    pub fn hash_prefix(&self) -> &'static str {
        hash_prefix(self.file).unwrap_or("")
    }

    /// Whether `bytes` is the size torchvision gives, to its rounding.
    pub fn size_matches(&self, bytes: u64) -> bool {
        (bytes as f64 / (1u64 << 20) as f64 - self.size_mib).abs() <= 0.0006
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arch {
    pub name: &'static str,
    pub family: Family,
    /// The children of the torchvision model, in order (what a cut counts).
    pub children: &'static [&'static str],
    /// fastai's default cut: -2 keeps the feature map (drops pooling and the classifier).
    pub cut: i64,
    pub split: Split,
    pub stats: Stats,
    /// The tag fastai loads by default (torchvision's `DEFAULT`).
    pub default_tag: &'static str,
    pub weights: &'static [Pretrained],
}

const CONVNEXT_CHILDREN: &[&str] = &["features", "avgpool", "classifier"];

const fn resnet(name: &'static str, block: Block, layers: [usize; 4], default_tag: &'static str, weights: &'static [Pretrained]) -> Arch {
    Arch {
        name,
        family: Family::ResNet { block, layers },
        children: RESNET_CHILDREN,
        cut: -2,
        split: Split::Resnet,
        stats: IMAGENET,
        default_tag,
        weights,
    }
}

const fn file(tag: &'static str, file: &'static str, size_mib: f64) -> Pretrained {
    Pretrained { tag, file, size_mib }
}

/// URLs, file names and sizes as torchvision 0.26 gives them; default tags as fastai 2.8
/// loads them (torchvision's `DEFAULT`).
pub const ARCHS: &[Arch] = &[
    resnet("resnet18", Block::Basic, [2, 2, 2, 2], "IMAGENET1K_V1", &[file("IMAGENET1K_V1", "resnet18-f37072fd.pth", 44.661)]),
    resnet("resnet34", Block::Basic, [3, 4, 6, 3], "IMAGENET1K_V1", &[file("IMAGENET1K_V1", "resnet34-b627a593.pth", 83.275)]),
    resnet(
        "resnet50",
        Block::Bottleneck,
        [3, 4, 6, 3],
        "IMAGENET1K_V2",
        &[file("IMAGENET1K_V1", "resnet50-0676ba61.pth", 97.781), file("IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 97.79)],
    ),
    resnet(
        "resnet101",
        Block::Bottleneck,
        [3, 4, 23, 3],
        "IMAGENET1K_V2",
        &[file("IMAGENET1K_V1", "resnet101-63fe2227.pth", 170.511), file("IMAGENET1K_V2", "resnet101-cd907fc2.pth", 170.53)],
    ),
    resnet(
        "resnet152",
        Block::Bottleneck,
        [3, 8, 36, 3],
        "IMAGENET1K_V2",
        &[file("IMAGENET1K_V1", "resnet152-394f9c45.pth", 230.434), file("IMAGENET1K_V2", "resnet152-f82ba261.pth", 230.474)],
    ),
    // fastai has no model_meta row for torchvision's ConvNeXt: its default applies (cut at
    // the last pooling child, which keeps `features`; split body | head).
    Arch {
        name: "convnext_tiny",
        family: Family::ConvNeXt { depths: [3, 3, 9, 3], dims: [96, 192, 384, 768], stochastic_depth: 0.1 },
        children: CONVNEXT_CHILDREN,
        cut: -2,
        split: Split::BodyHead,
        stats: IMAGENET,
        default_tag: "IMAGENET1K_V1",
        weights: &[file("IMAGENET1K_V1", "convnext_tiny-983f1562.pth", 109.119)],
    },
];

/// The registry row of `name`.
pub fn arch(name: &str) -> Result<&'static Arch> {
    match ARCHS.iter().find(|a| a.name == name) {
        Some(a) => Ok(a),
        None => {
            let names: Vec<&str> = ARCHS.iter().map(|a| a.name).collect();
            bail!("unknown arch `{name}`: known archs are {}, convnet", names.join(", "))
        }
    }
}

impl Arch {
    /// The weights file of `tag` (`DEFAULT` is the arch's default tag).
    pub fn pretrained(&self, tag: &str) -> Result<&'static Pretrained> {
        let tag = if tag == "DEFAULT" { self.default_tag } else { tag };
        match self.weights.iter().find(|w| w.tag == tag) {
            Some(w) => Ok(w),
            None => {
                let tags: Vec<&str> = self.weights.iter().map(|w| w.tag).collect();
                bail!("{} has no weights tagged `{tag}`: its tags are {}, DEFAULT ({})", self.name, tags.join(", "), self.default_tag)
            }
        }
    }

    /// How many children a fastai `cut` keeps (negative counts from the end, as in Python).
    pub fn children_kept(&self, cut: i64) -> Result<usize> {
        let n = self.children.len() as i64;
        let kept = if cut < 0 { n + cut } else { cut };
        if !(1..n).contains(&kept) {
            bail!(
                "cut {cut} is out of range for {}: its children are {} ({n}); use -{}..=-1 or 1..={}",
                self.name,
                self.children.join(", "),
                n - 1,
                n - 1
            );
        }
        Ok(kept as usize)
    }
}

/// The sha256 prefix a file name carries (`resnet34-b627a593.pth`: b627a593), found as
/// torch.hub finds it: the first `-<hex digits>.`.
pub fn hash_prefix(file_name: &str) -> Option<&str> {
    file_name.match_indices('-').find_map(|(i, _)| {
        let rest = &file_name[i + 1..];
        let hex = rest.find(|c: char| !matches!(c, '0'..='9' | 'a'..='f')).unwrap_or(rest.len());
        (hex > 0 && rest[hex..].starts_with('.')).then(|| &rest[..hex])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_consistent() {
        for a in ARCHS {
            let w = a.pretrained("DEFAULT").unwrap();
            assert_eq!(w.tag, a.default_tag);
            assert_eq!(a.children_kept(a.cut).unwrap(), a.children.len() - 2, "{}: the default cut keeps the feature map", a.name);
            for w in a.weights {
                assert!(w.file.starts_with(&format!("{}-", a.name)) && w.file.ends_with(".pth"), "{}", w.file);
                assert_eq!(w.hash_prefix().len(), 8, "{}", w.file);
            }
        }
        assert_eq!(arch("resnet50").unwrap().pretrained("IMAGENET1K_V1").unwrap().file, "resnet50-0676ba61.pth");
        let e = arch("resnet34").unwrap().pretrained("IMAGENET1K_V2").unwrap_err().to_string();
        assert_eq!(e, "resnet34 has no weights tagged `IMAGENET1K_V2`: its tags are IMAGENET1K_V1, DEFAULT (IMAGENET1K_V1)");
        assert!(arch("resnet35").unwrap_err().to_string().starts_with("unknown arch `resnet35`: known archs are resnet18, resnet34"));
    }

    #[test]
    fn hash_prefixes_are_read_as_torch_hub_reads_them() {
        assert_eq!(hash_prefix("resnet34-b627a593.pth"), Some("b627a593"));
        assert_eq!(hash_prefix("convnext_tiny-983f1562.pth"), Some("983f1562"));
        assert_eq!(hash_prefix("my-model-0123abcd.pth"), Some("0123abcd"));
        assert_eq!(hash_prefix("resnet34.pth"), None);
        assert_eq!(hash_prefix("model-v2.pth"), None);
        let w = arch("resnet34").unwrap().weights[0];
        let bytes = (w.size_mib * 1048576.0) as u64;
        assert!(w.size_matches(bytes - 500) && w.size_matches(bytes + 500) && !w.size_matches(bytes + 2000));
    }
}
