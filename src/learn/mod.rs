//! The learner: fastai's training loop driven by callbacks, and its pieces, each usable
//! alone: optimizer, schedules, losses, metrics, lr_find suggestions, progress, checkpoints,
//! interpretation (confusion matrix, top losses) and threshold calibration.
pub mod calibrate;
pub mod callback;
pub mod callbacks;
pub mod confusion_plot;
pub mod data;
pub mod export;
pub mod fit;
pub mod interpret;
pub mod learner;
pub mod loss;
pub mod lr_find;
pub mod metrics;
pub mod oneshot;
pub mod optimizer;
pub mod progress;
pub mod resume;
pub mod schedule;
pub mod show_results;
pub mod state;
pub mod suggest;
pub mod tta;
pub mod vision;

pub use data::{LearnData, TargetKind, TensorData, XY};
pub use learner::{Learner, LearnerOptions, Lrs};
pub use loss::Loss;
