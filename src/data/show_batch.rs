//! `show_batch`: a PNG grid of the first training items as the model will see them
//! (crop and augmentation included, before normalisation), each titled with its label;
//! the two images of a pair sit side by side with a gap between them. Small images are
//! magnified and long labels wrapped, so that every title is readable.
use super::image::Pixels;
use super::loader::DataLoaders;
use crate::plot::{init_font, FONT};
use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use std::path::Path;

const GAP: u32 = 6;
const MARGIN: u32 = 12;
/// Images are magnified (whole factors) to at least this many pixels a side.
const MIN_SIDE: u32 = 160;
const FONT_PX: u32 = 16;
const LINE: u32 = 20;
/// Room for two lines of title above each cell.
const TITLE: u32 = 2 * LINE + 4;

/// Splits `label` into at most two lines that fit `width` pixels (at roughly 0.6 em a
/// character), cutting at `_`, `-` or spaces where it can; the rest is elided.
fn wrap(label: &str, width: u32) -> Vec<String> {
    let per_line = ((width as f64) / (FONT_PX as f64 * 0.6)).floor().max(4.0) as usize;
    let chars: Vec<char> = label.chars().collect();
    if chars.len() <= per_line {
        return vec![label.to_string()];
    }
    let cut = (1..=per_line).rev().find(|&i| matches!(chars[i - 1], '_' | '-' | ' ')).unwrap_or(per_line);
    let first: String = chars[..cut].iter().collect();
    let rest: Vec<char> = chars[cut..].to_vec();
    let second: String = if rest.len() <= per_line { rest.iter().collect() } else { rest[..per_line - 1].iter().chain(['…'].iter()).collect() };
    vec![first, second]
}

impl DataLoaders {
    /// Writes the grid of the first `max_items` training items (validation when there are none) to `path`.
    pub fn show_batch(&self, path: &Path, max_items: usize) -> Result<()> {
        let loader = if self.train.n_items() > 0 { &self.train } else { &self.valid };
        let items = loader.preview(0, max_items.max(1))?;
        if items.is_empty() {
            bail!("show_batch: the loaders have no items");
        }
        // Small images (64 px loaders, Omniglot, faces) are magnified so that they and their titles are readable.
        let zoom = MIN_SIDE.div_ceil(self.size.max(1)).max(1);
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
        init_font();
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            for (k, (_, y)) in items.iter().enumerate() {
                let label = self.vocab.get(*y as usize).cloned().unwrap_or_else(|| y.to_string());
                let (cx, cy) = (MARGIN + (k as u32 % cols) * (cell_w + MARGIN), MARGIN + (k as u32 / cols) * (side + TITLE + MARGIN));
                let style = TextStyle::from((FONT, FONT_PX).into_font()).color(&BLACK);
                let lines = wrap(&label, cell_w);
                // Bottom-aligned: a one-line title sits right above its image.
                let first = cy + 2 + (2 - lines.len() as u32) * LINE;
                for (i, line) in lines.into_iter().enumerate() {
                    let at = (cx as i32, (first + i as u32 * LINE) as i32);
                    root.draw(&Text::new(line, at, style.clone())).map_err(|e| anyhow::anyhow!("show_batch: {e}"))?;
                }
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

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn long_labels_wrap_at_underscores() {
        assert_eq!(wrap("pug", 160), vec!["pug"]);
        // 160 px at 16 px: 16 characters a line
        assert_eq!(wrap("american_pit_bull_terrier", 160), vec!["american_pit_", "bull_terrier"]);
        let w = wrap("a_very_long_label_that_will_never_fit_in_two_lines", 160);
        assert_eq!(w.len(), 2);
        assert!(w[1].ends_with('…') && w[1].chars().count() == 16, "{w:?}");
    }
}
