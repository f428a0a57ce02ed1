//! Turns any error a script causes into `path:LINE:COL: message` plus the offending
//! source line, following calls into functions and modules down to where it happened. A
//! name the engine does not know gets a hint on the same line (`suggest`): fastai's name
//! for it, the nearest registered names, or the signatures of a function called wrongly.
use super::limits::Limits;
use super::suggest;
use rhai::{EvalAltResult, ParseErrorType, Position};
use std::fmt::Write;
use std::rc::Rc;

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
    let message = match unknown_name_hint(cur, || word_at(&file, pos)) {
        Some(hint) => format!("{message}; {hint}"),
        None => message,
    };
    let mut out = format!("{}: {}", locate(&file, pos), clip(&message, MAX_MESSAGE_CHARS));
    let line = pos.line().and_then(|n| source_line(&file, n));
    if let Some(line) = line {
        let n = pos.line().unwrap();
        let (line, col) = excerpt(&line, pos.position().unwrap_or(1).max(1));
        let _ = write!(out, "\n{n:>5} | {line}\n      | {}^", " ".repeat(col - 1));
    }
    for t in trail.iter().rev() {
        let _ = write!(out, "\n  {t}");
    }
    out
}

/// Every function a script can call, as signatures (`name(a: T, ...) -> R`), from a fresh
/// engine: only built when an error needs it.
fn registered() -> Vec<String> {
    super::new_engine(Rc::new(super::ScriptCtx::detached()), 1).gen_fn_signatures(false)
}

fn name_of(signature: &str) -> &str {
    signature.split([' ', '(']).next().unwrap_or(signature)
}

/// The name written at `pos` in the script, if any.
fn word_at(file: &str, pos: Position) -> Option<String> {
    let line = source_line(file, pos.line()?)?;
    let word: String = line.chars().skip(pos.position()?.saturating_sub(1)).take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!word.is_empty()).then_some(word)
}

/// A hint for a function or variable the engine does not know, or for a fastai name that
/// is a Rhai keyword (`learn.export()` does not parse): `word` is the name at the error.
fn unknown_name_hint(err: &EvalAltResult, word: impl Fn() -> Option<String>) -> Option<String> {
    match err {
        EvalAltResult::ErrorFunctionNotFound(called, _) => {
            let name = name_of(called);
            let signatures = registered();
            let same: Vec<&str> = signatures.iter().filter(|s| name_of(s) == name).map(String::as_str).collect();
            if !same.is_empty() {
                return Some(format!("`{name}` takes {}", same.join(" or ")));
            }
            let mut names: Vec<String> = signatures.iter().map(|s| name_of(s).to_string()).filter(|n| !n.contains('$')).collect();
            names.sort();
            names.dedup();
            suggest::hint(name, &names)
        }
        EvalAltResult::ErrorVariableNotFound(name, _) => suggest::hint(name, &[]),
        EvalAltResult::ErrorParsing(ParseErrorType::PropertyExpected | ParseErrorType::Reserved(_), _) => {
            word().and_then(|w| suggest::fastai(&w).map(|_| suggest::hint(&w, &[])))?
        }
        _ => None,
    }
}

fn locate(file: &str, pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        (Some(l), None) => format!("{file}:{l}"),
        _ => file.to_string(),
    }
}

/// The most characters of a message, and of the source line around the error's column,
/// that an error shows: a 10 MB expression is not echoed whole.
const MAX_MESSAGE_CHARS: usize = 2000;
const EXCERPT_CHARS: usize = 160;

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}… ({} characters in all)", &s[..at], s.chars().count()),
        None => s.to_string(),
    }
}

/// At most `EXCERPT_CHARS` of `line` around column `col` (1-based), `…` where cut, and
/// the column of the same character in what is shown.
fn excerpt(line: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= EXCERPT_CHARS {
        return (line.to_string(), col);
    }
    let start = col.saturating_sub(EXCERPT_CHARS / 2).min(chars.len().saturating_sub(EXCERPT_CHARS));
    let end = (start + EXCERPT_CHARS).min(chars.len());
    let mut shown: String = chars[start..end].iter().collect();
    let mut col = col - start;
    if start > 0 {
        shown.insert(0, '…');
        col += 1;
    }
    if end < chars.len() {
        shown.push('…');
    }
    (shown, col)
}

fn source_line(file: &str, n: usize) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().nth(n - 1).map(|l| l.replace('\t', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_source_line_is_shown_around_the_error_only() {
        assert_eq!(excerpt("let x = 1;", 5), ("let x = 1;".to_string(), 5));
        let line = format!("let s = \"{}\" + y;", "a".repeat(10_000_000));
        let col = line.chars().count() - 1; // the `y` (columns count from 1)
        let (shown, c) = excerpt(&line, col);
        assert!(shown.chars().count() <= EXCERPT_CHARS + 2 && shown.starts_with('…'), "{}", shown.len());
        assert_eq!(shown.chars().nth(c - 1), Some('y'), "the caret still points at the error");
        let (head, c) = excerpt(&line, 1);
        assert!(head.starts_with("let s") && head.ends_with('…') && c == 1);
        let long = clip(&"x".repeat(5000), MAX_MESSAGE_CHARS);
        assert!(long.ends_with("… (5000 characters in all)") && long.len() < 2100);
    }
}
