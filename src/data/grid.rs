//! Image grids with titles, the picture behind `show_batch` and `plot_top_losses`: tiles
//! of one image (or the two of a pair, side by side with a gap), each titled by a few
//! lines. Small images are magnified and long titles wrapped, so that every title is readable.
use super::pixels::Pixels;
use crate::plot::{init_font, FONT};
use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use std::path::Path;

const GAP: u32 = 6;
const MARGIN: u32 = 12;
/// Images are magnified (whole factors) to at least this many pixels a side, unless a
/// caller asks for more room (longer titles).
pub const MIN_SIDE: u32 = 160;
const FONT_PX: u32 = 16;
const LINE: u32 = 20;

/// The colour of a tile's title: black, or as fastai marks predictions, green when right
/// and red when wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Right,
    Wrong,
}

impl Tone {
    pub fn of(right: bool) -> Tone {
        if right {
            Tone::Right
        } else {
            Tone::Wrong
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Tone::Plain => BLACK,
            // A dark green, readable on white.
            Tone::Right => RGBColor(0, 128, 0),
            Tone::Wrong => RED,
        }
    }
}

/// One tile: its images (all of one size) and its title lines, top to bottom.
pub struct Tile {
    pub images: Vec<Pixels>,
    pub title: Vec<String>,
    pub tone: Tone,
}

/// Splits `label` into at most two lines that fit `width` pixels (at roughly 0.6 em a
/// character): at a space when the rest then fits (`actual:` / `saint_bernard`), else at
/// the last `_`, `-` or space that fits; the rest is elided.
pub fn wrap(label: &str, width: u32) -> Vec<String> {
    let per_line = ((width as f64) / (FONT_PX as f64 * 0.6)).floor().max(4.0) as usize;
    let chars: Vec<char> = label.chars().collect();
    if chars.len() <= per_line {
        return vec![label.to_string()];
    }
    if let Some(sp) = (1..=per_line.min(chars.len() - 1)).rev().find(|&i| chars[i] == ' ' && chars.len() - i - 1 <= per_line) {
        return vec![chars[..sp].iter().collect(), chars[sp + 1..].iter().collect()];
    }
    let cut = (1..=per_line).rev().find(|&i| matches!(chars[i - 1], '_' | '-' | ' ')).unwrap_or(per_line);
    let first: String = chars[..cut].iter().collect();
    let rest: Vec<char> = chars[cut..].to_vec();
    let second: String = if rest.len() <= per_line { rest.iter().collect() } else { rest[..per_line - 1].iter().chain(['…'].iter()).collect() };
    vec![first, second]
}

/// How many times images `side` pixels wide are magnified to reach `min_side`.
fn zoom(side: u32, min_side: u32) -> u32 {
    min_side.div_ceil(side.max(1)).max(1)
}

/// The width of a tile of `n_images` images `side` pixels wide, magnified to `min_side`.
pub fn tile_width(side: u32, n_images: usize, min_side: u32) -> u32 {
    n_images as u32 * side * zoom(side, min_side) + (n_images as u32).saturating_sub(1) * GAP
}

/// Writes `tiles` as a near-square grid to `path`, images magnified to at least
/// `min_side`; titles are bottom-aligned above their images.
pub fn save_grid(path: &Path, tiles: &[Tile], min_side: u32) -> Result<()> {
    let Some(first) = tiles.first().and_then(|t| t.images.first()) else { bail!("nothing to draw into {}", path.display()) };
    let (src_side, n_images) = (first.width, tiles[0].images.len());
    let zoom = zoom(src_side, min_side);
    let side = src_side * zoom;
    let cell_w = tile_width(src_side, n_images, min_side);
    let title_h = tiles.iter().map(|t| t.title.len() as u32).max().unwrap_or(0) * LINE + 4;
    let cols = (tiles.len() as f64).sqrt().ceil() as u32;
    let rows = (tiles.len() as u32).div_ceil(cols);
    let (w, h) = (cols * (cell_w + MARGIN) + MARGIN, rows * (side + title_h + MARGIN) + MARGIN);
    let origin = |k: usize| (MARGIN + (k as u32 % cols) * (cell_w + MARGIN), MARGIN + (k as u32 / cols) * (side + title_h + MARGIN));
    let mut buf = vec![255u8; (w * h * 3) as usize];
    for (k, tile) in tiles.iter().enumerate() {
        let (cx, cy) = origin(k);
        for (slot, px) in tile.images.iter().enumerate() {
            blit(&mut buf, w, px, cx + slot as u32 * (side + GAP), cy + title_h, zoom);
        }
    }
    init_font();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        for (k, tile) in tiles.iter().enumerate() {
            let (cx, cy) = origin(k);
            let color = tile.tone.color();
            let style = TextStyle::from((FONT, FONT_PX).into_font()).color(&color);
            let first = cy + 2 + (title_h - 4 - tile.title.len() as u32 * LINE);
            for (i, line) in tile.title.iter().enumerate() {
                let at = (cx as i32, (first + i as u32 * LINE) as i32);
                root.draw(&Text::new(line.clone(), at, style.clone())).map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))?;
            }
        }
        root.present().map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))?;
    }
    image::save_buffer(path, &buf, w, h, image::ColorType::Rgb8).with_context(|| format!("cannot write {}", path.display()))
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
        assert_eq!(wrap("actual: american_pit_bull_terrier", 256), vec!["actual:", "american_pit_bull_terrier"]);
        let w = wrap("a_very_long_label_that_will_never_fit_in_two_lines", 160);
        assert_eq!(w.len(), 2);
        assert!(w[1].ends_with('…') && w[1].chars().count() == 16, "{w:?}");
    }
}
