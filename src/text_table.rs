//! Aligned plain-text tables, used wherever results are printed (runs, tables, fit rows).
/// Renders `headers` and `rows` as space-separated, left-aligned columns (numbers right-aligned).
pub fn render(headers: &[String], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let numeric: Vec<bool> =
        (0..n).map(|i| !rows.is_empty() && rows.iter().all(|r| r.get(i).is_none_or(|c| c.is_empty() || c.parse::<f64>().is_ok()))).collect();
    let line = |cells: &[String]| {
        let parts: Vec<String> = (0..n)
            .map(|i| {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = width[i] - c.chars().count();
                if numeric[i] {
                    format!("{}{c}", " ".repeat(pad))
                } else {
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let mut out = line(headers);
    for r in rows {
        out.push('\n');
        out.push_str(&line(r));
    }
    out
}

/// A float shown with 6 significant-ish digits, as fastai prints its tables.
pub fn num(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 1e-3 && v.abs() < 1e6) {
        format!("{v:.6}")
    } else {
        format!("{v:.4e}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let t = super::render(&["name".into(), "value".into()], &[vec!["a".into(), "1.5".into()], vec!["long".into(), "10.25".into()]]);
        assert_eq!(t, "name  value\na       1.5\nlong  10.25");
    }
}
