//! The loader half of `scripts/bench pipeline`: images/s of decode + centre crop-resize to
//! 224 + u8->float + ImageNet normalisation, through the real DataLoader, per thread count;
//! then the same epochs served from the pixel cache on disk (`cached threads=N` lines).
//!   cargo run --release --example bench_pipeline -- <image folder> 1 2
use anyhow::{Context, Result};
use runner::data::dataloaders::{DataLoaders, ItemSet, LoaderConfig, Samplers};
use runner::data::item::Item;
use std::time::Instant;

fn main() -> Result<()> {
    runner::device::keep_freed_memory(); // as the runner binary does at start
    let mut args = std::env::args().skip(1);
    let dir = args.next().context("usage: bench_pipeline <image folder> <threads>...")?;
    let threads: Vec<usize> = args.map(|a| a.parse()).collect::<Result<_, _>>().context("thread counts are integers")?;
    let files = runner::data::files::get_image_files(&[dir.into()])?.files;
    let items: Vec<Item> = (0..files.len()).map(|i| Item { ids: [i, i], y: 0, turns: 0 }).collect();
    let cache_dir = tempfile::tempdir()?;
    for n in threads {
        tch::set_num_threads(n as i32);
        let cfg = LoaderConfig { size: 224, bs: 64, num_workers: n, ..LoaderConfig::default() };
        println!("threads={n} images_per_s={:.1}", images_per_s(&files, &items, &cfg)?);
        let cached = LoaderConfig { cache: true, cache_dir: cache_dir.path().to_path_buf(), ..cfg };
        println!("cached threads={n} images_per_s={:.1}", images_per_s(&files, &items, &cached)?);
    }
    Ok(())
}

/// The best of 5 validation passes (after one that warms the page cache) in images/s.
fn images_per_s(files: &[std::path::PathBuf], items: &[Item], cfg: &LoaderConfig) -> Result<f64> {
    // Validation mode (centre crop, in order): the same work as the Pillow reference.
    let set = ItemSet {
        paths: files.to_vec(),
        train: items.to_vec(),
        valid: items.to_vec(),
        vocab: vec!["x".into()],
        targets: runner::data::targets::Targets::classes(1),
        n_inputs: 1,
    };
    let dls = DataLoaders::build(set, cfg, |kept| Ok(Samplers::shuffled(kept, cfg)))?;
    let mut best = f64::INFINITY;
    for pass in 0..6 {
        let t = Instant::now();
        let mut count = 0;
        for b in dls.valid.iter(0)? {
            count += b?.xs[0].size()[0] as usize;
        }
        assert_eq!(count, files.len());
        if pass > 0 {
            best = best.min(t.elapsed().as_secs_f64()); // pass 0 warms the page cache
        }
    }
    Ok(files.len() as f64 / best)
}
