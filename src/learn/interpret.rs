//! fastai's `ClassificationInterpretation`: what the model gets wrong on the validation
//! set. The confusion matrix (rows: actual class, columns: predicted), the most confused
//! pairs of classes, and the items with the highest loss, as data and as pictures. Pair
//! models are two-class models (`different`, `same`), so they are interpreted alike and
//! their top-loss tiles show both images of the pair.
use super::learner::Learner;
use crate::data::grid::{save_grid, tile_width, wrap, Tile};
use anyhow::{bail, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Top-loss images are magnified to at least this side, so that a title line holds
/// `predicted: american_pit_bull_terrier`'s class name whole.
const TILE_SIDE: u32 = 224;

/// One validation item's outcome (its index is its place in the validation set).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub index: usize,
    pub actual: usize,
    pub predicted: usize,
    pub loss: f64,
    /// Probability of the predicted class.
    pub prob: f64,
    /// Probability of the actual class.
    pub prob_actual: f64,
}

pub struct Interpretation {
    pub vocab: Vec<String>,
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
        let n_classes = v.probs.size()[1] as usize;
        let probs = to_f64s(&v.probs)?;
        let losses = to_f64s(&v.losses)?;
        let targets = Vec::<i64>::try_from(v.targets.to_kind(Kind::Int64).to_device(Device::Cpu))?;
        let mut vocab = learn.data.vocab();
        if vocab.len() != n_classes {
            vocab = (0..n_classes).map(|i| i.to_string()).collect();
        }
        let items = targets
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let row = &probs[i * n_classes..(i + 1) * n_classes];
                // argmax, first of equals (as torch's)
                let predicted = (0..n_classes).fold(0, |best, c| if row[c] > row[best] { c } else { best });
                let actual = t as usize;
                Outcome {
                    index: i,
                    actual,
                    predicted,
                    loss: losses[i],
                    prob: row[predicted],
                    prob_actual: row.get(actual).copied().unwrap_or(f64::NAN),
                }
            })
            .collect();
        Ok(Interpretation { vocab, items })
    }

    /// Counts by actual class (rows) and predicted class (columns), fastai's layout.
    pub fn confusion_matrix(&self) -> Vec<Vec<usize>> {
        let c = self.vocab.len();
        let mut m = vec![vec![0; c]; c];
        for o in &self.items {
            if o.actual < c {
                m[o.actual][o.predicted] += 1;
            }
        }
        m
    }

    /// Off-diagonal cells with at least `min_val` items as (actual, predicted, count),
    /// most frequent first (ties in class order), as fastai's `most_confused`.
    pub fn most_confused(&self, min_val: usize) -> Vec<(String, String, usize)> {
        let m = self.confusion_matrix();
        let mut out: Vec<(String, String, usize)> = Vec::new();
        for (a, row) in m.iter().enumerate() {
            for (p, &n) in row.iter().enumerate() {
                if a != p && n >= min_val.max(1) {
                    out.push((self.vocab[a].clone(), self.vocab[p].clone(), n));
                }
            }
        }
        out.sort_by_key(|y| std::cmp::Reverse(y.2));
        out
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
                let mut title = wrap(&format!("predicted: {}", self.vocab[o.predicted]), width);
                title.extend(wrap(&format!("actual: {}", self.vocab[o.actual]), width));
                title.push(format!("loss {:.2}, p {:.2}", o.loss, o.prob));
                Tile { images, title, alert: o.predicted != o.actual }
            })
            .collect();
        save_grid(path, &tiles, TILE_SIDE)?;
        Ok(top)
    }

    /// The confusion matrix as a picture (counts in the cells).
    pub fn plot_confusion_matrix(&self, path: &Path, normalize: bool) -> Result<()> {
        super::confusion_plot::draw(path, &self.vocab, &self.confusion_matrix(), normalize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interp() -> Interpretation {
        let o = |index, actual, predicted, loss| Outcome { index, actual, predicted, loss, prob: 0.5, prob_actual: 0.5 };
        Interpretation {
            vocab: vec!["a".into(), "b".into(), "c".into()],
            items: vec![o(0, 0, 0, 0.1), o(1, 0, 1, 2.0), o(2, 0, 1, 1.5), o(3, 2, 1, 3.0), o(4, 1, 1, 0.2), o(5, 2, 0, 2.0)],
        }
    }

    #[test]
    fn matrix_most_confused_and_top_losses() {
        let i = interp();
        assert_eq!(i.confusion_matrix(), vec![vec![1, 2, 0], vec![0, 1, 0], vec![1, 1, 0]]);
        let mc = i.most_confused(1);
        assert_eq!(mc[0], ("a".into(), "b".into(), 2));
        assert_eq!(mc.len(), 3);
        assert_eq!(i.most_confused(2).len(), 1);
        let top: Vec<usize> = i.top_losses(3).iter().map(|o| o.index).collect();
        assert_eq!(top, vec![3, 1, 5]);
    }
}
