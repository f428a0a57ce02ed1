//! Losses matched to what a model outputs, and the conversion of outputs into class
//! probabilities `[N, C]` so that metrics and predictions treat every head alike.
use crate::model::{Model, Output};
use anyhow::{bail, Result};
use std::rc::Rc;
use tch::{Kind, Reduction, Tensor};

#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    CrossEntropy,
    /// CosFace (Wang et al. 2018): cross-entropy after `margin` (in logits, a cosine
    /// head's `scale * m`) is taken off each item's target-class logit, so that training
    /// asks for a margin between classes that predictions (no margin) then enjoy.
    MarginCrossEntropy {
        margin: f64,
    },
    BinaryCrossEntropy,
    /// Hadsell et al.: same pairs pulled together, different pairs pushed past `margin`.
    Contrastive {
        margin: f64,
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

/// The name a script gives the loss, for messages.
impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loss::CrossEntropy => f.write_str("cross_entropy"),
            Loss::MarginCrossEntropy { margin } => write!(f, "cross_entropy (target-class margin {margin})"),
            Loss::BinaryCrossEntropy => f.write_str("bce"),
            Loss::Contrastive { margin } => write!(f, "contrastive (margin {margin})"),
            Loss::Custom(c) => f.write_str(&c.name),
        }
    }
}

impl Loss {
    pub fn parse(name: &str, margin: f64) -> Result<Loss> {
        Ok(match name {
            "cross_entropy" | "ce" => Loss::CrossEntropy,
            "bce" | "binary_cross_entropy" => Loss::BinaryCrossEntropy,
            "contrastive" => Loss::Contrastive { margin },
            other => bail!("unknown loss `{other}`: use cross_entropy, bce or contrastive"),
        })
    }

    /// The loss a learner uses when the script names none, as fastai's Learner infers it
    /// from the model: what its output calls for, with CosFace's margin when the model
    /// trains with one (a cosine classifier's `scale * m`).
    pub fn default_for(model: &Model) -> Loss {
        match (model.output(), model.train_margin()) {
            (Output::Logits, Some(margin)) => Loss::MarginCrossEntropy { margin },
            (Output::Logits, None) => Loss::CrossEntropy,
            (Output::Logit, _) => Loss::BinaryCrossEntropy,
            (Output::Distance, _) => Loss::Contrastive { margin: 1.0 },
        }
    }

    pub fn check(&self, output: Output) -> Result<()> {
        let ok = matches!(
            (self, output),
            (Loss::CrossEntropy | Loss::MarginCrossEntropy { .. }, Output::Logits)
                | (Loss::BinaryCrossEntropy, Output::Logit)
                | (Loss::Contrastive { .. }, Output::Distance)
                | (Loss::Custom(_), _)
        );
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
            Loss::MarginCrossEntropy { margin } => with_target_margin(out, y, *margin).cross_entropy_for_logits(y),
            Loss::BinaryCrossEntropy => out.binary_cross_entropy_with_logits::<Tensor>(&y.to_kind(Kind::Float), None, None, Reduction::Mean),
            Loss::Contrastive { .. } => self.per_item(out, y)?.mean(Kind::Float),
        })
    }

    /// Each item's loss `[N]` (fastai's `reduction='none'`), for top losses.
    pub fn per_item(&self, out: &Tensor, y: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Loss::Custom(c) => return c.per_item(out, y),
            Loss::CrossEntropy => out.cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0),
            Loss::MarginCrossEntropy { margin } => {
                with_target_margin(out, y, *margin).cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0)
            }
            Loss::BinaryCrossEntropy => out.binary_cross_entropy_with_logits::<Tensor>(&y.to_kind(Kind::Float), None, None, Reduction::None),
            Loss::Contrastive { margin } => {
                let y = y.to_kind(Kind::Float);
                let same: Tensor = &y * out.square();
                let diff: Tensor = (1.0 - &y) * (*margin - out).clamp_min(0.0).square();
                (same + diff) * 0.5
            }
        })
    }

    /// The logit of "same" (class 1) of a two-class output `[N]`: the logit of a pair head,
    /// `l1 - l0` of two class logits, and `(margin/2 - d) * 10/margin` of a distance, so
    /// that a distance below half the margin counts as "same".
    pub fn same_logit(&self, out: &Tensor) -> Tensor {
        match self {
            Loss::CrossEntropy | Loss::MarginCrossEntropy { .. } => out.select(1, 1) - out.select(1, 0),
            Loss::BinaryCrossEntropy => out.shallow_clone(),
            Loss::Contrastive { margin } => (*margin / 2.0 - out) * (10.0 / margin),
            // A custom loss's outputs read as the default loss of their shape would.
            Loss::Custom(_) if out.dim() == 2 => out.select(1, 1) - out.select(1, 0),
            Loss::Custom(_) => out.shallow_clone(),
        }
    }

    /// Class probabilities `[N, C]`; for pair heads C = 2 (column 1 = same). `bias` is
    /// subtracted from the logit of "same" (two-class outputs only): the decision
    /// `argmax` makes then flips where the unbiased p(same) is `sigmoid(bias)`. A custom
    /// loss gives the raw outputs.
    pub fn probs(&self, out: &Tensor, bias: f64) -> Tensor {
        let p_same = match self {
            Loss::Custom(_) => return out.shallow_clone(),
            Loss::CrossEntropy | Loss::MarginCrossEntropy { .. } if bias == 0.0 => return out.softmax(-1, Kind::Float),
            Loss::CrossEntropy | Loss::MarginCrossEntropy { .. } => {
                return (out - Tensor::from_slice(&[0.0, bias as f32]).to_device(out.device())).softmax(-1, Kind::Float)
            }
            _ => (self.same_logit(out) - bias).sigmoid(),
        };
        Tensor::stack(&[1.0 - &p_same, p_same], 1)
    }
}

/// Logits `[N, C]` with `margin` subtracted from each row's target class `y` `[N]`.
fn with_target_margin(out: &Tensor, y: &Tensor, margin: f64) -> Tensor {
    out - out.zeros_like().scatter_value(1, &y.unsqueeze(1), margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_names_the_loss_and_output_as_scripts_write_them() {
        let e = Loss::Contrastive { margin: 1.0 }.check(Output::Logits).unwrap_err().to_string();
        assert!(e.contains("`contrastive (margin 1)`") && e.contains("[N, C] class logits"), "{e}");
        let e = Loss::BinaryCrossEntropy.check(Output::Distance).unwrap_err().to_string();
        assert!(e.contains("`bce`") && !e.contains("BinaryCrossEntropy") && !e.contains("Distance"), "{e}");
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
        hand_written_ce().check(Output::Distance).unwrap();
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
