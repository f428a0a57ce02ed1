//! `runner report`: one self-contained HTML page over a set of runs (a sweep, a few runs,
//! the last one) that opens offline: the runs' params and final/best metrics as a sortable
//! table, every curve overlaid across runs as an interactive Vega-Lite chart (hover for
//! values, click a legend entry to show one run), each run's pictures, status and error.
//! Vega, Vega-Lite and vega-embed are vendored under `assets/vega/` (with their licences)
//! and inlined, as are the pictures (data: URIs), so the page fetches nothing.
mod data;

use crate::track::RunEntry;
use anyhow::{bail, Context, Result};
pub use data::{gather, ReportData};
use std::path::Path;

const TEMPLATE: &str = include_str!("../../assets/report/report.html");
const SCRIPT: &str = include_str!("../../assets/report/report.js");
const VEGA: [(&str, &str); 3] = [
    ("vega 6.4.0", include_str!("../../assets/vega/vega.min.js")),
    ("vega-lite 6.5.0", include_str!("../../assets/vega/vega-lite.min.js")),
    ("vega-embed 7.3.0", include_str!("../../assets/vega/vega-embed.min.js")),
];

/// Our own script text, inside a `<script>` element: `</` cannot close it early.
fn script_safe(s: &str) -> String {
    s.replace("</", "<\\/")
}

/// JSON that may sit inside a `<script>` element whatever its strings hold: escaping `</`
/// alone is not enough (`<!--<script>` puts the HTML parser in a state where the element's
/// own `</script>` no longer ends it, and the page's script is swallowed), so `<`, `>` and
/// `&` become `\u` escapes, which JSON reads back as the same characters; so do U+2028 and
/// U+2029, which end a line in older JavaScript.
fn json_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page for `runs`, titled `title`.
pub fn render(runs: &[RunEntry], title: &str) -> Result<String> {
    if runs.is_empty() {
        bail!("no runs to report on");
    }
    let data = gather(runs, title)?;
    let libs: String = VEGA.iter().map(|(name, js)| format!("<script>/* {name}, BSD-3-Clause (see assets/vega/) */\n{js}\n</script>\n")).collect();
    let json = json_safe(&serde_json::to_string(&data)?);
    // One pass, so that text substituted in (an error message) is never substituted again.
    let slot = regex::Regex::new(r"\{\{(TITLE|LIBS|DATA|SCRIPT)\}\}")?;
    Ok(slot
        .replace_all(TEMPLATE, |c: &regex::Captures| match &c[1] {
            "TITLE" => html_escape(title),
            "LIBS" => libs.clone(),
            "DATA" => json.clone(),
            _ => script_safe(SCRIPT),
        })
        .into_owned())
}

/// Writes the page for `runs` to `path`.
pub fn write(runs: &[RunEntry], title: &str, path: &Path) -> Result<()> {
    let page = render(runs, title)?;
    std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn nothing_closes_a_script_early() {
        assert_eq!(super::script_safe("a</b"), "a<\\/b");
        let hostile = serde_json::json!({ "p": "<!--<script></script>&\u{2028}\u{2029}x" });
        let safe = super::json_safe(&hostile.to_string());
        assert!(!safe.contains(['<', '>', '&', '\u{2028}', '\u{2029}']), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), hostile, "the same JSON, read back");
        for (_, js) in super::VEGA {
            assert!(!js.contains("</script"), "a vendored library would end its <script> early");
        }
    }
}
