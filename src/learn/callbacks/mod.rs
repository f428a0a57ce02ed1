//! The callbacks every fit is made of, one per file, in the order they run at each event
//! (fastai's `order`, lowest first):
//!
//! | order | callback | job |
//! |---|---|---|
//! | -30 | `DataParallel` | data-parallel runs: rank 0's weights to all, gradients and loss averaged, agreed stops |
//! | -20 | `Interrupt` | stop at a batch boundary on Ctrl-C/SIGTERM, keeping a checkpoint |
//! | -10 | `ParamScheduler` | per-batch learning rates and momentum |
//! | -9 | `TerminateOnNan` | stop when the loss is NaN or infinite |
//! | 50 | `Recorder` | smoothed loss, metrics, metrics.jsonl rows |
//! | 51 | `ExtraMetricsCb` | metrics computed outside Rust (script closures) |
//! | 55 | `LrFinder` | the LR finder's exponential schedule and stop rule |
//! | 60 | `ProgressCb` | bars or plain progress lines, fastai's epoch table |
//! | 71 | `SaveBest` | `models/best` when a column improves, reloaded at the end |
//! | 72 | `EarlyStopping` | stop when a column stops improving |
//! | 80 | script callbacks | Rhai closures (`after_epoch(|e| ...)`) |
//! | 90 | `LossPlot` | the loss curves PNG of the fit |
//!
//! After every epoch (once all its callbacks ran) the loop itself writes the fit's resume
//! checkpoint and `models/last` (see `learn::resume`); callbacks with state to keep across
//! an interruption (the smoothed loss, the best value so far) give it through
//! `Callback::state` and take it back through `Callback::restore`.
pub mod data_parallel;
pub mod early_stopping;
pub mod interrupt;
pub mod loss_plot;
pub mod lr_finder;
pub mod metrics;
pub mod nan_guard;
pub mod progress;
pub mod recorder;
pub mod save;
pub mod scheduler;
pub mod tracker;

pub use data_parallel::DataParallel;
pub use early_stopping::EarlyStopping;
pub use interrupt::Interrupt;
pub use loss_plot::LossPlot;
pub use lr_finder::LrFinder;
pub use metrics::ExtraMetricsCb;
pub use nan_guard::TerminateOnNan;
pub use progress::ProgressCb;
pub use recorder::Recorder;
pub use save::SaveBest;
pub use scheduler::ParamScheduler;
