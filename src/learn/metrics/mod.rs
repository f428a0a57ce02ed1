//! Metrics over a whole validation set (probabilities `[N, C]`, int64 targets `[N]`):
//! computing them on the concatenated set equals fastai's batch-size-weighted means for
//! accuracy-like metrics and is the only correct way for ROC AUC. One file per metric.
mod accuracy;
mod f1;
mod roc_auc;

use anyhow::{bail, Result};
use tch::Tensor;

pub trait Metric {
    fn name(&self) -> String;
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> f64;
}

pub use accuracy::{Accuracy, ErrorRate};
pub use f1::{BinaryScore, Score};
pub use roc_auc::RocAuc;

/// A metric by its fastai name.
pub fn by_name(name: &str) -> Result<Box<dyn Metric>> {
    Ok(match name {
        "accuracy" => Box::new(Accuracy),
        "error_rate" => Box::new(ErrorRate),
        "roc_auc" => Box::new(RocAuc),
        "precision" => Box::new(BinaryScore(Score::Precision)),
        "recall" => Box::new(BinaryScore(Score::Recall)),
        "f1" => Box::new(BinaryScore(Score::F1)),
        other => bail!("unknown metric `{other}`: use accuracy, error_rate, roc_auc, precision, recall, f1, or a closure |preds, targets|"),
    })
}
