//! fastai's `learn.show_results()`: the first validation items as the model sees them, each
//! titled with its target and the model's prediction (a class with its probability, the
//! labels over the threshold, or the numbers), green when the prediction is right and red
//! when it is wrong (numbers, never exactly right, stay plain); the two images of a pair
//! side by side.
use super::interpret::{Decision, Interpretation, Outcome};
use super::learner::Learner;
use crate::data::grid::{save_grid, tile_width, wrap, Tile, Tone};
use anyhow::{bail, Result};
use std::path::Path;

/// Tiles are magnified to at least this side, so that a title line holds a long class name.
const TILE_SIDE: u32 = 224;

impl Learner {
    /// Writes the first `max_n` validation items with target and prediction to `path` (a
    /// PNG); returns what it drew.
    pub fn show_results(&self, path: &Path, max_n: usize) -> Result<Vec<Outcome>> {
        let interp = Interpretation::from_learner(self)?;
        let shown: Vec<Outcome> = interp.items.into_iter().take(max_n).collect();
        if shown.is_empty() {
            bail!("show_results: the validation set is empty");
        }
        let images = self.data.valid_images(&shown.iter().map(|s| s.index).collect::<Vec<_>>())?;
        let width = tile_width(images[0][0].width, images[0].len(), TILE_SIDE);
        let tiles: Vec<Tile> = shown
            .iter()
            .zip(images)
            .map(|(s, images)| {
                let predicted = s.predicted.text(&interp.vocab);
                let predicted = if s.prob.is_nan() { predicted } else { format!("{predicted} ({:.2})", s.prob) };
                let mut title = wrap(&format!("actual: {}", s.actual.text(&interp.vocab)), width);
                title.extend(wrap(&format!("predicted: {predicted}"), width));
                let tone = match s.actual {
                    Decision::Values(_) => Tone::Plain,
                    _ => Tone::of(s.actual == s.predicted),
                };
                Tile { images, title, tone }
            })
            .collect();
        save_grid(path, &tiles, TILE_SIDE)?;
        Ok(shown)
    }
}
