//! Turns any error a script causes into `path:LINE:COL: message` plus the offending
//! source line, following calls into functions and modules down to where it happened.
use super::limits::Limits;
use rhai::{EvalAltResult, Position};
use std::fmt::Write;

pub fn format_script_error(err: &EvalAltResult, script: &str, limits: &Limits) -> String {
    let mut file = script.to_string();
    let mut cur = err;
    let mut trail = Vec::new();
    loop {
        match cur {
            EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                trail.push(format!("in call to `{name}` at {}", locate(&file, *pos)));
                if !src.is_empty() {
                    file = src.clone();
                }
                cur = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, pos) => {
                trail.push(format!("in module `{name}` imported at {}", locate(&file, *pos)));
                file = name.clone();
                cur = inner;
            }
            _ => break,
        }
    }
    let pos = cur.position();
    let message = match (limits.explain(cur), cur) {
        (Some(limit), _) => limit,
        (None, EvalAltResult::ErrorRuntime(v, _)) => v.to_string(),
        // Stopped by `on_progress` (a signal): the reason it gave, not "Script terminated".
        (None, EvalAltResult::ErrorTerminated(v, _)) if !v.is_unit() => v.to_string(),
        (None, other) => {
            // Display appends " (line L, position C)"; the location is printed in front instead.
            let s = other.to_string();
            match s.rfind(" (line ") {
                Some(i) if s.ends_with(')') => s[..i].to_string(),
                _ => s,
            }
        }
    };
    let mut out = format!("{}: {message}", locate(&file, pos));
    if let Some(line) = pos.line().and_then(|n| source_line(&file, n)) {
        let n = pos.line().unwrap();
        let col = pos.position().unwrap_or(1).max(1);
        let _ = write!(out, "\n{n:>5} | {line}\n      | {}^", " ".repeat(col - 1));
    }
    for t in trail.iter().rev() {
        let _ = write!(out, "\n  {t}");
    }
    out
}

fn locate(file: &str, pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        (Some(l), None) => format!("{file}:{l}"),
        _ => file.to_string(),
    }
}

fn source_line(file: &str, n: usize) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().nth(n - 1).map(|l| l.replace('\t', " "))
}
