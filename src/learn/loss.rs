//! Losses matched to what a model outputs and to the targets (classes, numbers, label
//! sets), and the conversion of outputs into what metrics and predictions read (class
//! probabilities `[N, C]` for every class head alike, label probabilities, numbers).
//! A loss is one variant here: its name, `compute` (the batch mean) and `per_item`.
use super::data::TargetKind;
use crate::model::{Margin, Model, Output};
use anyhow::{bail, Result};
use std::rc::Rc;
use tch::{Kind, Reduction, Tensor};

#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    CrossEntropy,
    /// Cross-entropy against targets smoothed to `1 - eps` on the class and `eps / C`
    /// spread over all classes (fastai's LabelSmoothingCrossEntropy, PyTorch's
    /// `label_smoothing`).
    LabelSmoothing {
        eps: f64,
    },
    /// Lin et al. 2017: cross-entropy scaled by `(1 - p_t)^gamma`, so easy items count
    /// less (fastai's FocalLossFlat).
    Focal {
        gamma: f64,
    },
    /// CosFace (Wang et al. 2018) or ArcFace (Deng et al. 2019): cross-entropy after a
    /// cosine head's `margin` is applied to each item's target-class logit, so that
    /// training asks for a margin between classes that predictions (no margin) then enjoy.
    MarginCrossEntropy {
        margin: Margin,
    },
    BinaryCrossEntropy,
    /// Hadsell et al.: same pairs pulled together, different pairs pushed past `margin`.
    Contrastive {
        margin: f64,
    },
    /// Binary cross-entropy with logits on every label of multi-hot targets
    /// (fastai's BCEWithLogitsLossFlat).
    BceMulti,
    /// Mean squared error over every output (fastai's MSELossFlat).
    Mse,
    /// Mean absolute error (fastai's L1LossFlat).
    L1,
    /// Huber-like: squared below `beta`, absolute above (PyTorch's SmoothL1Loss).
    SmoothL1 {
        beta: f64,
    },
    /// Any callable from (outputs, targets) to the batch's loss, as fastai takes any
    /// function as `loss_func` (a script's closure `|preds, targets| ...`).
    Custom(CustomLoss),
}

/// The callable of a custom loss; errors are the callable's own (a script names its line).
pub type LossFn = dyn Fn(&Tensor, &Tensor) -> Result<Tensor>;

/// A loss written by the caller, named for messages. Like a plain function given to
/// fastai, it has no activation: probabilities, metrics and predictions see the model's
/// raw outputs. `Rc`, as the learner is: a script closure lives on the script's thread.
#[derive(Clone)]
pub struct CustomLoss {
    pub name: String,
    pub f: Rc<LossFn>,
}

impl std::fmt::Debug for CustomLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomLoss({})", self.name)
    }
}

/// The same callable (two closures are never compared by what they compute).
impl PartialEq for CustomLoss {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.f, &other.f)
    }
}

impl CustomLoss {
    pub fn new(name: impl Into<String>, f: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + 'static) -> CustomLoss {
        CustomLoss { name: name.into(), f: Rc::new(f) }
    }

    /// The batch's loss as a 0-dim float tensor; anything but one number is refused.
    pub fn batch(&self, out: &Tensor, y: &Tensor) -> Result<Tensor> {
        let l = (self.f)(out, y)?;
        if !l.defined() || l.numel() != 1 {
            let shape = if l.defined() { format!("{:?}", l.size()) } else { "undefined".into() };
            bail!("loss `{}` returned a tensor of shape {shape}: a loss is one number per batch (end it with .mean() or .sum())", self.name);
        }
        if !l.is_floating_point() {
            bail!("loss `{}` returned a {:?} tensor: a loss is a floating-point number (use .float())", self.name, l.kind());
        }
        if out.requires_grad() && !l.requires_grad() {
            bail!("loss `{}` does not depend on the predictions (its result has no gradient): compute it from them with tensor ops", self.name);
        }
        Ok(l.reshape([] as [i64; 0]))
    }

    /// Each item's loss `[N]`: the callable on every item alone, so that the mean over
    /// items is the validation loss and the worst items are the top losses.
    pub fn per_item(&self, out: &Tensor, y: &Tensor) -> Result<Tensor> {
        let items = (0..out.size().first().copied().unwrap_or(0))
            .map(|i| self.batch(&out.narrow(0, i, 1), &y.narrow(0, i, 1)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::stack(&items, 0))
    }
}

/// The settings that named losses read (the learner's options).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossParams {
    pub margin: f64,
    pub label_smoothing: Option<f64>,
    pub gamma: f64,
    pub beta: f64,
}

impl Default for LossParams {
    fn default() -> Self {
        LossParams { margin: 1.0, label_smoothing: None, gamma: 2.0, beta: 1.0 }
    }
}

/// The label smoothing fastai's LabelSmoothingCrossEntropy uses when none is given.
pub const DEFAULT_LABEL_SMOOTHING: f64 = 0.1;

/// The name a script gives the loss, for messages.
impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loss::CrossEntropy => f.write_str("cross_entropy"),
            Loss::LabelSmoothing { eps } => write!(f, "cross_entropy (label smoothing {eps})"),
            Loss::Focal { gamma } => write!(f, "focal (gamma {gamma})"),
            Loss::MarginCrossEntropy { margin } => write!(f, "cross_entropy ({margin})"),
            Loss::BinaryCrossEntropy => f.write_str("bce"),
            Loss::Contrastive { margin } => write!(f, "contrastive (margin {margin})"),
            Loss::BceMulti => f.write_str("bce_multi"),
            Loss::Mse => f.write_str("mse"),
            Loss::L1 => f.write_str("l1"),
            Loss::SmoothL1 { beta } => write!(f, "smooth_l1 (beta {beta})"),
            Loss::Custom(c) => f.write_str(&c.name),
        }
    }
}

/// The losses each kind of target takes, as scripts name them.
fn losses_for(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Classes => "cross_entropy, label_smoothing_cross_entropy, focal (class logits), bce (a pair logit), contrastive (distances)",
        TargetKind::Floats => "mse, l1, smooth_l1",
        TargetKind::MultiHot => "bce_multi",
    }
}

/// How targets of each kind are asked for, for a refusal that names the fix.
fn how_to_get(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Classes => "one label per item",
        TargetKind::Floats => "a float label column, or regression: true on image_loaders",
        TargetKind::MultiHot => "label_delim on image_loaders, e.g. #{ label_delim: \" \" }",
    }
}

impl Loss {
    pub const NAMES: &'static str = "cross_entropy, label_smoothing_cross_entropy, focal, bce, contrastive, bce_multi, mse, l1, smooth_l1";

    pub fn parse(name: &str, p: &LossParams) -> Result<Loss> {
        let smoothing = |eps: f64| -> Result<Loss> {
            if !(0.0..1.0).contains(&eps) {
                bail!("label_smoothing must be in [0, 1), got {eps}");
            }
            Ok(if eps == 0.0 { Loss::CrossEntropy } else { Loss::LabelSmoothing { eps } })
        };
        Ok(match name {
            "cross_entropy" | "ce" => smoothing(p.label_smoothing.unwrap_or(0.0))?,
            "label_smoothing_cross_entropy" => smoothing(p.label_smoothing.unwrap_or(DEFAULT_LABEL_SMOOTHING))?,
            "focal" if p.gamma >= 0.0 => Loss::Focal { gamma: p.gamma },
            "focal" => bail!("focal gamma must not be negative, got {}", p.gamma),
            "bce" | "binary_cross_entropy" => Loss::BinaryCrossEntropy,
            "contrastive" => Loss::Contrastive { margin: p.margin },
            "bce_multi" => Loss::BceMulti,
            "mse" => Loss::Mse,
            "l1" => Loss::L1,
            "smooth_l1" if p.beta > 0.0 => Loss::SmoothL1 { beta: p.beta },
            "smooth_l1" => bail!("smooth_l1 beta must be positive, got {}", p.beta),
            other => bail!("unknown loss `{other}`: use {}", Loss::NAMES),
        })
    }

    /// The loss a learner uses when the script names none, as fastai's Learner infers it
    /// from the targets (numbers: mse, label sets: bce_multi) and, for classes, from the
    /// model: what its output calls for, with the margin a cosine classifier trains with
    /// (CosFace's, ArcFace's).
    pub fn default_for(model: &Model, kind: TargetKind) -> Loss {
        match (kind, model.output(), model.train_margin()) {
            (TargetKind::Floats, _, _) => Loss::Mse,
            (TargetKind::MultiHot, _, _) => Loss::BceMulti,
            (TargetKind::Classes, Output::Logits, Some(margin)) => Loss::MarginCrossEntropy { margin },
            (TargetKind::Classes, Output::Logits, None) => Loss::CrossEntropy,
            (TargetKind::Classes, Output::Logit, _) => Loss::BinaryCrossEntropy,
            (TargetKind::Classes, Output::Distance, _) => Loss::Contrastive { margin: 1.0 },
        }
    }

    /// The kind of targets the loss takes.
    pub fn targets(&self) -> TargetKind {
        match self {
            Loss::BceMulti => TargetKind::MultiHot,
            Loss::Mse | Loss::L1 | Loss::SmoothL1 { .. } => TargetKind::Floats,
            _ => TargetKind::Classes,
        }
    }

    /// Whether the loss fits the model's output and the data's targets; a refusal names
    /// the losses that would fit, or how to get the targets the loss needs.
    pub fn check(&self, output: Output, kind: TargetKind) -> Result<()> {
        if matches!(self, Loss::Custom(_)) {
            return Ok(());
        }
        if self.targets() != kind {
            bail!(
                "loss `{self}` needs {} ({}), but these loaders give {kind}: use {} (or name no loss: the learner picks it from the targets)",
                self.targets(),
                how_to_get(self.targets()),
                losses_for(kind)
            );
        }
        let ok = match self {
            Loss::BinaryCrossEntropy => output == Output::Logit,
            Loss::Contrastive { .. } => output == Output::Distance,
            _ => output == Output::Logits,
        };
        if !ok {
            bail!("loss `{self}` does not fit a model that outputs {output} (logits: cross_entropy, logit: bce, distance: contrastive)");
        }
        Ok(())
    }

    /// Mean loss of a batch (libtorch's fused reductions where it has them).
    pub fn compute(&self, out: &Tensor, y: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Loss::Custom(c) => return c.batch(out, y),
            Loss::CrossEntropy => out.cross_entropy_for_logits(y),
            Loss::LabelSmoothing { eps } => out.cross_entropy_loss::<Tensor>(y, None, Reduction::Mean, -100, *eps),
            Loss::MarginCrossEntropy { margin } => margin.apply(out, y).cross_entropy_for_logits(y),
            Loss::BinaryCrossEntropy => out.binary_cross_entropy_with_logits::<Tensor>(&y.to_kind(Kind::Float), None, None, Reduction::Mean),
            Loss::Focal { .. } | Loss::Contrastive { .. } => self.per_item(out, y)?.mean(Kind::Float),
            // The "flat" losses: every output against its target, as fastai's *Flat do.
            Loss::BceMulti => out.flatten(0, -1).binary_cross_entropy_with_logits::<Tensor>(&y.flatten(0, -1), None, None, Reduction::Mean),
            Loss::Mse => out.flatten(0, -1).mse_loss(&y.flatten(0, -1), Reduction::Mean),
            Loss::L1 => out.flatten(0, -1).l1_loss(&y.flatten(0, -1), Reduction::Mean),
            Loss::SmoothL1 { beta } => out.flatten(0, -1).smooth_l1_loss(&y.flatten(0, -1), Reduction::Mean, *beta),
        })
    }

    /// Each item's loss `[N]` (fastai's `reduction='none'`; for several outputs their
    /// mean), for top losses.
    pub fn per_item(&self, out: &Tensor, y: &Tensor) -> Result<Tensor> {
        let rows = |t: Tensor| if t.dim() > 1 { t.mean_dim(-1, false, Kind::Float) } else { t };
        let flat = |t: &Tensor| t.reshape([out.size()[0], -1]);
        Ok(match self {
            Loss::Custom(c) => return c.per_item(out, y),
            Loss::CrossEntropy => out.cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0),
            Loss::LabelSmoothing { eps } => out.cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, *eps),
            Loss::Focal { gamma } => {
                let ce = out.cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0);
                let hard: Tensor = 1.0 - (-&ce).exp();
                hard.pow_tensor_scalar(*gamma) * ce
            }
            Loss::MarginCrossEntropy { margin } => margin.apply(out, y).cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0),
            Loss::BinaryCrossEntropy => out.binary_cross_entropy_with_logits::<Tensor>(&y.to_kind(Kind::Float), None, None, Reduction::None),
            Loss::Contrastive { margin } => {
                let y = y.to_kind(Kind::Float);
                let same: Tensor = &y * out.square();
                let diff: Tensor = (1.0 - &y) * (*margin - out).clamp_min(0.0).square();
                (same + diff) * 0.5
            }
            Loss::BceMulti => rows(flat(out).binary_cross_entropy_with_logits::<Tensor>(&flat(y), None, None, Reduction::None)),
            Loss::Mse => rows(flat(out).mse_loss(&flat(y), Reduction::None)),
            Loss::L1 => rows(flat(out).l1_loss(&flat(y), Reduction::None)),
            Loss::SmoothL1 { beta } => rows(flat(out).smooth_l1_loss(&flat(y), Reduction::None, *beta)),
        })
    }

    /// The logit of "same" (class 1) of a two-class output `[N]`: the logit of a pair head,
    /// `l1 - l0` of two class logits, and `(margin/2 - d) * 10/margin` of a distance, so
    /// that a distance below half the margin counts as "same". None for losses over
    /// numbers or label sets, which have no "same" (nor a closure's outputs of other shapes).
    pub fn same_logit(&self, out: &Tensor) -> Option<Tensor> {
        Some(match self {
            Loss::CrossEntropy | Loss::LabelSmoothing { .. } | Loss::Focal { .. } | Loss::MarginCrossEntropy { .. } => {
                out.select(1, 1) - out.select(1, 0)
            }
            Loss::BinaryCrossEntropy => out.shallow_clone(),
            Loss::Contrastive { margin } => distance_logit(out, *margin),
            Loss::BceMulti | Loss::Mse | Loss::L1 | Loss::SmoothL1 { .. } => return None,
            // A custom loss's outputs read as the default loss of their shape would.
            Loss::Custom(_) if out.dim() == 2 && out.size()[1] == 2 => out.select(1, 1) - out.select(1, 0),
            Loss::Custom(_) if out.dim() == 1 => out.shallow_clone(),
            Loss::Custom(_) => return None,
        })
    }

    /// What metrics and predictions read from outputs: class probabilities `[N, C]` (for
    /// pair heads C = 2, column 1 = same), each label's probability `[N, C]` (the sigmoid,
    /// as fastai's BCEWithLogitsLossFlat activates), or the numbers themselves `[N, k]`.
    /// `bias` is subtracted from the logit of "same" (two-class outputs only): the
    /// decision `argmax` makes then flips where the unbiased p(same) is `sigmoid(bias)`.
    pub fn probs(&self, out: &Tensor, bias: f64) -> Tensor {
        match self {
            Loss::CrossEntropy | Loss::LabelSmoothing { .. } | Loss::Focal { .. } | Loss::MarginCrossEntropy { .. } if bias == 0.0 => {
                out.softmax(-1, Kind::Float)
            }
            Loss::CrossEntropy | Loss::LabelSmoothing { .. } | Loss::Focal { .. } | Loss::MarginCrossEntropy { .. } => {
                (out - Tensor::from_slice(&[0.0, bias as f32]).to_device(out.device())).softmax(-1, Kind::Float)
            }
            Loss::BinaryCrossEntropy => pair_probs(out - bias),
            Loss::Contrastive { margin } => pair_probs(distance_logit(out, *margin) - bias),
            Loss::BceMulti => out.sigmoid(),
            // A custom loss, like a plain function in fastai, has no activation.
            Loss::Mse | Loss::L1 | Loss::SmoothL1 { .. } | Loss::Custom(_) => out.shallow_clone(),
        }
    }
}

/// `[N, 2]` probabilities (different, same) from the logit of same.
fn pair_probs(logit: Tensor) -> Tensor {
    let p_same = logit.sigmoid();
    Tensor::stack(&[1.0 - &p_same, p_same], 1)
}

/// The logit of same for a distance `d`: `(margin/2 - d) * 10/margin`.
fn distance_logit(d: &Tensor, margin: f64) -> Tensor {
    (margin / 2.0 - d) * (10.0 / margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_names_the_loss_and_output_as_scripts_write_them() {
        let e = Loss::Contrastive { margin: 1.0 }.check(Output::Logits, TargetKind::Classes).unwrap_err().to_string();
        assert!(e.contains("`contrastive (margin 1)`") && e.contains("[N, C] class logits"), "{e}");
        let e = Loss::BinaryCrossEntropy.check(Output::Distance, TargetKind::Classes).unwrap_err().to_string();
        assert!(e.contains("`bce`") && !e.contains("BinaryCrossEntropy") && !e.contains("Distance"), "{e}");
    }

    /// Values computed once with PyTorch 2.11 (the venv's), e.g.
    /// `F.cross_entropy(lg, y, label_smoothing=0.1, reduction='none')`; the focal loss as
    /// fastai's FocalLoss writes it: `ce = F.cross_entropy(lg, y, reduction='none');
    /// ((1 - exp(-ce))**2 * ce)`.
    fn close(t: &Tensor, want: &[f64]) {
        let got = Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap();
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    fn t2(v: &[f32], cols: i64) -> Tensor {
        Tensor::from_slice(v).view([-1, cols])
    }

    #[test]
    fn class_losses_match_pytorch() {
        let lg = t2(&[1.0, -0.5, 2.0, 0.3, 0.2, -1.0], 3);
        let y = Tensor::from_slice(&[2i64, 1]);
        let p = LossParams::default();
        close(&Loss::parse("cross_entropy", &p).unwrap().compute(&lg, &y).unwrap(), &[0.6248282194137573]);
        let ls = Loss::parse("label_smoothing_cross_entropy", &p).unwrap();
        assert_eq!(ls, Loss::LabelSmoothing { eps: 0.1 }, "fastai's eps 0.1 by default");
        assert_eq!(Loss::parse("cross_entropy", &LossParams { label_smoothing: Some(0.1), ..p }).unwrap(), ls);
        close(&ls.compute(&lg, &y).unwrap(), &[0.7014948725700378]);
        close(&ls.per_item(&lg, &y).unwrap(), &[0.4882057309150696, 0.9147839546203613]);
        let focal = Loss::parse("focal", &p).unwrap();
        close(&focal.compute(&lg, &y).unwrap(), &[0.16785722970962524]);
        close(&focal.per_item(&lg, &y).unwrap(), &[0.035780489444732666, 0.2999339699745178]);
    }

    #[test]
    fn regression_and_multi_label_losses_match_pytorch() {
        let (out, y) = (t2(&[0.5, 2.0, -1.0], 1), t2(&[1.0, 0.0, -0.5], 1));
        for (name, mean, items) in
            [("mse", 1.5, [0.25, 4.0, 0.25]), ("l1", 1.0, [0.5, 2.0, 0.5]), ("smooth_l1", 0.5833333134651184, [0.125, 1.5, 0.125])]
        {
            let l = Loss::parse(name, &LossParams::default()).unwrap();
            close(&l.compute(&out, &y).unwrap(), &[mean]);
            close(&l.per_item(&out, &y).unwrap(), &items);
            close(&l.probs(&out, 0.0), &[0.5, 2.0, -1.0]);
        }
        let (lg, hot) = (t2(&[1.0, -2.0, 0.5, 0.0, 3.0, -1.0], 3), t2(&[1., 0., 1., 0., 1., 1.], 3));
        close(&Loss::BceMulti.compute(&lg, &hot).unwrap(), &[0.4948771893978119]);
        close(&Loss::BceMulti.per_item(&lg, &hot).unwrap(), &[0.3047555983066559, 0.6849987506866455]);
        assert!(Loss::BceMulti.same_logit(&lg).is_none());
    }

    #[test]
    fn a_loss_for_other_targets_is_refused_naming_the_fix() {
        let e = Loss::BceMulti.check(Output::Logits, TargetKind::Classes).unwrap_err().to_string();
        assert!(e.contains("`bce_multi` needs multi-hot targets") && e.contains("label_delim") && e.contains("use cross_entropy"), "{e}");
        let e = Loss::CrossEntropy.check(Output::Logits, TargetKind::Floats).unwrap_err().to_string();
        assert!(e.contains("these loaders give float targets") && e.contains("use mse, l1, smooth_l1"), "{e}");
        assert!(Loss::Mse.check(Output::Logits, TargetKind::Floats).is_ok());
        let e = Loss::parse("huber", &LossParams::default()).unwrap_err().to_string();
        assert!(e.contains("unknown loss `huber`") && e.contains("smooth_l1"), "{e}");
        assert!(Loss::parse("cross_entropy", &LossParams { label_smoothing: Some(1.5), ..LossParams::default() }).is_err());
    }

    /// Cross-entropy written as fastai users write it by hand.
    fn hand_written_ce() -> Loss {
        Loss::Custom(CustomLoss::new("my_ce", |o: &Tensor, y: &Tensor| {
            Ok(-o.log_softmax(1, Kind::Float).gather(1, &y.unsqueeze(1), false).mean(Kind::Float))
        }))
    }

    /// The loss and the gradient it sends into the logits.
    fn loss_and_grad(loss: &Loss, logits: &Tensor, y: &Tensor) -> (f64, Tensor) {
        let x = logits.detach().set_requires_grad(true);
        let l = loss.compute(&x, y).unwrap();
        l.backward();
        (l.double_value(&[]), x.grad())
    }

    #[test]
    fn a_custom_loss_trains_through_its_callable_as_the_built_in_one() {
        tch::manual_seed(0);
        let logits = Tensor::randn([6, 4], (Kind::Float, tch::Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 3, 1, 1, 2, 0]);
        let (mine, my_grad) = loss_and_grad(&hand_written_ce(), &logits, &y);
        let (theirs, their_grad) = loss_and_grad(&Loss::CrossEntropy, &logits, &y);
        assert!((mine - theirs).abs() < 1e-6, "{mine} vs {theirs}");
        assert!(my_grad.abs().sum(Kind::Float).double_value(&[]) > 0.1, "the gradient flows back through the callable");
        assert!((my_grad - their_grad).abs().max().double_value(&[]) < 1e-7);
        let (a, b) = (hand_written_ce().per_item(&logits, &y).unwrap(), Loss::CrossEntropy.per_item(&logits, &y).unwrap());
        assert_eq!(a.size(), [6]);
        assert!((a - b).abs().max().double_value(&[]) < 1e-6, "item by item, the same losses");
        hand_written_ce().check(Output::Distance, TargetKind::Floats).unwrap();
        assert_eq!(hand_written_ce().to_string(), "my_ce");
    }

    #[test]
    fn a_custom_loss_must_return_one_float() {
        let out = Tensor::ones([3, 2], (Kind::Float, tch::Device::Cpu));
        let y = Tensor::zeros([3], (Kind::Int64, tch::Device::Cpu));
        let per_row = Loss::Custom(CustomLoss::new("rows", |o: &Tensor, _: &Tensor| Ok(o.sum_dim_intlist(1, false, None))));
        let e = per_row.compute(&out, &y).unwrap_err().to_string();
        assert!(e.contains("loss `rows` returned a tensor of shape [3]") && e.contains(".mean()"), "{e}");
        let ints = Loss::Custom(CustomLoss::new("ints", |_: &Tensor, y: &Tensor| Ok(y.sum(None))));
        let e = ints.compute(&out, &y).unwrap_err().to_string();
        assert!(e.contains("loss `ints` returned a Int64 tensor") && e.contains(".float()"), "{e}");
        let failing = Loss::Custom(CustomLoss::new("bad", |_: &Tensor, _: &Tensor| anyhow::bail!("the callable's own error")));
        assert_eq!(failing.compute(&out, &y).unwrap_err().to_string(), "the callable's own error");
    }
}
