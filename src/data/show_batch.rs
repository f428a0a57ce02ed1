//! `show_batch`: a PNG grid of the first training items as the model will see them
//! (crop and augmentation included, before normalisation), each titled with its label;
//! the two images of a pair sit side by side (see `grid`).
use super::dataloaders::DataLoaders;
use super::grid::{save_grid, tile_width, wrap, Tile, Tone, MIN_SIDE};
use anyhow::{bail, Result};
use std::path::Path;

impl DataLoaders {
    /// Writes the grid of the first `max_items` training items (validation when there are none) to `path`.
    pub fn show_batch(&self, path: &Path, max_items: usize) -> Result<()> {
        let loader = if self.train.n_items() > 0 { &self.train } else { &self.valid };
        let items = loader.preview(0, max_items.max(1))?;
        if items.is_empty() {
            bail!("show_batch: the loaders have no items");
        }
        let width = tile_width(self.size, self.n_inputs, MIN_SIDE);
        let tiles: Vec<Tile> = items
            .into_iter()
            .map(|(images, y)| {
                let label = self.targets.describe(y, &self.vocab);
                Tile { images, title: wrap(&label, width), tone: Tone::Plain }
            })
            .collect();
        save_grid(path, &tiles, MIN_SIDE)
    }
}
