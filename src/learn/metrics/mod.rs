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
    /// Whether smaller is better (error rates), for `save_best` and early stopping.
    fn lower_is_better(&self) -> bool {
        false
    }
}

/// Metrics computed outside Rust (script closures), given the validation probabilities
/// and targets; a fit adds them with `callbacks::ExtraMetricsCb`.
pub trait ExtraMetrics {
    fn names(&self) -> Vec<String>;
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> Result<Vec<f64>>;
}

pub use accuracy::{Accuracy, ErrorRate};
pub use f1::{BinaryScore, Score};
pub use roc_auc::RocAuc;

/// The built-in metrics, by their fastai names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricName {
    Accuracy,
    ErrorRate,
    RocAuc,
    Precision,
    Recall,
    F1,
}

impl MetricName {
    pub const ALL: [(&'static str, MetricName); 6] = [
        ("accuracy", MetricName::Accuracy),
        ("error_rate", MetricName::ErrorRate),
        ("roc_auc", MetricName::RocAuc),
        ("precision", MetricName::Precision),
        ("recall", MetricName::Recall),
        ("f1", MetricName::F1),
    ];

    pub fn build(self) -> Box<dyn Metric> {
        match self {
            MetricName::Accuracy => Box::new(Accuracy),
            MetricName::ErrorRate => Box::new(ErrorRate),
            MetricName::RocAuc => Box::new(RocAuc),
            MetricName::Precision => Box::new(BinaryScore(Score::Precision)),
            MetricName::Recall => Box::new(BinaryScore(Score::Recall)),
            MetricName::F1 => Box::new(BinaryScore(Score::F1)),
        }
    }
}

impl std::str::FromStr for MetricName {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<MetricName> {
        match MetricName::ALL.iter().find(|(n, _)| *n == s) {
            Some((_, m)) => Ok(*m),
            None => bail!("unknown metric `{s}`: use accuracy, error_rate, roc_auc, precision, recall, f1, or a closure |preds, targets|"),
        }
    }
}
