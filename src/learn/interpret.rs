//! fastai's `ClassificationInterpretation`: what the model gets wrong on the validation
//! set. The confusion matrix (rows: actual class, columns: predicted), the most confused
//! pairs of classes, and the items with the highest loss, as data and as pictures. Pair
//! models are two-class models (`different`, `same`), so they are interpreted alike and
//! their top-loss tiles show both images of the pair. Multi-label and regression models
//! have top losses too (their items' labels or numbers); the confusion matrix, which
//! needs one class per item, is refused for them.
use super::data::TargetKind;
use super::learner::Learner;
use crate::data::grid::{save_grid, tile_width, wrap, Tile, Tone};
use anyhow::{bail, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Top-loss images are magnified to at least this side, so that a title line holds
/// `predicted: american_pit_bull_terrier`'s class name whole.
const TILE_SIDE: u32 = 224;

/// What an item is, or is predicted to be: a class, a set of labels (indices into the
/// vocabulary), or numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Class(usize),
    Labels(Vec<usize>),
    Values(Vec<f64>),
}

impl Decision {
    /// As titles and scripts show it: the class name, the labels joined by spaces, the numbers.
    pub fn text(&self, vocab: &[String]) -> String {
        let name = |i: &usize| vocab.get(*i).cloned().unwrap_or_else(|| i.to_string());
        match self {
            Decision::Class(c) => name(c),
            Decision::Labels(ls) => ls.iter().map(name).collect::<Vec<_>>().join(" "),
            Decision::Values(v) => v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", "),
        }
    }
}

/// One validation item's outcome (its index is its place in the validation set).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub index: usize,
    pub actual: Decision,
    pub predicted: Decision,
    pub loss: f64,
    /// Probability of the predicted class; for label sets the highest label probability;
    /// NaN for numbers.
    pub prob: f64,
    /// Probability of the actual class; for label sets the lowest probability among the
    /// item's labels (NaN when it has none); NaN for numbers.
    pub prob_actual: f64,
}

pub struct Interpretation {
    pub vocab: Vec<String>,
    pub targets: TargetKind,
    /// Every validation item, in order.
    pub items: Vec<Outcome>,
}

fn to_f64s(t: &Tensor) -> Result<Vec<f64>> {
    Ok(Vec::<f64>::try_from(t.to_kind(Kind::Double).to_device(Device::Cpu).flatten(0, -1))?)
}

impl Interpretation {
    /// Runs the model over the validation set (the learner's threshold applied).
    pub fn from_learner(learn: &Learner) -> Result<Interpretation> {
        let v = learn.valid_items()?;
        let width = v.probs.size()[1] as usize;
        let probs = to_f64s(&v.probs)?;
        let losses = to_f64s(&v.losses)?;
        let targets = to_f64s(&v.targets)?;
        let mut vocab = learn.data.vocab();
        if vocab.len() != width {
            vocab = (0..width).map(|i| i.to_string()).collect();
        }
        let (kind, thresh) = (learn.targets, learn.threshold());
        let items = losses
            .iter()
            .enumerate()
            .map(|(i, &loss)| {
                let row = &probs[i * width..(i + 1) * width];
                let (actual, predicted, prob, prob_actual) = match kind {
                    TargetKind::Classes => {
                        // argmax, first of equals (as torch's)
                        let predicted = (0..width).fold(0, |best, c| if row[c] > row[best] { c } else { best });
                        let actual = targets[i] as usize;
                        (Decision::Class(actual), Decision::Class(predicted), row[predicted], row.get(actual).copied().unwrap_or(f64::NAN))
                    }
                    TargetKind::MultiHot => {
                        let hot = &targets[i * width..(i + 1) * width];
                        let actual: Vec<usize> = (0..width).filter(|&c| hot[c] > 0.5).collect();
                        let low = actual.iter().map(|&c| row[c]).fold(f64::NAN, f64::min);
                        let high = row.iter().copied().fold(f64::NAN, f64::max);
                        (Decision::Labels(actual), Decision::Labels((0..width).filter(|&c| row[c] > thresh).collect()), high, low)
                    }
                    TargetKind::Floats => {
                        let actual = targets[i * width..(i + 1) * width].to_vec();
                        (Decision::Values(actual), Decision::Values(row.to_vec()), f64::NAN, f64::NAN)
                    }
                };
                Outcome { index: i, actual, predicted, loss, prob, prob_actual }
            })
            .collect();
        Ok(Interpretation { vocab, targets: kind, items })
    }

    /// Counts by actual class (rows) and predicted class (columns), fastai's layout; only
    /// for one class per item.
    pub fn confusion_matrix(&self) -> Result<Vec<Vec<usize>>> {
        if self.targets != TargetKind::Classes {
            bail!(
                "a confusion matrix needs one class per item, and this model has {}: look at its top_losses(k) and plot_top_losses(k, path) instead",
                self.targets
            );
        }
        let c = self.vocab.len();
        let mut m = vec![vec![0; c]; c];
        for o in &self.items {
            if let (Decision::Class(a), Decision::Class(p)) = (&o.actual, &o.predicted) {
                if *a < c {
                    m[*a][*p] += 1;
                }
            }
        }
        Ok(m)
    }

    /// Off-diagonal cells with at least `min_val` items as (actual, predicted, count),
    /// most frequent first (ties in class order), as fastai's `most_confused`.
    pub fn most_confused(&self, min_val: usize) -> Result<Vec<(String, String, usize)>> {
        let m = self.confusion_matrix()?;
        let mut out: Vec<(String, String, usize)> = Vec::new();
        for (a, row) in m.iter().enumerate() {
            for (p, &n) in row.iter().enumerate() {
                if a != p && n >= min_val.max(1) {
                    out.push((self.vocab[a].clone(), self.vocab[p].clone(), n));
                }
            }
        }
        out.sort_by_key(|y| std::cmp::Reverse(y.2));
        Ok(out)
    }

    /// The `k` items with the highest loss, highest first (ties by index).
    pub fn top_losses(&self, k: usize) -> Vec<&Outcome> {
        let mut v: Vec<&Outcome> = self.items.iter().collect();
        v.sort_by(|a, b| b.loss.total_cmp(&a.loss).then(a.index.cmp(&b.index)));
        v.truncate(k);
        v
    }

    /// The top-loss items as an image grid, fastai's `plot_top_losses`: each tile titled
    /// with the predicted and actual class, the loss and the predicted class's
    /// probability; wrong predictions in red. Returns what it drew.
    pub fn plot_top_losses(&self, learn: &Learner, k: usize, path: &Path) -> Result<Vec<Outcome>> {
        let top: Vec<Outcome> = self.top_losses(k).into_iter().cloned().collect();
        if top.is_empty() {
            bail!("plot_top_losses: the validation set is empty");
        }
        let indices: Vec<usize> = top.iter().map(|o| o.index).collect();
        let images = learn.data.valid_images(&indices)?;
        let width = tile_width(images[0][0].width, images[0].len(), TILE_SIDE);
        let tiles: Vec<Tile> = top
            .iter()
            .zip(images)
            .map(|(o, images)| {
                let mut title = wrap(&format!("predicted: {}", o.predicted.text(&self.vocab)), width);
                title.extend(wrap(&format!("actual: {}", o.actual.text(&self.vocab)), width));
                title.push(if o.prob.is_nan() { format!("loss {:.2}", o.loss) } else { format!("loss {:.2}, p {:.2}", o.loss, o.prob) });
                // Regression values are never exactly right, so they are not marked wrong.
                let wrong = !matches!(o.actual, Decision::Values(_)) && o.actual != o.predicted;
                let tone = if wrong { Tone::Wrong } else { Tone::Plain };
                Tile { images, title, tone }
            })
            .collect();
        save_grid(path, &tiles, TILE_SIDE)?;
        Ok(top)
    }

    /// The confusion matrix as a picture (counts in the cells).
    pub fn plot_confusion_matrix(&self, path: &Path, normalize: bool) -> Result<()> {
        super::confusion_plot::draw(path, &self.vocab, &self.confusion_matrix()?, normalize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interp() -> Interpretation {
        let o = |index, actual, predicted, loss| Outcome {
            index,
            actual: Decision::Class(actual),
            predicted: Decision::Class(predicted),
            loss,
            prob: 0.5,
            prob_actual: 0.5,
        };
        Interpretation {
            vocab: vec!["a".into(), "b".into(), "c".into()],
            targets: TargetKind::Classes,
            items: vec![o(0, 0, 0, 0.1), o(1, 0, 1, 2.0), o(2, 0, 1, 1.5), o(3, 2, 1, 3.0), o(4, 1, 1, 0.2), o(5, 2, 0, 2.0)],
        }
    }

    #[test]
    fn matrix_most_confused_and_top_losses() {
        let i = interp();
        assert_eq!(i.confusion_matrix().unwrap(), vec![vec![1, 2, 0], vec![0, 1, 0], vec![1, 1, 0]]);
        let mc = i.most_confused(1).unwrap();
        assert_eq!(mc[0], ("a".into(), "b".into(), 2));
        assert_eq!(mc.len(), 3);
        assert_eq!(i.most_confused(2).unwrap().len(), 1);
        let top: Vec<usize> = i.top_losses(3).iter().map(|o| o.index).collect();
        assert_eq!(top, vec![3, 1, 5]);
    }

    #[test]
    fn label_sets_have_top_losses_but_no_confusion_matrix() {
        let o =
            Outcome { index: 0, actual: Decision::Labels(vec![0, 2]), predicted: Decision::Labels(vec![2]), loss: 1.0, prob: 0.9, prob_actual: 0.2 };
        let i = Interpretation { vocab: vec!["cat".into(), "dog".into(), "persian".into()], targets: TargetKind::MultiHot, items: vec![o] };
        assert_eq!(i.items[0].actual.text(&i.vocab), "cat persian");
        assert_eq!(i.top_losses(5).len(), 1);
        let e = i.confusion_matrix().unwrap_err().to_string();
        assert!(e.contains("one class per item") && e.contains("multi-hot") && e.contains("top_losses"), "{e}");
        assert!(i.most_confused(1).is_err());
        assert_eq!(Decision::Values(vec![1.5, 2.0]).text(&[]), "1.500, 2.000");
    }
}
