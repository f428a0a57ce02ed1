//! torchvision's ConvNeXt, with its parameter names (`features.1.0.block.0.weight`,
//! `features.1.0.layer_scale`, ...) so that its weights files load as they are: a 4x4
//! stride-4 stem, stages of blocks (depthwise 7x7 conv, LayerNorm over channels, a 4x MLP
//! with GELU, layer scale, stochastic depth, residual add), 2x2 stride-2 downsampling
//! between stages. Cut like fastai's `create_body`: `features`, then pooling.
use super::layers::Seq;
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// torchvision's `LayerNorm2d` (and the blocks' LayerNorm) epsilon.
const EPS: f64 = 1e-6;
/// torchvision's initial layer scale.
const LAYER_SCALE: f64 = 1e-6;

/// torchvision's init for convolutions and linear layers: trunc_normal_(std=0.02) (its
/// bounds, ±2, are 100 standard deviations out: a plain normal), zero bias.
fn weight_init() -> nn::Init {
    nn::Init::Randn { mean: 0.0, stdev: 0.02 }
}

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64, groups: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig { stride, padding, groups, bias: true, ws_init: weight_init(), bs_init: nn::Init::Const(0.0), ..Default::default() };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

fn linear(p: nn::Path, c_in: i64, c_out: i64) -> nn::Linear {
    nn::linear(p, c_in, c_out, nn::LinearConfig { ws_init: weight_init(), bs_init: Some(nn::Init::Const(0.0)), bias: true })
}

fn layer_norm(p: nn::Path, c: i64) -> nn::LayerNorm {
    nn::layer_norm(p, vec![c], nn::LayerNormConfig { eps: EPS, ..Default::default() })
}

/// LayerNorm over the channels of an NCHW tensor (torchvision's `LayerNorm2d`).
#[derive(Debug)]
struct LayerNorm2d(nn::LayerNorm);

impl ModuleT for LayerNorm2d {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Tensor {
        x.permute([0, 2, 3, 1]).apply(&self.0).permute([0, 3, 1, 2])
    }
}

/// torchvision's `CNBlock`.
#[derive(Debug)]
struct Block {
    dwconv: nn::Conv2D,
    norm: nn::LayerNorm,
    pw1: nn::Linear,
    pw2: nn::Linear,
    layer_scale: Tensor,
    /// The probability of dropping the residual branch of a sample, in training.
    drop: f64,
}

impl ModuleT for Block {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = x.apply(&self.dwconv).permute([0, 2, 3, 1]).apply(&self.norm).apply(&self.pw1).gelu("none").apply(&self.pw2).permute([0, 3, 1, 2]);
        let mut y = &self.layer_scale * y;
        if train && self.drop > 0.0 {
            // torchvision's StochasticDepth(p, "row"): per sample, kept with 1 - p, scaled up.
            let keep = 1.0 - self.drop;
            let mask = Tensor::empty([x.size()[0], 1, 1, 1], (y.kind(), y.device())).bernoulli_float_(keep);
            y = y * mask / keep;
        }
        y + x
    }
}

/// The first `kept` children (`features`, `avgpool`) of a ConvNeXt, created under `p`.
pub fn convnext_body(p: &nn::Path, depths: [usize; 4], dims: [i64; 4], stochastic_depth: f64, kept: usize) -> Seq {
    let f = p / "features";
    let mut features = Seq::default();
    let mut stem = Seq::default();
    stem.push("0", "Conv2d", conv(&f / 0 / 0, 3, dims[0], 4, 4, 0, 1));
    stem.push("1", "LayerNorm2d", LayerNorm2d(layer_norm(&f / 0 / 1, dims[0])));
    features.push("0", "Conv2dNormActivation", stem);
    let total: usize = depths.iter().sum();
    let mut block_id = 0;
    for (s, (&depth, &dim)) in depths.iter().zip(&dims).enumerate() {
        let stage_path = &f / (2 * s + 1);
        let mut stage = Seq::default();
        for b in 0..depth {
            let bp = &stage_path / b;
            let inner = &bp / "block";
            stage.push(
                b.to_string(),
                "CNBlock",
                Block {
                    dwconv: conv(&inner / 0, dim, dim, 7, 1, 3, dim),
                    norm: layer_norm(&inner / 2, dim),
                    pw1: linear(&inner / 3, dim, 4 * dim),
                    pw2: linear(&inner / 5, 4 * dim, dim),
                    layer_scale: bp.var("layer_scale", &[dim, 1, 1], nn::Init::Const(LAYER_SCALE)),
                    drop: stochastic_depth * block_id as f64 / (total as f64 - 1.0),
                },
            );
            block_id += 1;
        }
        features.push((2 * s + 1).to_string(), "Sequential", stage);
        if s + 1 < depths.len() {
            let dp = &f / (2 * s + 2);
            let mut down = Seq::default();
            down.push("0", "LayerNorm2d", LayerNorm2d(layer_norm(&dp / 0, dim)));
            down.push("1", "Conv2d", conv(&dp / 1, dim, dims[s + 1], 2, 2, 0, 1));
            features.push((2 * s + 2).to_string(), "Sequential", down);
        }
    }
    let mut body = Seq::default();
    body.push("features", "Sequential", features);
    if kept > 1 {
        body.push("avgpool", "AdaptiveAvgPool2d", nn::func(|x| x.adaptive_avg_pool2d([1, 1])));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Stochastic depth drops residual branches per sample in training only; the rest of
    /// a ConvNeXt (LayerNorm, no BatchNorm) is the same in both modes.
    #[test]
    fn stochastic_depth_acts_in_training_only() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let body = convnext_body(&vs.root(), [1, 1, 3, 1], [8, 16, 32, 64], 0.5, 1);
        tch::no_grad(|| {
            for (_, mut v) in vs.variables() {
                if v.size().len() == 3 {
                    let _ = v.fill_(0.5); // layer scales: make every block count
                }
            }
        });
        let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let eval = tch::no_grad(|| body.forward_t(&x, false));
        assert_eq!(eval.size(), [4, 64, 1, 1]);
        assert!(eval.equal(&tch::no_grad(|| body.forward_t(&x, false))), "eval is deterministic");
        let trains: Vec<Tensor> = (0..4).map(|_| tch::no_grad(|| body.forward_t(&x, true))).collect();
        assert!(trains.iter().any(|t| !t.equal(&eval)), "some branch was dropped in training");
        assert!(vs.variables().contains_key("features.5.0.layer_scale") && vs.variables().contains_key("features.6.1.weight"));
    }
}
