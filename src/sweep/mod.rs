//! Sweeps: one run per point of a grid of params, grouped under a sweep id, with a
//! manifest in `<runs>/sweeps/<id>/`. Points run on this machine (`local`, N at a time) or
//! as one Slurm job array (`slurm`); `status` reconciles the runner's records with the
//! queue, and `resubmit` runs failed or missing points again with the same params and seed.
//! Each point is a `task` that runs the manifest's `RunConfig` through `crate::run`.
pub mod grid;
pub mod local;
pub mod manifest;
pub mod slurm;
pub mod status;
pub mod submit;
pub mod task;

pub use grid::{parse_grid, Axis};
pub use manifest::{find_sweep, Backend, Manifest, Ranks};
pub use status::{status, PointState, PointStatus};
