//! A configurable conv stack for small images (Omniglot 105 px, ORL faces 92x112), with
//! Koch et al. (2015)'s Siamese network as a preset. Output: a flat embedding.
use super::layers::{bn2d, linear, Seq};
use crate::opts::Choice;
use anyhow::{bail, Result};
use tch::nn;

crate::options! {
    /// A conv stack: conv (BatchNorm) ReLU (max-pool) per layer, then an embedding. The
    /// defaults are Koch et al. 2015's: 64@10x10, 128@7x7, 128@4x4, 256@4x4, a 4096-d sigmoid
    /// embedding.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    pub struct ConvNetSpec {
        // Needed to size the Linear layer; `convnet` refuses a call without it.
        /// input [height, width]
        opt input: (i64, i64) = (0, 0) => "required",
        /// input channels
        opt in_channels: i64 = 1,
        /// output channels of each conv
        opt channels: Vec<i64> = vec![64, 128, 128, 256],
        /// kernel size of each conv
        opt kernels: Vec<i64> = vec![10, 7, 4, 4],
        /// max-pool 2x2 after each conv
        opt pool: Vec<bool> = vec![true, true, true, false],
        /// BatchNorm after each conv
        opt batch_norm as bn: bool = false,
        /// embedding size (a Linear after flattening); 0 pools globally instead
        opt embed: i64 = 4096,
        /// sigmoid on the embedding (Koch et al.)
        opt sigmoid: bool = true,
        /// valid (no padding) or same (kernel/2)
        opt padding: Padding = Padding::Valid,
    }
}

/// How each conv is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// None, as Koch et al.'s convs: each conv shrinks the map by kernel - 1.
    Valid,
    /// kernel/2 on each side ("same" size for odd kernels), as Snell et al.'s four-block net.
    Same,
}

impl std::str::FromStr for Padding {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Padding> {
        Ok(match s {
            "valid" => Padding::Valid,
            "same" => Padding::Same,
            other => bail!("convnet option `padding` must be \"valid\" or \"same\", got \"{other}\""),
        })
    }
}

impl Choice for Padding {
    fn name(&self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
        }
    }
}

impl ConvNetSpec {
    /// Spatial size after the conv stack, or an error naming the layer where it vanishes.
    pub fn feature_size(&self) -> Result<(i64, i64)> {
        let (mut h, mut w) = self.input;
        for (i, &k) in self.kernels.iter().enumerate() {
            let shrink = k - 1 - 2 * self.pad(k);
            h -= shrink;
            w -= shrink;
            if self.pool[i] {
                h /= 2;
                w /= 2;
            }
            if h < 1 || w < 1 {
                bail!("convnet: a {}x{} input shrinks to nothing at conv layer {} (kernel {k})", self.input.0, self.input.1, i + 1);
            }
        }
        Ok((h, w))
    }

    fn pad(&self, kernel: i64) -> i64 {
        if self.padding == Padding::Same {
            kernel / 2
        } else {
            0
        }
    }

    pub fn out_features(&self) -> i64 {
        if self.embed > 0 {
            self.embed
        } else {
            *self.channels.last().unwrap_or(&self.in_channels)
        }
    }

    pub fn check(&self) -> Result<()> {
        if self.channels.is_empty() || self.channels.len() != self.kernels.len() || self.pool.len() != self.channels.len() {
            bail!(
                "convnet: channels ({}), kernels ({}) and pool ({}) must be non-empty lists of one length",
                self.channels.len(),
                self.kernels.len(),
                self.pool.len()
            );
        }
        self.feature_size().map(|_| ())
    }
}

pub fn convnet(p: &nn::Path, spec: &ConvNetSpec) -> Result<Seq> {
    spec.check()?;
    let mut seq = Seq::default();
    let mut c_in = spec.in_channels;
    for (i, (&c, &k)) in spec.channels.iter().zip(&spec.kernels).enumerate() {
        let name = format!("conv{}", i + 1);
        let cfg = nn::ConvConfig {
            bias: !spec.batch_norm,
            ws_init: nn::Init::Kaiming {
                dist: nn::init::NormalOrUniform::Normal,
                fan: nn::init::FanInOut::FanIn,
                non_linearity: nn::init::NonLinearity::ReLU,
            },
            bs_init: nn::Init::Const(0.0),
            padding: spec.pad(k),
            ..Default::default()
        };
        seq.push(name.clone(), format!("Conv2d({k}x{k})"), nn::conv2d(p / name.as_str(), c_in, c, k, cfg));
        if spec.batch_norm {
            let bn = format!("bn{}", i + 1);
            seq.push(bn.clone(), "BatchNorm2d", bn2d(p / bn.as_str(), c));
        }
        seq.push(format!("relu{}", i + 1), "ReLU", nn::func(|x| x.relu()));
        if spec.pool[i] {
            seq.push(format!("pool{}", i + 1), "MaxPool2d", nn::func(|x| x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)));
        }
        c_in = c;
    }
    if spec.embed > 0 {
        let (h, w) = spec.feature_size()?;
        seq.push("flatten", "Flatten", nn::func(|x| x.flatten(1, -1)));
        seq.push("fc", "Linear", linear(p / "fc", c_in * h * w, spec.embed, true));
        if spec.sigmoid {
            seq.push("sigmoid", "Sigmoid", nn::func(|x| x.sigmoid()));
        }
    } else {
        seq.push("pool", "AdaptiveAvgPool2d", nn::func(|x| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)));
    }
    Ok(seq)
}
