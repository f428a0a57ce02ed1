//! runner: fastai-style deep-learning experiments as Rhai scripts, on libtorch, with
//! every run logged so that it can be compared and reproduced.
//!
//! Layers: `data` (files, labels, splits, pairs, tables, loaders), `model` (bodies,
//! heads, Siamese models), `learn` (optimizer, schedules, fit loop, callbacks) and `track`
//! (run records) and `report` (one HTML page over runs) are plain Rust APIs; `script`
//! binds them into Rhai; `run` is a run's lifecycle from a `RunConfig` (and `sweep` runs
//! many); `cli` is a thin shell that parses, dispatches and maps exit codes. `opts`, below
//! them all, is how a plain-API struct declares the options scripts may set.
pub mod cli;
pub mod data;
pub mod device;
pub mod dist;
pub mod fs_walk;
pub mod learn;
pub mod logging;
pub mod model;
pub mod opts;
pub mod plot;
pub mod precision;
pub mod report;
pub mod run;
pub mod script;
pub mod seed;
pub mod session;
pub mod sweep;
pub mod text_table;
pub mod threads;
pub mod torch_errors;
pub mod torch_ext;
pub mod track;
