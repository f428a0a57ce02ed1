//! The data-block layer: files, labels, splits, pairs and tables describe *what* the
//! items are; image, augment and loader turn them into normalised NCHW batches fast;
//! datasets and oneshot fetch and read the data sets the experiments use.
pub mod archive;
pub mod augment;
pub mod blocks;
pub mod dataloaders;
pub mod datasets;
pub mod download;
pub mod episodes;
pub mod files;
pub mod grid;
pub mod image;
pub mod item;
pub mod jpeg;
pub mod labels;
pub mod loader;
pub mod oneshot;
pub mod pairs;
pub mod pipeline;
pub mod pixel_cache;
pub mod pixels;
pub mod render;
pub mod sampler;
pub mod show_batch;
pub mod splitters;
pub mod table;
pub mod targets;

pub use dataloaders::{DataLoaders, LoaderConfig};
pub use loader::{Batch, DataLoader};
pub use oneshot::{read_oneshot_runs, OneShotRun};
pub use table::Table;
