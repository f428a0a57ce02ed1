//! Building blocks: a named sequence of modules (what `summary` walks), the conv /
//! BatchNorm / linear constructors with torchvision's and fastai's initialisation, and the
//! two tensor steps model kinds share (pooling into an embedding, unit rows).
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// One named child of a sequence, as fastai's `children(model)` lists them.
#[derive(Debug)]
pub struct Child {
    pub name: String,
    pub kind: String,
    pub module: Box<dyn ModuleT>,
}

/// An ordered list of children; forward runs them in turn.
#[derive(Debug, Default)]
pub struct Seq {
    pub children: Vec<Child>,
}

impl Seq {
    pub fn push(&mut self, name: impl Into<String>, kind: impl Into<String>, m: impl ModuleT + 'static) {
        self.children.push(Child { name: name.into(), kind: kind.into(), module: Box::new(m) });
    }

    /// Forward that also records each child's output shape (for `summary`).
    pub fn trace(&self, x: &Tensor, train: bool, prefix: &str, out: &mut Vec<(String, String, Vec<i64>)>) -> Tensor {
        let mut x = x.shallow_clone();
        for c in &self.children {
            x = c.module.forward_t(&x, train);
            out.push((format!("{prefix}{}", c.name), c.kind.clone(), x.size()));
        }
        x
    }
}

impl ModuleT for Seq {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.children.iter().fold(xs.shallow_clone(), |x, c| c.module.forward_t(&x, train))
    }
}

/// torchvision's conv init: Kaiming normal, fan_out, ReLU; no bias (a BatchNorm follows).
pub fn conv2d(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding,
        bias: false,
        ws_init: nn::Init::Kaiming {
            dist: nn::init::NormalOrUniform::Normal,
            fan: nn::init::FanInOut::FanOut,
            non_linearity: nn::init::NonLinearity::ReLU,
        },
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

/// tch's BatchNorm, except that a training forward inside a data-parallel fit normalises
/// over the whole group's batch (see `dist::sync_bn`; tch keeps its config private, so the
/// momentum and eps are kept here too).
#[derive(Debug)]
pub struct BatchNorm {
    bn: nn::BatchNorm,
    momentum: f64,
    eps: f64,
}

impl BatchNorm {
    /// BatchNorm over `nd` spatial dimensions (1 for `[N, C]` features, 2 for feature maps).
    pub fn new(p: nn::Path, c: i64, nd: usize, cfg: nn::BatchNormConfig) -> BatchNorm {
        let (momentum, eps) = (cfg.momentum, cfg.eps);
        let bn = if nd == 1 { nn::batch_norm1d(p, c, cfg) } else { nn::batch_norm2d(p, c, cfg) };
        BatchNorm { bn, momentum, eps }
    }
}

impl ModuleT for BatchNorm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if let Some(g) = crate::dist::sync_bn::sync_bn_group().filter(|_| train) {
            let b = &self.bn;
            match g.sync_batch_norm(xs, b.ws.as_ref(), b.bs.as_ref(), &b.running_mean, &b.running_var, self.momentum, self.eps) {
                Ok(y) => return y,
                Err(e) => crate::dist::sync_bn::fail(e),
            }
        }
        self.bn.forward_t(xs, train)
    }
}

/// BatchNorm2d with weight 1, bias 0 (torchvision).
pub fn bn2d(p: nn::Path, c: i64) -> BatchNorm {
    BatchNorm::new(p, c, 2, Default::default())
}

/// fastai's `BatchNorm(ndim=1)`: weight 1, bias 1e-3.
pub fn bn1d_fastai(p: nn::Path, c: i64) -> BatchNorm {
    let cfg = nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), bs_init: nn::Init::Const(1e-3), ..Default::default() };
    BatchNorm::new(p, c, 1, cfg)
}

/// PyTorch's default Linear init (Kaiming uniform a=sqrt(5), bias U(-1/sqrt(fan_in), ..)).
pub fn linear(p: nn::Path, c_in: i64, c_out: i64, bias: bool) -> nn::Linear {
    let bound = 1.0 / (c_in as f64).sqrt();
    let cfg = nn::LinearConfig {
        ws_init: nn::Init::Uniform { lo: -bound, up: bound },
        bs_init: bias.then_some(nn::Init::Uniform { lo: -bound, up: bound }),
        bias,
    };
    nn::linear(p, c_in, c_out, cfg)
}

/// One embedding vector per image: a feature map average-pooled (`pool`), else flattened.
pub fn embed(x: Tensor, pool: bool) -> Tensor {
    if pool {
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    } else {
        x.flatten(1, -1)
    }
}

/// Rows scaled to unit L2 norm (as `F.normalize`).
pub fn unit_rows(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12)
}
