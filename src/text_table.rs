//! Aligned plain-text tables, used wherever results are printed (runs, tables, fit rows),
//! and text made safe for a terminal: whatever a record holds (a param value, a metric
//! name, an error) is shown, never obeyed (no escape sequence, no line break mid-table),
//! and a table cell is bounded.
use std::borrow::Cow;

/// The most characters a table cell shows; longer ones end in `…` (`--json` has them as
/// the record keeps them).
pub const MAX_CELL_CHARS: usize = 200;

/// Whether a terminal would act on `c` rather than show it: control characters (ESC, BEL,
/// CR, LF, ..., C1 controls) and the bidirectional overrides, which reorder what follows.
fn acts(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// `s` with every character a terminal would act on written as its escape (`\n`,
/// `\u{1b}`), for human-readable output (`--json` escapes by itself).
pub fn safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(acts) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| if acts(c) { c.escape_default().to_string() } else { c.to_string() }).collect())
}

/// The most characters one line of `runner show` shows (a field, a line of the error).
pub const MAX_LINE_CHARS: usize = 4000;

/// `safe(s)`, cut to `MAX_CELL_CHARS`.
pub fn cell(s: &str) -> String {
    cut(s, MAX_CELL_CHARS)
}

/// `safe(s)`, cut to `max` characters, the last one `…` when it was cut.
pub fn cut(s: &str, max: usize) -> String {
    let s = safe(s);
    if s.chars().count() <= max {
        return s.into_owned();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Renders `headers` and `rows` as space-separated, left-aligned columns (numbers
/// right-aligned); every cell through `cell`.
pub fn render(headers: &[String], rows: &[Vec<String>]) -> String {
    let headers: Vec<String> = headers.iter().map(|h| cell(h)).collect();
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cell(c)).collect()).collect();
    let n = headers.len();
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
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
    let mut out = line(&headers);
    for r in &rows {
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

    #[test]
    fn cells_show_control_characters_and_are_bounded() {
        assert_eq!(super::safe("plain ünïcode"), "plain ünïcode");
        assert_eq!(super::safe("a\x1b[2Jb\x07c\nd\u{202e}e\u{9b}"), "a\\u{1b}[2Jb\\u{7}c\\nd\\u{202e}e\\u{9b}");
        let t = super::render(&["k\x1b]0;title\x07".into()], &[vec!["two\nlines".into()], vec!["x".repeat(1000)]]);
        assert!(!t.contains(['\x1b', '\x07']) && t.lines().count() == 3, "{t}");
        assert_eq!(t.lines().nth(2).unwrap().chars().count(), super::MAX_CELL_CHARS);
        assert!(t.ends_with('…'));
    }
}
