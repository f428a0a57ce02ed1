//! Models: bodies (ResNets with torchvision names and fastai cuts, small convnets), fastai
//! heads, and the kinds of model built over a body, each in its own file behind the `Net`
//! trait: a classifier (fastai head or cosine head), a Siamese model (one shared encoder
//! on both images, then a concat or distance head) and a prototypical network. `Model`
//! is what every kind shares: its variables, parameter names, groups and weights files.
pub mod body;
pub mod classifier;
pub mod convnet;
pub mod convnext;
pub mod cosine_classifier;
pub mod head;
pub mod layers;
pub mod margin;
pub mod net;
pub mod pretrained;
pub mod protonet;
pub mod prototypes;
pub mod pth;
pub mod registry;
pub mod resnet;
pub mod siamese;
pub mod spec;
pub mod summary;
pub mod weights;

pub use body::BodySpec;
pub use margin::Margin;
pub use net::{Net, Output};
pub use protonet::ProtoShape;
pub use registry::Split;
pub use spec::{KindSpec, ModelSpec, PairHeadSpec};

use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use tch::nn;
use tch::{Device, Tensor};

/// How a model's parameters split into groups (for freezing and discriminative rates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Splitter {
    /// body | head.
    BodyHead,
    /// fastai's resnet split: stem..layer2 | layer3..layer4 | head.
    Resnet,
    /// The body arch's own split, as fastai's `model_meta` has it (resnets: `Resnet`,
    /// others: `BodyHead`).
    Arch,
    /// One group.
    None,
}

impl std::str::FromStr for Splitter {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Splitter> {
        Ok(match s {
            "body_head" => Splitter::BodyHead,
            "resnet" => Splitter::Resnet,
            "arch" => Splitter::Arch,
            "none" => Splitter::None,
            other => bail!("unknown splitter `{other}`: use body_head, arch, resnet or none"),
        })
    }
}

/// The same values with channels-last (NHWC) strides; other ranks are returned as is.
pub fn channels_last(x: &Tensor) -> Tensor {
    if x.dim() == 4 {
        x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        x.shallow_clone()
    }
}

pub struct Model {
    pub vs: nn::VarStore,
    net: Box<dyn Net>,
    pub body: BodySpec,
    /// Trainable parameter names, sorted (the optimizer's deterministic order).
    pub param_names: Vec<String>,
    bn_params: HashSet<String>,
    /// What rebuilds the kind (None: a protonet, which cannot be exported).
    kind_spec: Option<KindSpec>,
}

impl Model {
    /// A model of kind `net` (built from `kind_spec`), whose variables `vs` holds (the body's
    /// under `body.`, loaded from the body's weights file when it names one): what each
    /// kind's constructor ends with.
    pub(crate) fn finish(vs: nn::VarStore, net: impl Net, body: &BodySpec, kind_spec: Option<KindSpec>) -> Result<Model> {
        let vars = vs.variables();
        let mut param_names: Vec<String> = vars.iter().filter(|(_, t)| t.requires_grad()).map(|(k, _)| k.clone()).collect();
        param_names.sort();
        let bn_params = param_names
            .iter()
            .filter(|n| {
                let base = n.rsplit_once('.').map(|(b, _)| b).unwrap_or("");
                vars.contains_key(&format!("{base}.running_mean"))
            })
            .cloned()
            .collect();
        let model = Model { vs, net: Box::new(net), body: body.clone(), param_names, bn_params, kind_spec };
        if let BodySpec::Arch { arch, kept, weights: Some(w) } = body {
            let n = weights::load_prefixed(&model.vs, "body", w, &arch.children[*kept..])?;
            tracing::info!("loaded {n} tensors from {} into the body", w.display());
        }
        Ok(model)
    }

    /// The kind's own state, for a kind's methods that change it (a cosine margin).
    pub(crate) fn net_mut<T: Net>(&mut self) -> Option<&mut T> {
        (self.net.as_mut() as &mut dyn std::any::Any).downcast_mut::<T>()
    }

    /// The model kind's name (`Classifier`, `SiameseModel`, ...).
    pub fn kind(&self) -> &'static str {
        self.net.kind()
    }

    /// What the output means, which decides the matching loss and metrics.
    pub fn output(&self) -> Output {
        self.net.output()
    }

    pub fn n_inputs(&self) -> usize {
        self.net.n_inputs()
    }

    /// `(n_way, k_shot)` of the episodes the model reads batches as (a protonet); None
    /// for models that read batches of items.
    pub fn episode_shape(&self) -> Option<(usize, usize)> {
        self.net.episode_shape()
    }

    /// The margin training should apply to each target-class logit; see `Net`.
    pub fn train_margin(&self) -> Option<Margin> {
        self.net.train_margin()
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Puts conv weights in channels-last memory order; values and names are unchanged.
    pub fn to_channels_last(&self) {
        tch::no_grad(|| {
            for (_, mut v) in self.vs.variables() {
                if v.dim() == 4 {
                    let nhwc = channels_last(&v);
                    v.set_data(&nhwc);
                }
            }
        });
    }

    /// Forward pass; `xs` holds one image batch (classifier) or two (Siamese).
    pub fn forward(&self, xs: &[Tensor], train: bool) -> Result<Tensor> {
        net::checked_forward(self.net.as_ref(), xs, train)
    }

    /// The body (encoder) alone: a feature map or an embedding.
    pub fn features(&self, x: &Tensor, train: bool) -> Tensor {
        self.net.features(x, train)
    }

    /// One embedding vector per image: the body's output, average-pooled when it is a
    /// feature map (what cosine and prototype comparisons measure).
    pub fn embedding(&self, x: &Tensor, train: bool) -> Tensor {
        layers::embed(self.features(x, train), self.body.outputs_feature_map())
    }

    pub fn is_bn(&self, name: &str) -> bool {
        self.bn_params.contains(name)
    }

    /// Parameter groups by splitter: the body's, in order, then the head.
    pub fn split(&self, splitter: Splitter) -> Result<Vec<Vec<String>>> {
        let arch = match &self.body {
            BodySpec::Arch { arch, .. } => Some(*arch),
            BodySpec::ConvNet(_) => None,
        };
        let split = match splitter {
            Splitter::None => return Ok(vec![self.param_names.clone()]),
            Splitter::BodyHead => Split::BodyHead,
            Splitter::Arch => arch.map_or(Split::BodyHead, |a| a.split),
            Splitter::Resnet => match arch {
                Some(a) if a.split == Split::Resnet => Split::Resnet,
                _ => bail!("splitter `resnet` needs a ResNet body, this model's body is {}", self.body.name()),
            },
        };
        let mut groups = vec![Vec::new(); split.body_groups() + 1];
        for n in &self.param_names {
            let i = n.strip_prefix("body.").map_or(split.body_groups(), |rest| split.group(rest));
            groups[i].push(n.clone());
        }
        Ok(groups.into_iter().filter(|g| !g.is_empty()).collect())
    }

    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        weights::save(&self.vs, path)
    }

    pub fn load(&self, path: &std::path::Path) -> Result<()> {
        weights::load(&self.vs, path).with_context(|| format!("cannot load {} into this {}", path.display(), self.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::convnet::{ConvNetSpec, Padding};
    use super::prototypes::Metric;
    use super::*;

    fn convnet() -> BodySpec {
        let spec = ConvNetSpec {
            in_channels: 1,
            channels: vec![4],
            kernels: vec![3],
            pool: vec![true],
            batch_norm: false,
            embed: 8,
            sigmoid: false,
            input: (8, 8),
            padding: Padding::Valid,
        };
        BodySpec::ConvNet(spec)
    }

    /// What the learner asks of a model comes from its kind, whichever kind it is.
    #[test]
    fn each_kind_answers_for_its_inputs_episodes_and_margin() {
        let cpu = Device::Cpu;
        let shape = ProtoShape { n_way: 2, k_shot: 1, metric: Metric::Euclidean, scale: 1.0 };
        let resnet = BodySpec::arch("resnet18", -2, None).unwrap();
        let models = [
            (Model::classifier(&resnet, &head::HeadSpec::new(512, 3), cpu).unwrap(), "Classifier", 1, None, None),
            (
                Model::cosine_classifier(&convnet(), 3, 16.0, cpu).unwrap().with_cos_margin(0.25).unwrap(),
                "CosineClassifier",
                1,
                None,
                Some(Margin::Cos { scale: 16.0, m: 0.25 }),
            ),
            (
                Model::cosine_classifier(&convnet(), 3, 16.0, cpu).unwrap().with_arc_margin(0.5).unwrap(),
                "CosineClassifier",
                1,
                None,
                Some(Margin::Arc { scale: 16.0, m: 0.5 }),
            ),
            (Model::siamese(&convnet(), &PairHeadSpec::Distance, cpu).unwrap(), "SiameseModel", 2, None, None),
            (Model::protonet(&convnet(), shape, cpu).unwrap(), "ProtoNet", 1, Some((2, 1)), None),
        ];
        let x = Tensor::zeros([4, 1, 8, 8], (tch::Kind::Float, cpu));
        for (m, kind, n, episodes, margin) in models {
            assert_eq!((m.kind(), m.n_inputs(), m.episode_shape(), m.train_margin()), (kind, n, episodes, margin));
            let e = m.forward(&[x.shallow_clone(), x.shallow_clone(), x.shallow_clone()], false).unwrap_err().to_string();
            assert_eq!(e, format!("{kind} takes {n} image batch(es), got 3"));
        }
        let e = Model::siamese(&convnet(), &PairHeadSpec::L1, cpu).unwrap().with_cos_margin(0.1).err().unwrap().to_string();
        assert_eq!(e, "a margin needs a cosine classifier, this is a SiameseModel");
        let summary = Model::protonet(&convnet(), shape, cpu).unwrap().summary(&[1, 8, 8]).unwrap();
        assert!(
            summary.starts_with("ProtoNet (1 input of 2 x 1 x 8 x 8)") && summary.contains("class means of 1 support embeddings each"),
            "{summary}"
        );
    }

    /// `splitter: "arch"` is fastai's model_meta split of the body's arch.
    #[test]
    fn the_arch_splitter_follows_model_meta() {
        let groups = |body: &BodySpec, s: Splitter| {
            let m = Model::classifier(body, &head::HeadSpec::new(body.out_channels(), 3), Device::Cpu).unwrap();
            m.split(s).map(|g| g.len())
        };
        let resnet = BodySpec::arch("resnet18", -2, None).unwrap();
        let convnext = BodySpec::arch("convnext_tiny", -2, None).unwrap();
        assert_eq!(groups(&resnet, Splitter::Arch).unwrap(), 3);
        assert_eq!(groups(&resnet, Splitter::Resnet).unwrap(), 3);
        assert_eq!(groups(&convnext, Splitter::Arch).unwrap(), 2);
        assert_eq!(groups(&convnext, Splitter::BodyHead).unwrap(), 2);
        let e = groups(&convnext, Splitter::Resnet).unwrap_err().to_string();
        assert_eq!(e, "splitter `resnet` needs a ResNet body, this model's body is convnext_tiny");
    }
}
