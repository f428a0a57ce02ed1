//! `show_batch`: a PNG grid of the first training items as the model will see them
//! (crop and augmentation included, before normalisation), each titled with its label;
//! the two images of a pair sit side by side with a gap between them.
use super::image::Pixels;
use super::loader::DataLoaders;
use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::Once;

const GAP: u32 = 6;
const MARGIN: u32 = 10;
const TITLE: u32 = 22;

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // The bundled font: plotters' ab_glyph backend has no system fonts.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, include_bytes!("../../assets/DejaVuSans.ttf"));
    });
}

impl DataLoaders {
    /// Writes the grid of the first `max_items` training items (validation when there are none) to `path`.
    pub fn show_batch(&self, path: &Path, max_items: usize) -> Result<()> {
        let loader = if self.train.n_items() > 0 { &self.train } else { &self.valid };
        let items = loader.preview(0, max_items.max(1))?;
        if items.is_empty() {
            bail!("show_batch: the loaders have no items");
        }
        // Small images (Omniglot, faces) are magnified so that titles fit above them.
        let zoom = (96 / self.size).max(1);
        let side = self.size * zoom;
        let cell_w = self.n_inputs as u32 * side + (self.n_inputs as u32 - 1) * GAP;
        let cols = (items.len() as f64).sqrt().ceil() as u32;
        let rows = (items.len() as u32).div_ceil(cols);
        let (w, h) = (cols * (cell_w + MARGIN) + MARGIN, rows * (side + TITLE + MARGIN) + MARGIN);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        for (k, (pixels, _)) in items.iter().enumerate() {
            let (cx, cy) = (MARGIN + (k as u32 % cols) * (cell_w + MARGIN), MARGIN + (k as u32 / cols) * (side + TITLE + MARGIN) + TITLE);
            for (slot, px) in pixels.iter().enumerate() {
                blit(&mut buf, w, px, cx + slot as u32 * (side + GAP), cy, zoom);
            }
        }
        register_font();
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            for (k, (_, y)) in items.iter().enumerate() {
                let label = self.vocab.get(*y as usize).cloned().unwrap_or_else(|| y.to_string());
                let (cx, cy) = (MARGIN + (k as u32 % cols) * (cell_w + MARGIN), MARGIN + (k as u32 / cols) * (side + TITLE + MARGIN));
                let style = TextStyle::from(("sans-serif", 15).into_font()).color(&BLACK);
                root.draw(&Text::new(label, (cx as i32, cy as i32 + 2), style)).map_err(|e| anyhow::anyhow!("show_batch: {e}"))?;
            }
            root.present().map_err(|e| anyhow::anyhow!("show_batch: {e}"))?;
        }
        image::save_buffer(path, &buf, w, h, image::ColorType::Rgb8).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Copies `px` (grey or RGB) into the RGB canvas at (x0, y0), magnified `zoom` times.
fn blit(buf: &mut [u8], canvas_w: u32, px: &Pixels, x0: u32, y0: u32, zoom: u32) {
    let c = px.channels;
    for y in 0..px.height * zoom {
        for x in 0..px.width * zoom {
            let s = (((y / zoom) * px.width + x / zoom) as usize) * c;
            let d = (((y0 + y) * canvas_w + x0 + x) as usize) * 3;
            for k in 0..3 {
                buf[d + k] = px.data[s + if c == 1 { 0 } else { k }];
            }
        }
    }
}
