//! ResNets (18 to 152, as the registry lists them) written so that parameter names equal
//! torchvision's `state_dict` keys (`conv1.weight`, `layer1.0.bn2.running_mean`,
//! `layer2.0.downsample.0.weight`, ...), and cut like fastai's `create_body`: the first
//! `n` children, pooling and `fc` dropped.
use super::layers::{bn2d, conv2d, BatchNorm, Seq};
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// torchvision's ResNet children in order, the names fastai's `cut` counts.
pub const RESNET_CHILDREN: &[&str] = &["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Block {
    Basic,
    Bottleneck,
}

/// Output channels of the body after `kept` children.
pub fn out_channels(block: Block, kept: usize) -> i64 {
    let expansion = if block == Block::Bottleneck { 4 } else { 1 };
    match kept {
        0..=4 => 64,
        5 => 64 * expansion,
        6 => 128 * expansion,
        7 => 256 * expansion,
        _ => 512 * expansion,
    }
}

#[derive(Debug)]
struct BasicBlock {
    conv1: nn::Conv2D,
    bn1: BatchNorm,
    conv2: nn::Conv2D,
    bn2: BatchNorm,
    downsample: Option<(nn::Conv2D, BatchNorm)>,
}

/// In-place add and ReLU where torchvision uses them (`out += identity`, `ReLU(inplace=True)`):
/// fewer allocations, same gradients.
fn residual(mut out: Tensor, id: &Tensor) -> Tensor {
    let _ = out.g_add_(id);
    let _ = out.relu_();
    out
}

impl ModuleT for BasicBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = x.apply(&self.conv1).apply_t(&self.bn1, train);
        let _ = out.relu_();
        let out = out.apply(&self.conv2).apply_t(&self.bn2, train);
        match &self.downsample {
            Some((c, b)) => residual(out, &x.apply(c).apply_t(b, train)),
            None => residual(out, x),
        }
    }
}

#[derive(Debug)]
struct Bottleneck {
    conv1: nn::Conv2D,
    bn1: BatchNorm,
    conv2: nn::Conv2D,
    bn2: BatchNorm,
    conv3: nn::Conv2D,
    bn3: BatchNorm,
    downsample: Option<(nn::Conv2D, BatchNorm)>,
}

impl ModuleT for Bottleneck {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut out = x.apply(&self.conv1).apply_t(&self.bn1, train);
        let _ = out.relu_();
        let mut out = out.apply(&self.conv2).apply_t(&self.bn2, train);
        let _ = out.relu_();
        let out = out.apply(&self.conv3).apply_t(&self.bn3, train);
        match &self.downsample {
            Some((c, b)) => residual(out, &x.apply(c).apply_t(b, train)),
            None => residual(out, x),
        }
    }
}

fn downsample(p: &nn::Path, c_in: i64, c_out: i64, stride: i64) -> Option<(nn::Conv2D, BatchNorm)> {
    (stride != 1 || c_in != c_out).then(|| {
        let d = p / "downsample";
        (conv2d(&d / "0", c_in, c_out, 1, stride, 0), bn2d(&d / "1", c_out))
    })
}

fn stage(p: nn::Path, block: Block, c_in: i64, planes: i64, n: usize, stride: i64) -> Seq {
    let mut seq = Seq::default();
    let mut c_in = c_in;
    for i in 0..n {
        let s = if i == 0 { stride } else { 1 };
        let b = &p / i;
        match block {
            Block::Basic => {
                seq.push(
                    i.to_string(),
                    "BasicBlock",
                    BasicBlock {
                        conv1: conv2d(&b / "conv1", c_in, planes, 3, s, 1),
                        bn1: bn2d(&b / "bn1", planes),
                        conv2: conv2d(&b / "conv2", planes, planes, 3, 1, 1),
                        bn2: bn2d(&b / "bn2", planes),
                        downsample: downsample(&b, c_in, planes, s),
                    },
                );
                c_in = planes;
            }
            Block::Bottleneck => {
                let out = planes * 4;
                seq.push(
                    i.to_string(),
                    "Bottleneck",
                    Bottleneck {
                        conv1: conv2d(&b / "conv1", c_in, planes, 1, 1, 0),
                        bn1: bn2d(&b / "bn1", planes),
                        conv2: conv2d(&b / "conv2", planes, planes, 3, s, 1),
                        bn2: bn2d(&b / "bn2", planes),
                        conv3: conv2d(&b / "conv3", planes, out, 1, 1, 0),
                        bn3: bn2d(&b / "bn3", out),
                        downsample: downsample(&b, c_in, out, s),
                    },
                );
                c_in = out;
            }
        }
    }
    seq
}

/// The first `kept` children of a ResNet, created under `p` (fastai `create_body`).
pub fn resnet_body(p: &nn::Path, block: Block, layers: [usize; 4], kept: usize) -> Seq {
    let expansion = if block == Block::Bottleneck { 4 } else { 1 };
    let mut seq = Seq::default();
    for (i, name) in RESNET_CHILDREN.iter().take(kept).enumerate() {
        match i {
            0 => seq.push("conv1", "Conv2d", conv2d(p / "conv1", 3, 64, 7, 2, 3)),
            1 => seq.push("bn1", "BatchNorm2d", bn2d(p / "bn1", 64)),
            2 => seq.push(
                "relu",
                "ReLU",
                nn::func(|x| {
                    let mut y = x.shallow_clone();
                    let _ = y.relu_();
                    y
                }),
            ),
            3 => seq.push("maxpool", "MaxPool2d", nn::func(|x| x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false))),
            4..=7 => {
                let k = i - 4;
                let planes = 64 << k;
                let c_in = if k == 0 { 64 } else { (planes / 2) * expansion };
                let stride = if k == 0 { 1 } else { 2 };
                seq.push(*name, "Sequential", stage(p / *name, block, c_in, planes, layers[k], stride));
            }
            8 => seq.push("avgpool", "AdaptiveAvgPool2d", nn::func(|x| x.adaptive_avg_pool2d([1, 1]))),
            _ => unreachable!("children_kept never keeps fc"),
        }
    }
    seq
}

/// fastai's `_resnet_split` for a body's parameter names: stem..layer2 | layer3..layer4.
pub fn resnet_group(name_in_body: &str) -> usize {
    if name_in_body.starts_with("layer3") || name_in_body.starts_with("layer4") {
        1
    } else {
        0
    }
}
