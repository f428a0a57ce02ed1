//! Models: ResNet bodies (torchvision names, fastai cuts), fastai heads, small convnets,
//! and the two ways to combine them: a classifier (body + head) and a Siamese model
//! (one shared encoder on both images, then a concat head or a distance head).
pub mod convnet;
pub mod head;
pub mod layers;
pub mod resnet;
pub mod summary;
pub mod weights;

use crate::learn::loss::Loss;
use crate::learn::protonet::{episode_logits, Metric};
use anyhow::{bail, Context, Result};
use convnet::ConvNetSpec;
use head::HeadSpec;
use layers::Seq;
use std::collections::HashSet;
use std::path::PathBuf;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// What to build as the body (encoder); the model is created when body and head meet.
#[derive(Debug, Clone, PartialEq)]
pub enum BodySpec {
    ResNet { arch: String, kept: usize, weights: Option<PathBuf> },
    ConvNet(ConvNetSpec),
}

impl BodySpec {
    /// `create_body(arch, cut)` with fastai's default cut (-2: keep the last feature map).
    pub fn resnet(arch: &str, cut: i64, weights: Option<PathBuf>) -> Result<BodySpec> {
        resnet::arch(arch)?;
        if let Some(w) = weights.as_ref().filter(|w| !w.is_file()) {
            bail!("weights file {} not found", w.display());
        }
        Ok(BodySpec::ResNet { arch: arch.to_string(), kept: resnet::children_kept(arch, cut)?, weights })
    }

    pub fn name(&self) -> String {
        match self {
            BodySpec::ResNet { arch, .. } => arch.clone(),
            BodySpec::ConvNet(_) => "convnet".into(),
        }
    }

    /// Channels (feature map) or features (vector) the body outputs.
    pub fn out_channels(&self) -> i64 {
        match self {
            BodySpec::ResNet { arch, kept, .. } => resnet::out_channels(resnet::arch(arch).unwrap().0, *kept),
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
            BodySpec::ResNet { .. } => vec![3, 224, 224],
            BodySpec::ConvNet(c) => vec![c.in_channels, c.input.0, c.input.1],
        }
    }

    fn outputs_feature_map(&self) -> bool {
        matches!(self, BodySpec::ResNet { kept, .. } if *kept < 9)
    }

    fn build(&self, p: &nn::Path) -> Result<Seq> {
        match self {
            BodySpec::ResNet { arch, kept, .. } => resnet::resnet_body(p, arch, *kept),
            BodySpec::ConvNet(spec) => convnet::convnet(p, spec),
        }
    }
}

/// How a Siamese model turns two embeddings into an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum PairHeadSpec {
    /// The fastai tutorial: concatenate the feature maps, then a fastai head (2 logits).
    Concat(HeadSpec),
    /// Koch et al.: weighted L1 distance of the embeddings -> one logit (sigmoid = same).
    L1,
    /// Cosine similarity, scaled and shifted by learned numbers -> one logit.
    Cosine,
    /// Euclidean distance of the embeddings, for the contrastive loss.
    Distance,
}

/// How a model's parameters split into groups (for freezing and discriminative rates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Splitter {
    /// body | head.
    BodyHead,
    /// fastai's resnet split: stem..layer2 | layer3..layer4 | head.
    Resnet,
    /// One group.
    None,
}

impl std::str::FromStr for Splitter {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Splitter> {
        Ok(match s {
            "body_head" => Splitter::BodyHead,
            "resnet" => Splitter::Resnet,
            "none" => Splitter::None,
            other => bail!("unknown splitter `{other}`: use body_head, resnet or none"),
        })
    }
}

impl std::str::FromStr for PairHeadSpec {
    type Err = anyhow::Error;
    /// The named Siamese heads (`Concat` is built from a `create_head` instead).
    fn from_str(s: &str) -> Result<PairHeadSpec> {
        Ok(match s {
            "l1" => PairHeadSpec::L1,
            "cosine" => PairHeadSpec::Cosine,
            "distance" => PairHeadSpec::Distance,
            other => bail!("unknown Siamese head `{other}`: use a create_head(...), \"l1\", \"cosine\" or \"distance\""),
        })
    }
}

/// What a script reads in messages: `[N, C] logits`, not `Logits`.
impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Output::Logits => "[N, C] class logits",
            Output::Logit => "[N] logit of same",
            Output::Distance => "[N] distances",
        })
    }
}

/// What the model's output means, which decides the matching loss and metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Output {
    /// `[N, C]` class logits (cross-entropy).
    Logits,
    /// `[N]` logit of "same" (binary cross-entropy).
    Logit,
    /// `[N]` distance, small = same (contrastive).
    Distance,
}

enum PairHead {
    Concat(Seq),
    L1(nn::Linear),
    Cosine { scale: Tensor, shift: Tensor },
    Distance,
}

enum Net {
    Classifier { body: Seq, head: ClassHead },
    Siamese { encoder: Seq, pool: bool, head: PairHead },
    Prototypes { body: Seq, pool: bool, shape: ProtoShape },
}

/// What a prototypical network reads from its batch of one episode: `n_way * k_shot`
/// support images (class-major), then the queries; `scale` multiplies its logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProtoShape {
    pub n_way: usize,
    pub k_shot: usize,
    pub metric: Metric,
    pub scale: f64,
}

/// A classifier's head.
enum ClassHead {
    /// fastai's head: pooling, then the BatchNorm/Dropout/Linear stack.
    Fastai(Seq),
    /// `scale * cos(embedding, class weight)`, a cosine classifier: it trains embeddings that
    /// separate classes by angle, so a Siamese cosine head over the same body can compare
    /// classes it never saw (classification pretraining for one-shot learning).
    /// `margin` (a cosine, CosFace's `m`) is for training only: see `Model::default_loss`.
    Cosine { pool: bool, weight: Tensor, scale: f64, margin: f64 },
}

impl ClassHead {
    fn forward(&self, features: Tensor, train: bool) -> Tensor {
        match self {
            ClassHead::Fastai(h) => h.forward_t(&features, train),
            ClassHead::Cosine { pool, weight, scale, .. } => unit_rows(&embed(features, *pool)).matmul(&unit_rows(weight).tr()) * *scale,
        }
    }
}

/// Rows scaled to unit L2 norm (as `F.normalize`).
fn unit_rows(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12)
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
    net: Net,
    pub output: Output,
    pub body: BodySpec,
    pub kind: &'static str,
    /// Trainable parameter names, sorted (the optimizer's deterministic order).
    pub param_names: Vec<String>,
    bn_params: HashSet<String>,
}

fn embed(x: Tensor, pool: bool) -> Tensor {
    if pool {
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    } else {
        x.flatten(1, -1)
    }
}

impl Model {
    /// Body + fastai head: an image classifier.
    pub fn classifier(body: &BodySpec, head: &HeadSpec, device: Device) -> Result<Model> {
        if !body.outputs_feature_map() {
            bail!("a classifier head pools a feature map; {} outputs a vector (use a ResNet body with cut -2)", body.name());
        }
        check_nf(head.nf, body.out_channels(), body, "classifier")?;
        let vs = nn::VarStore::new(device);
        let b = body.build(&(vs.root() / "body"))?;
        let h = head::create_head(&(vs.root() / "head"), head)?;
        Model::finish(vs, Net::Classifier { body: b, head: ClassHead::Fastai(h) }, Output::Logits, body, "Classifier")
    }

    /// Body + cosine classifier over `n_out` classes (see `ClassHead::Cosine`); any body.
    pub fn cosine_classifier(body: &BodySpec, n_out: i64, scale: f64, device: Device) -> Result<Model> {
        if n_out < 2 || scale <= 0.0 {
            bail!("a cosine classifier needs at least 2 classes and a positive scale, got {n_out} classes, scale {scale}");
        }
        let vs = nn::VarStore::new(device);
        let b = body.build(&(vs.root() / "body"))?;
        let weight = (vs.root() / "head").var("weight", &[n_out, body.out_channels()], nn::Init::Randn { mean: 0.0, stdev: 0.01 });
        let head = ClassHead::Cosine { pool: body.outputs_feature_map(), weight, scale, margin: 0.0 };
        Model::finish(vs, Net::Classifier { body: b, head }, Output::Logits, body, "CosineClassifier")
    }

    /// A prototypical network (Snell et al.) over `body`: each batch is one episode (see
    /// `ProtoShape`), and the output is `scale * proto_logits` of its queries against the
    /// class means of its support embeddings, `[n_way * n_query, n_way]`, so that the
    /// ordinary cross-entropy and accuracy apply. It has no head: its body is what a
    /// cosine classifier's body is, for `embedding`, `siamese_from` and N-way evaluation.
    pub fn protonet(body: &BodySpec, shape: ProtoShape, device: Device) -> Result<Model> {
        if shape.n_way < 2 || shape.k_shot < 1 || shape.scale <= 0.0 || !shape.scale.is_finite() {
            bail!(
                "a protonet needs n_way >= 2, k_shot >= 1 and a positive scale, got n_way {}, k_shot {}, scale {}",
                shape.n_way,
                shape.k_shot,
                shape.scale
            );
        }
        let vs = nn::VarStore::new(device);
        let b = body.build(&(vs.root() / "body"))?;
        Model::finish(vs, Net::Prototypes { body: b, pool: body.outputs_feature_map(), shape }, Output::Logits, body, "ProtoNet")
    }

    /// A protonet's (n_way, k_shot); None for other models.
    pub fn protonet_shape(&self) -> Option<(usize, usize)> {
        match &self.net {
            Net::Prototypes { shape, .. } => Some((shape.n_way, shape.k_shot)),
            _ => None,
        }
    }

    /// A cosine classifier trained with CosFace's additive margin `m` (a cosine, in [0, 1)):
    /// its default loss takes `scale * m` off each image's own-class logit, so that
    /// embeddings of one class gather tighter than the plain cosine classifier gathers them.
    pub fn with_cos_margin(mut self, m: f64) -> Result<Model> {
        match &mut self.net {
            Net::Classifier { head: ClassHead::Cosine { margin, .. }, .. } => {
                if !(0.0..1.0).contains(&m) {
                    bail!("a cosine margin must be in [0, 1), got {m}");
                }
                *margin = m;
                Ok(self)
            }
            _ => bail!("a margin needs a cosine classifier, this is a {}", self.kind),
        }
    }

    /// The loss a learner uses when the script names none: what the output calls for,
    /// with a cosine classifier's margin (CosFace) when it has one.
    pub fn default_loss(&self) -> Loss {
        match &self.net {
            Net::Classifier { head: ClassHead::Cosine { scale, margin, .. }, .. } if *margin > 0.0 => {
                Loss::MarginCrossEntropy { margin: scale * margin }
            }
            _ => Loss::default_for(self.output),
        }
    }

    /// A Siamese model over this model's body, its trained weights copied: after
    /// classification pretraining, compare pairs with `head`.
    pub fn siamese_from(&self, head: &PairHeadSpec) -> Result<Model> {
        let m = Model::siamese(&self.body, head, self.device())?;
        let mine = self.vs.variables();
        tch::no_grad(|| {
            for (name, mut v) in m.vs.variables().into_iter().filter(|(n, _)| n.starts_with("body.")) {
                v.copy_(&mine[&name]);
            }
        });
        Ok(m)
    }

    /// One shared encoder applied to both images, then `head`.
    pub fn siamese(body: &BodySpec, head: &PairHeadSpec, device: Device) -> Result<Model> {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let encoder = body.build(&(&root / "body"))?;
        let c = body.out_channels();
        let pool = body.outputs_feature_map();
        let (head, output) = match head {
            PairHeadSpec::Concat(spec) => {
                if !pool {
                    bail!("the concat head pools feature maps; {} outputs vectors (use head \"l1\", \"cosine\" or \"distance\")", body.name());
                }
                check_nf(spec.nf, 2 * c, body, "siamese (two feature maps concatenated)")?;
                (PairHead::Concat(head::create_head(&(&root / "head"), spec)?), Output::Logits)
            }
            PairHeadSpec::L1 => (PairHead::L1(layers::linear(&root / "head" / "fc", c, 1, true)), Output::Logit),
            PairHeadSpec::Cosine => {
                let h = &root / "head";
                let scale = h.var("scale", &[1], nn::Init::Const(10.0));
                let shift = h.var("shift", &[1], nn::Init::Const(-5.0));
                (PairHead::Cosine { scale, shift }, Output::Logit)
            }
            PairHeadSpec::Distance => (PairHead::Distance, Output::Distance),
        };
        Model::finish(vs, Net::Siamese { encoder, pool, head }, output, body, "SiameseModel")
    }

    fn finish(vs: nn::VarStore, net: Net, output: Output, body: &BodySpec, kind: &'static str) -> Result<Model> {
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
        let model = Model { vs, net, output, body: body.clone(), kind, param_names, bn_params };
        if let BodySpec::ResNet { weights: Some(w), .. } = body {
            let n = weights::load_prefixed(&model.vs, "body", w)?;
            tracing::info!("loaded {n} tensors from {} into the body", w.display());
        }
        Ok(model)
    }

    pub fn n_inputs(&self) -> usize {
        match self.net {
            Net::Classifier { .. } | Net::Prototypes { .. } => 1,
            Net::Siamese { .. } => 2,
        }
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
        if xs.len() != self.n_inputs() {
            bail!("{} takes {} image batch(es), got {}", self.kind, self.n_inputs(), xs.len());
        }
        if let Net::Prototypes { shape, .. } = &self.net {
            let (rows, support) = (xs[0].size().first().copied().unwrap_or(0) as usize, shape.n_way * shape.k_shot);
            if rows <= support || (rows - support) % shape.n_way != 0 {
                bail!(
                    "a {}-way {}-shot protonet reads a batch as one episode ({support} support images, then queries, a multiple of {}); got {rows} images",
                    shape.n_way,
                    shape.k_shot,
                    shape.n_way
                );
            }
        }
        let run = || -> Tensor {
            match &self.net {
                Net::Classifier { body, head } => head.forward(body.forward_t(&xs[0], train), train),
                Net::Prototypes { body, pool, shape } => {
                    let e = embed(body.forward_t(&xs[0], train), *pool);
                    let support = (shape.n_way * shape.k_shot) as i64;
                    let (s, q) = (e.narrow(0, 0, support), e.narrow(0, support, e.size()[0] - support));
                    episode_logits(&s, &q, shape.n_way, shape.metric, shape.scale).expect("support rows checked above")
                }
                Net::Siamese { encoder, pool, head } => {
                    let a = encoder.forward_t(&xs[0], train);
                    let b = encoder.forward_t(&xs[1], train);
                    match head {
                        PairHead::Concat(h) => h.forward_t(&Tensor::cat(&[a, b], 1), train),
                        PairHead::L1(fc) => (embed(a, *pool) - embed(b, *pool)).abs().apply(fc).squeeze_dim(1),
                        PairHead::Cosine { scale, shift } => {
                            let cos = Tensor::cosine_similarity(&embed(a, *pool), &embed(b, *pool), 1, 1e-8);
                            cos * scale + shift
                        }
                        PairHead::Distance => {
                            let d = embed(a, *pool) - embed(b, *pool);
                            (d.square().sum_dim_intlist(1, false, Kind::Float) + 1e-9).sqrt()
                        }
                    }
                }
            }
        };
        // libtorch reports shape errors by panicking through tch; turn them into errors.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).map_err(|e| {
            let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            anyhow::anyhow!(
                "{} forward failed for inputs {:?}: {}",
                self.kind,
                xs.iter().map(|x| x.size()).collect::<Vec<_>>(),
                crate::torch_errors::short_message(&msg)
            )
        })
    }

    /// The body (encoder) alone: a feature map or an embedding.
    pub fn features(&self, x: &Tensor, train: bool) -> Tensor {
        match &self.net {
            Net::Classifier { body, .. } | Net::Prototypes { body, .. } => body.forward_t(x, train),
            Net::Siamese { encoder, .. } => encoder.forward_t(x, train),
        }
    }

    /// One embedding vector per image: the body's output, average-pooled when it is a
    /// feature map (what cosine and prototype comparisons measure).
    pub fn embedding(&self, x: &Tensor, train: bool) -> Tensor {
        embed(self.features(x, train), self.body.outputs_feature_map())
    }

    pub fn is_bn(&self, name: &str) -> bool {
        self.bn_params.contains(name)
    }

    /// Parameter groups by splitter.
    pub fn split(&self, splitter: Splitter) -> Result<Vec<Vec<String>>> {
        let is_body = |n: &str| n.starts_with("body.");
        let groups: Vec<Vec<String>> = match splitter {
            Splitter::None => vec![self.param_names.clone()],
            Splitter::BodyHead => {
                let (b, h): (Vec<String>, Vec<String>) = self.param_names.iter().cloned().partition(|n| is_body(n));
                vec![b, h]
            }
            Splitter::Resnet => {
                if !matches!(self.body, BodySpec::ResNet { .. }) {
                    bail!("splitter `resnet` needs a ResNet body, this model's body is {}", self.body.name());
                }
                let mut g = vec![Vec::new(), Vec::new(), Vec::new()];
                for n in &self.param_names {
                    let i = match n.strip_prefix("body.") {
                        Some(rest) => resnet::resnet_group(rest),
                        None => 2,
                    };
                    g[i].push(n.clone());
                }
                g
            }
        };
        Ok(groups.into_iter().filter(|g| !g.is_empty()).collect())
    }

    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        weights::save(&self.vs, path)
    }

    pub fn load(&self, path: &std::path::Path) -> Result<()> {
        weights::load(&self.vs, path).with_context(|| format!("cannot load {} into this {}", path.display(), self.kind))
    }
}

fn check_nf(nf: i64, have: i64, body: &BodySpec, what: &str) -> Result<()> {
    if nf != have {
        bail!("head nf = {nf}, but the {what} gives {have} channels ({} body outputs {})", body.name(), body.out_channels());
    }
    Ok(())
}
