//! Metrics over a whole validation set (class probabilities `[N, C]` and int64 targets
//! `[N]`; label probabilities and multi-hot targets; numbers and float targets):
//! computing them on the concatenated set equals fastai's batch-size-weighted means for
//! accuracy-like metrics and is the only correct way for ROC AUC. One file per family.
mod accuracy;
mod f1;
mod multi_label;
mod regression;
mod roc_auc;

use crate::data::targets::TargetKind;
use crate::track::Goal;
use anyhow::{bail, Result};
use tch::Tensor;

pub trait Metric {
    fn name(&self) -> String;
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> f64;
    /// Which way it is better (higher unless it says: error rates are lower), for
    /// `save_best`, early stopping and every comparison of runs.
    fn goal(&self) -> Goal {
        Goal::Max
    }
    /// The targets it measures against (the learner refuses it on others).
    fn targets(&self) -> TargetKind {
        TargetKind::Classes
    }
}

/// Metrics computed outside Rust (script closures), given the validation probabilities
/// and targets; a fit adds them with `callbacks::ExtraMetricsCb`.
pub trait ExtraMetrics {
    fn names(&self) -> Vec<String>;
    /// Which way each is better, where its definition says; None: not ranked.
    fn goals(&self) -> Vec<Option<Goal>>;
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> Result<Vec<f64>>;
}

pub use accuracy::{Accuracy, ErrorRate};
pub use f1::{BinaryScore, Score};
pub use multi_label::{AccuracyMulti, F1Multi};
pub use regression::{Regression, RegressionMetric};
pub use roc_auc::RocAuc;

/// The built-in metrics, by their fastai names (the multi-label ones with their threshold).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricName {
    Accuracy,
    ErrorRate,
    RocAuc,
    Precision,
    Recall,
    F1,
    Rmse,
    Mae,
    R2,
    AccuracyMulti { thresh: f64 },
    F1Multi { thresh: f64 },
}

/// fastai's threshold for multi-label metrics.
pub const MULTI_THRESH: f64 = 0.5;

impl MetricName {
    /// Name, metric, and what it measures (for the reference).
    pub const ALL: [(&'static str, MetricName, &'static str); 11] = [
        (
            "accuracy",
            MetricName::Accuracy,
            "share of items whose most probable class is the target; a pair counts as same when p(same) > learn.threshold",
        ),
        ("error_rate", MetricName::ErrorRate, "1 - accuracy"),
        (
            "roc_auc",
            MetricName::RocAuc,
            "two classes: the chance that a random positive (same) pair scores above a random negative one; needs no threshold",
        ),
        ("precision", MetricName::Precision, "two classes: of the items called positive (same), the share that are"),
        ("recall", MetricName::Recall, "two classes: of the positive (same) items, the share called positive"),
        ("f1", MetricName::F1, "two classes: the harmonic mean of precision and recall"),
        ("rmse", MetricName::Rmse, "numbers: the root of the mean squared error over every output (lower is better)"),
        ("mae", MetricName::Mae, "numbers: the mean absolute error over every output (lower is better)"),
        ("r2", MetricName::R2, "numbers: 1 - SS_res / SS_tot over every output (sklearn's r2_score)"),
        (
            "accuracy_multi",
            MetricName::AccuracyMulti { thresh: MULTI_THRESH },
            "label sets: the share of (item, label) decisions that are right, a label predicted when its sigmoid > thresh (0.5; `accuracy_multi(#{ thresh: t })` for another)",
        ),
        (
            "f1_multi",
            MetricName::F1Multi { thresh: MULTI_THRESH },
            "label sets: each label's F1 at thresh (0.5; `f1_multi(#{ thresh: t })`), averaged over the labels (fastai's F1ScoreMulti, macro)",
        ),
    ];

    /// The metrics reference as Markdown, with how pair models decide same/different.
    pub fn markdown() -> String {
        let mut s = String::from(concat!(
            "## Metrics\n\n",
            "`learner(dls, model, #{ metrics: [...] })` accepts these names (and closures `|probs, targets| ...` ",
            "returning a number). Every class model's output becomes class probabilities `[N, C]` first (label sets: ",
            "each label's sigmoid `[N, C]` against multi-hot targets; numbers: the outputs `[N, k]` themselves against ",
            "float targets); for pair models ",
            "C = 2 (0 = different, 1 = same) and p(same) is the sigmoid of the head's logit (`l1`; `cosine`, whose ",
            "logit is `scale * cos + shift`, both learned), the softmax of a concat head's two logits, or ",
            "`sigmoid((margin/2 - d) * 10/margin)` of a `distance` head's distance d. A pair is called same when ",
            "p(same) > `learn.threshold`: 0.5 unless set (`learner` option `threshold`, `learn.threshold = t`) ",
            "or fitted on the training pairs with `learn.calibrate()`; at 0.5 a distance head calls a pair same ",
            "when d < margin/2.\n\n| metric | meaning |\n|---|---|\n",
        ));
        for (name, _, doc) in MetricName::ALL {
            s.push_str(&format!("| `{name}` | {doc} |\n"));
        }
        s
    }

    /// The built-in metrics for targets of `kind`, as a list for messages.
    pub fn names_for(kind: TargetKind) -> String {
        let names: Vec<&str> = MetricName::ALL.iter().filter(|m| m.1.build().targets() == kind).map(|m| m.0).collect();
        names.join(", ")
    }

    pub fn build(self) -> Box<dyn Metric> {
        match self {
            MetricName::Accuracy => Box::new(Accuracy),
            MetricName::ErrorRate => Box::new(ErrorRate),
            MetricName::RocAuc => Box::new(RocAuc),
            MetricName::Precision => Box::new(BinaryScore(Score::Precision)),
            MetricName::Recall => Box::new(BinaryScore(Score::Recall)),
            MetricName::F1 => Box::new(BinaryScore(Score::F1)),
            MetricName::Rmse => Box::new(RegressionMetric(Regression::Rmse)),
            MetricName::Mae => Box::new(RegressionMetric(Regression::Mae)),
            MetricName::R2 => Box::new(RegressionMetric(Regression::R2)),
            MetricName::AccuracyMulti { thresh } => Box::new(AccuracyMulti { thresh }),
            MetricName::F1Multi { thresh } => Box::new(F1Multi { thresh }),
        }
    }
}

/// Which way a metric of this name is better by its definition: the built-in metrics and
/// the epoch table's losses; None for names nothing defines.
pub fn defined_goal(name: &str) -> Option<Goal> {
    match name {
        "train_loss" | "valid_loss" => Some(Goal::Min),
        _ => name.parse::<MetricName>().ok().map(|m| m.build().goal()),
    }
}

impl std::str::FromStr for MetricName {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<MetricName> {
        match MetricName::ALL.iter().find(|(n, _, _)| *n == s) {
            Some((_, m, _)) => Ok(*m),
            None => {
                let names: Vec<&str> = MetricName::ALL.iter().map(|m| m.0).collect();
                bail!("unknown metric `{s}`: use {}, or a closure |preds, targets|", names.join(", "))
            }
        }
    }
}
