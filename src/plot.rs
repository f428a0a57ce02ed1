//! Shared plotting setup: a bundled font (no system fonts needed) and the PNG line charts
//! that runs leave behind (lr_find curve, loss curves, compare overlays).
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

pub const FONT: &str = "sans-serif";

/// Registers the bundled DejaVu Sans once, so text renders on machines without fonts.
pub fn init_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, include_bytes!("../assets/DejaVuSans.ttf"));
    });
}

/// One named line of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A marked point with a label (lr_find suggestions).
pub struct Mark {
    pub label: String,
    pub at: (f64, f64),
}

/// One chart: named series, marked points, axis labels. `integer_x` for epoch and step
/// axes, whose ticks then fall on whole numbers only.
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub marks: Vec<Mark>,
    pub log_x: bool,
    pub integer_x: bool,
}

/// Draws line series into a PNG; `log_x` for learning-rate axes.
pub fn line_chart(path: &Path, title: &str, x_label: &str, y_label: &str, series: Vec<Series>, marks: Vec<Mark>, log_x: bool) -> Result<()> {
    charts(path, &[Chart { title: title.into(), x_label: x_label.into(), y_label: y_label.into(), series, marks, log_x, integer_x: false }])
}

/// Draws several charts in a grid (two columns) into one PNG.
pub fn charts(path: &Path, charts: &[Chart]) -> Result<()> {
    init_font();
    let cols = if charts.len() > 1 { 2 } else { 1 };
    let rows = charts.len().div_ceil(cols).max(1);
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let root = BitMapBackend::new(path, (900 * cols as u32, 500 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    for (area, chart) in root.split_evenly((rows, cols)).iter().zip(charts) {
        draw(area, chart).map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Text sizes in pixels: tick labels, axis names and legends stay readable when a
/// 900x500 chart is looked at scaled down (a report thumbnail, a notebook cell).
const TEXT: i32 = 20;
const CAPTION: i32 = 26;

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Series with at most this many points also get a dot per point, so that a series of one
/// point (a one-epoch fit) is still visible.
const DOTS_UP_TO: usize = 40;

/// Tick labels for an x axis: whole numbers only on integer axes, `1e-3` on log axes.
fn x_tick(c: &Chart, x: f64) -> String {
    if c.log_x {
        format!("{x:.0e}")
    } else if c.integer_x {
        if (x - x.round()).abs() < 1e-9 {
            format!("{}", x.round() as i64)
        } else {
            String::new()
        }
    } else {
        format!("{x}")
    }
}

fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, c: &Chart) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let finite = |s: &Series| s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect::<Vec<(f64, f64)>>();
    let pts: Vec<(f64, f64)> = c.series.iter().flat_map(finite).collect();
    if pts.is_empty() {
        return Err(anyhow!("nothing to plot in `{}`", c.title));
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in &pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if c.integer_x {
        // Half a step of room on each side, so the first and last points are not on the frame.
        (x0, x1) = (x0 - 0.5, x1 + 0.5);
    } else if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    // A flat series gets a visible band around its value, so that its ticks differ.
    let pad = if y1 - y0 > 1e-9 * y0.abs().max(1.0) { (y1 - y0) * 0.05 } else { (y0.abs() * 0.05).max(0.05) };
    let (y0, y1) = (y0 - pad, y1 + pad);
    // The legend sits right of the plot, never over the curves.
    let named = c.series.iter().filter(|s| !s.name.is_empty()).count() > 0;
    let (w, _) = area.dim_in_pixel();
    let legend_w = if named {
        let longest = c.series.iter().map(|s| s.name.chars().count()).max().unwrap_or(0) as u32;
        (longest * TEXT as u32 * 3 / 5 + 50).min(w * 2 / 5)
    } else {
        0
    };
    let (plot_area, legend_area) = area.split_horizontally(w - legend_w);
    let mut builder = ChartBuilder::on(&plot_area);
    builder.caption(&c.title, (FONT, CAPTION)).margin(15).x_label_area_size(60).y_label_area_size(95);
    let n_int_ticks = if c.integer_x { ((x1 - x0).round() as usize).clamp(1, 12) } else { 10 };
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            let fmt = |x: &f64| x_tick(c, *x);
            chart
                .configure_mesh()
                .x_desc(c.x_label.as_str())
                .y_desc(c.y_label.as_str())
                .label_style((FONT, TEXT))
                .axis_desc_style((FONT, TEXT))
                .x_labels(n_int_ticks)
                .x_label_formatter(&fmt)
                .draw()?;
            for (i, s) in c.series.iter().enumerate() {
                let col = COLORS[i % COLORS.len()];
                let pts = finite(s);
                if pts.len() <= DOTS_UP_TO {
                    chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, col.filled())))?;
                }
                chart.draw_series(LineSeries::new(pts, col.stroke_width(2)))?;
            }
            for (i, m) in c.marks.iter().enumerate() {
                // Labels stacked above their points so that close suggestions stay legible.
                let label = EmptyElement::at(m.at)
                    + Circle::new((0, 0), 6, RED.filled())
                    + Text::new(m.label.clone(), (8, -26 - 22 * i as i32), (FONT, TEXT));
                chart.draw_series(std::iter::once(label))?;
            }
        }};
    }
    if c.log_x {
        body!(builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?);
    } else {
        body!(builder.build_cartesian_2d(x0..x1, y0..y1)?);
    }
    if named {
        for (i, s) in c.series.iter().enumerate() {
            let col = COLORS[i % COLORS.len()];
            let y = 60 + 30 * i as i32;
            legend_area.draw(&PathElement::new(vec![(4, y), (28, y)], col.stroke_width(3)))?;
            legend_area.draw(&Text::new(s.name.clone(), (34, y - TEXT / 2), (FONT, TEXT)))?;
        }
    }
    Ok(())
}
