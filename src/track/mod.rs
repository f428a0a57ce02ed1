//! Run records: one folder per run with `run.toml`, `log.jsonl`, `metrics.jsonl` and
//! artifacts; listing, naming and comparing them. Knows nothing of tch or Rhai, so a
//! record can be read by any tool and by any later runner version.
pub mod compare;
pub mod data_use;
pub mod lock;
pub mod metrics;
pub mod mlflow;
pub mod paths;
pub mod record;
pub mod runs;

pub use data_use::DataUse;
pub use metrics::{read_metrics, MetricsFile, MetricsLog, Series};
pub use record::{Param, ParamSource, RunRecord, Status};
pub use runs::{find_run, find_runs, list_runs, RunEntry};
