//! fastai's `create_head`: concat pooling, then BatchNorm / Dropout / Linear blocks
//! (no bias after a BatchNorm), named like the PyTorch `nn.Sequential` it mirrors
//! (`2.weight`, `4.weight`, ...) so fastai/PyTorch weights map one to one.
use super::layers::{bn1d_fastai, linear, BatchNorm, Seq};
use anyhow::{bail, Result};
use tch::nn;

crate::options! {
    /// fastai's head for `nf` input channels and `n_out` outputs.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    pub struct HeadSpec {
        /// Input channels (create_head's argument).
        field nf: i64 = 0,
        /// Outputs (create_head's argument).
        field n_out: i64 = 0,
        /// dropout: the last layer's, earlier layers get half (fastai), or one per layer
        opt ps: Vec<f64> = vec![0.5],
        /// hidden layer sizes
        opt lin_ftrs: Vec<i64> = vec![512],
        /// concatenate average and max pooling
        opt concat_pool: bool = true,
        /// BatchNorm before the first Linear
        opt first_bn: bool = true,
        /// BatchNorm after the last Linear
        opt bn_final: bool = false,
        /// regression: [lo, hi], outputs squashed into it by a scaled sigmoid (fastai's y_range / SigmoidRange)
        opt y_range: Option<Vec<f64>> = None,
    }
}

impl HeadSpec {
    pub fn new(nf: i64, n_out: i64) -> HeadSpec {
        HeadSpec { nf, n_out, ..HeadSpec::default() }
    }

    /// The feature sizes of the linear stack: `[pooled, 512, n_out]` by default.
    pub fn features(&self) -> Vec<i64> {
        let pooled = if self.concat_pool { 2 * self.nf } else { self.nf };
        let mut f = vec![pooled];
        f.extend(&self.lin_ftrs);
        f.push(self.n_out);
        f
    }

    /// Dropout per block: one value `p` means `p/2` for all but the last block, `p` for it.
    pub fn dropouts(&self) -> Result<Vec<f64>> {
        let blocks = self.features().len() - 1;
        match self.ps.len() {
            1 => {
                let mut ps = vec![self.ps[0] / 2.0; blocks - 1];
                ps.push(self.ps[0]);
                Ok(ps)
            }
            n if n == blocks => Ok(self.ps.clone()),
            n => bail!("create_head: ps has {n} values but the head has {blocks} linear blocks"),
        }
    }

    pub fn check(&self) -> Result<()> {
        if self.nf <= 0 || self.n_out <= 0 {
            bail!("create_head: nf and n_out must be positive, got nf={} n_out={}", self.nf, self.n_out);
        }
        if let Some(p) = self.ps.iter().find(|p| !(0.0..1.0).contains(*p)) {
            bail!("create_head: dropout {p} is not in [0, 1)");
        }
        if let Some(r) = &self.y_range {
            if r.len() != 2 || !r.iter().all(|x| x.is_finite()) || r[0] >= r[1] {
                bail!("create_head: y_range must be [lo, hi] with lo < hi, got {r:?}");
            }
        }
        self.dropouts().map(|_| ())
    }
}

/// Builds the head under `p`. Input: a feature map `[N, nf, H, W]`.
pub fn create_head(p: &nn::Path, spec: &HeadSpec) -> Result<Seq> {
    spec.check()?;
    let feats = spec.features();
    let ps = spec.dropouts()?;
    let mut seq = Seq::default();
    let mut idx = 0;
    let mut next = || {
        idx += 1;
        (idx - 1).to_string()
    };
    if spec.concat_pool {
        seq.push(
            next(),
            "AdaptiveConcatPool2d",
            nn::func(|x| {
                let mp = x.adaptive_max_pool2d([1, 1]).0;
                let ap = x.adaptive_avg_pool2d([1, 1]);
                tch::Tensor::cat(&[mp, ap], 1)
            }),
        );
    } else {
        seq.push(next(), "AdaptiveAvgPool2d", nn::func(|x| x.adaptive_avg_pool2d([1, 1])));
    }
    seq.push(next(), "Flatten", nn::func(|x| x.flatten(1, -1)));
    let blocks = feats.len() - 1;
    for i in 0..blocks {
        let (ni, no) = (feats[i], feats[i + 1]);
        let bn = i > 0 || spec.first_bn;
        if bn {
            let n = next();
            seq.push(n.clone(), "BatchNorm1d", bn1d_fastai(p / n.as_str(), ni));
        }
        if ps[i] != 0.0 {
            let prob = ps[i];
            seq.push(next(), format!("Dropout(p={prob})"), nn::func_t(move |x, train| x.dropout(prob, train)));
        }
        let n = next();
        seq.push(n.clone(), "Linear", linear(p / n.as_str(), ni, no, !bn));
        if i + 1 < blocks {
            seq.push(next(), "ReLU", nn::func(|x| x.relu()));
        }
    }
    if spec.bn_final {
        let n = next();
        let cfg = nn::BatchNormConfig { momentum: 0.01, ws_init: nn::Init::Const(1.0), bs_init: nn::Init::Const(1e-3), ..Default::default() };
        seq.push(n.clone(), "BatchNorm1d", BatchNorm::new(p / n.as_str(), spec.n_out, 1, cfg));
    }
    if let Some(&[lo, hi]) = spec.y_range.as_deref() {
        seq.push(next(), format!("SigmoidRange({lo}, {hi})"), nn::func(move |x| x.sigmoid() * (hi - lo) + lo));
    }
    Ok(seq)
}
