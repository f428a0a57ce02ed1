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

/// One chart: named series, marked points, axis labels.
pub struct Chart<'a> {
    pub title: String,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series>,
    pub marks: Vec<Mark>,
    pub log_x: bool,
}

/// Draws line series into a PNG; `log_x` for learning-rate axes.
pub fn line_chart(path: &Path, title: &str, x_label: &str, y_label: &str, series: Vec<Series>, marks: Vec<Mark>, log_x: bool) -> Result<()> {
    charts(path, &[Chart { title: title.into(), x_label, y_label, series, marks, log_x }])
}

/// Draws several charts in a grid (two columns) into one PNG.
pub fn charts(path: &Path, charts: &[Chart]) -> Result<()> {
    init_font();
    let cols = if charts.len() > 1 { 2 } else { 1 };
    let rows = charts.len().div_ceil(cols).max(1);
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let root = BitMapBackend::new(path, (800 * cols as u32, 500 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    for (area, chart) in root.split_evenly((rows, cols)).iter().zip(charts) {
        draw(area, chart).map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, c: &Chart) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let pts = || c.series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    if pts().next().is_none() {
        return Err(anyhow!("nothing to plot in `{}`", c.title));
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in pts() {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    let mut builder = ChartBuilder::on(area);
    builder.caption(&c.title, (FONT, 22)).margin(15).x_label_area_size(40).y_label_area_size(60);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            let log_fmt = |x: &f64| format!("{x:.0e}");
            let lin_fmt = |x: &f64| format!("{x}");
            let fmt: &dyn Fn(&f64) -> String = if c.log_x { &log_fmt } else { &lin_fmt };
            chart.configure_mesh().x_desc(c.x_label).y_desc(c.y_label).label_style((FONT, 14)).x_label_formatter(fmt).draw()?;
            for (i, s) in c.series.iter().enumerate() {
                let col = colors[i % colors.len()];
                let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
                chart
                    .draw_series(LineSeries::new(pts, col.stroke_width(2)))?
                    .label(s.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
            }
            for (i, m) in c.marks.iter().enumerate() {
                // Labels stacked above their points so that close suggestions stay legible.
                let label =
                    EmptyElement::at(m.at) + Circle::new((0, 0), 6, RED.filled()) + Text::new(m.label.clone(), (8, -22 - 18 * i as i32), (FONT, 15));
                chart.draw_series(std::iter::once(label))?;
            }
            chart.configure_series_labels().label_font((FONT, 14)).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        }};
    }
    if c.log_x {
        body!(builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?);
    } else {
        body!(builder.build_cartesian_2d(x0..x1, y0..y1)?);
    }
    Ok(())
}
