//! The confusion matrix as a PNG: actual classes down the left, predicted along the
//! bottom (their names turned upright so that 37 breeds fit), cells shaded by count
//! with the count written in them. Cells shrink with the number of classes, never
//! below what keeps a count and a class name legible.
use crate::plot::{init_font, FONT};
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Blues: white for 0, dark blue for the largest value.
fn shade(f: f64) -> RGBColor {
    let lerp = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f.clamp(0.0, 1.0)).round() as u8;
    RGBColor(lerp(247, 8), lerp(251, 48), lerp(255, 107))
}

/// Writes the matrix (`m[actual][predicted]`); `normalize` shows each row as fractions.
pub fn draw(path: &Path, vocab: &[String], m: &[Vec<usize>], normalize: bool) -> Result<()> {
    let c = vocab.len().max(1);
    let cell = (640 / c as u32).clamp(22, 120);
    let label_px = (cell * 7 / 10).clamp(12, 18);
    let count_px = (cell * 6 / 10).clamp(12, 22);
    init_font();
    let label_font = (FONT, label_px).into_font();
    let label_w = vocab.iter().map(|v| label_font.box_size(v).map_or(v.chars().count() as u32 * label_px, |(w, _)| w)).max().unwrap_or(0) + 12;
    let (left, top, bottom, right) = (label_w + 30, 56, label_w + 30, 24);
    let grid = cell * c as u32;
    let (w, h) = (left + grid + right, top + grid + bottom);
    let values: Vec<Vec<f64>> = m
        .iter()
        .map(|row| {
            let total: usize = row.iter().sum();
            row.iter()
                .map(|&n| {
                    if normalize {
                        if total == 0 {
                            0.0
                        } else {
                            n as f64 / total as f64
                        }
                    } else {
                        n as f64
                    }
                })
                .collect()
        })
        .collect();
    let max = values.iter().flatten().copied().fold(0.0, f64::max).max(1e-12);
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let centred = Pos::new(HPos::Center, VPos::Center);
    let title = if normalize { "Confusion matrix (share of each actual class)" } else { "Confusion matrix" };
    root.draw(&Text::new(title, ((w / 2) as i32, 24), TextStyle::from((FONT, 22).into_font()).pos(centred))).map_err(|e| err(&e))?;
    for (a, row) in values.iter().enumerate() {
        for (p, &v) in row.iter().enumerate() {
            let (x, y) = ((left + p as u32 * cell) as i32, (top + a as u32 * cell) as i32);
            let f = v / max;
            root.draw(&Rectangle::new([(x, y), (x + cell as i32, y + cell as i32)], shade(f).filled())).map_err(|e| err(&e))?;
            root.draw(&Rectangle::new([(x, y), (x + cell as i32, y + cell as i32)], RGBColor(200, 200, 200).stroke_width(1))).map_err(|e| err(&e))?;
            // Zeros are left blank in big matrices, where they would only be noise.
            if v == 0.0 && c > 10 {
                continue;
            }
            let text = match (normalize, c > 10) {
                (false, _) => format!("{}", v as usize),
                (true, false) => format!("{v:.2}"),
                // Three characters fit a small cell: `.40`, `1`.
                (true, true) if v >= 0.995 => "1".into(),
                (true, true) => format!("{v:.2}").trim_start_matches('0').to_string(),
            };
            let colour = if f > 0.5 { &WHITE } else { &BLACK };
            let style = TextStyle::from((FONT, count_px).into_font()).color(colour).pos(centred);
            root.draw(&Text::new(text, (x + cell as i32 / 2, y + cell as i32 / 2), style)).map_err(|e| err(&e))?;
        }
    }
    let label = TextStyle::from(label_font);
    for (i, name) in vocab.iter().enumerate() {
        let mid = (i as u32 * cell + cell / 2) as i32;
        let row = label.clone().pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(name.clone(), (left as i32 - 6, top as i32 + mid), row)).map_err(|e| err(&e))?;
        let col = label.clone().transform(FontTransform::Rotate270).pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(name.clone(), (left as i32 + mid, (top + grid) as i32 + 6), col)).map_err(|e| err(&e))?;
    }
    let axis = TextStyle::from((FONT, 17).into_font()).pos(centred);
    root.draw(&Text::new("predicted", ((left + grid / 2) as i32, (h - 14) as i32), axis.clone())).map_err(|e| err(&e))?;
    root.draw(&Text::new("actual", (14, (top + grid / 2) as i32), axis.transform(FontTransform::Rotate270))).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
