//! The layering, enforced: every `crate::`/`super::` path in `src/` is resolved to the file
//! it names, and the test fails on an import circle between files and on an import that
//! goes up the table of layers below. Cargo refuses such circles between crates; this does
//! the same inside the one crate.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first: a module imports only modules of lower
/// layers (and itself). Modules of one layer do not import each other.
const LAYERS: &[&[&str]] = &[
    &["seed", "device", "threads", "precision", "dist", "fs_walk", "torch_ext", "torch_errors", "text_table", "plot", "logging", "opts"],
    &["data", "track"],
    &["model"],
    &["learn"],
    &["session"],
    &["script"],
    &["run"],
    &["sweep"],
    &["report"],
    &["cli"],
    &["lib", "main"],
];

/// Top-level modules that must not use tch or Rhai (records are read without libtorch).
const NO_TORCH_NO_RHAI: &[&str] = &["track", "report"];

/// `src/`, or the tree in `LAYERING_SRC` (to check the test against an older checkout).
fn src() -> PathBuf {
    std::env::var_os("LAYERING_SRC").map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), PathBuf::from)
}

/// `src/data/loader.rs` -> ["data", "loader"]; `src/data/mod.rs` -> ["data"].
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments, string contents and `#[cfg(test)]` modules (tests
/// may reach anywhere).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let (mut out, mut chars) = (String::new(), text.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if c == '"' && !escaped {
                        break;
                    }
                    escaped = c == '\\' && !escaped;
                }
                out.push_str("\"\"");
            }
            // A char literal such as '"' or '{' (lifetimes have no closing quote nearby).
            '\'' => {
                let ahead: String = chars.clone().take(3).collect();
                if let Some(end) = ahead.find('\'').filter(|&e| e > 0) {
                    for _ in 0..=end {
                        chars.next();
                    }
                    out.push_str("' '");
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Paths in a `use` tree: `a::{b, c::{d, e}}` -> a::b, a::c::d, a::c::e.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree = [" {", "{ ", " }", " ,", ", ", ":: ", " ::"].iter().fold(tree, |t, p| t.replace(p, p.trim()));
    let Some(open) = tree.find('{') else { return vec![tree] };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).flat_map(|p| expand(p).into_iter().map(move |x| format!("{prefix}{x}"))).collect()
}

/// Every path the code names from the crate: `use` trees and inline `crate::`/`super::`
/// paths, with `(is a pub use, path)`.
fn paths(code: &str) -> Vec<(bool, String)> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = &rest[..i];
        let word_start = before.chars().last().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if word_start {
            let is_pub = before.trim_end().ends_with("pub") || before.trim_end().ends_with(')');
            for p in expand(&after[..end]) {
                found.push((is_pub, p.split(" as ").next().unwrap().to_string()));
            }
            rest = &after[end..];
        } else {
            rest = after;
        }
    }
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start).map(|i| i + from) {
            let prev = if i == 0 { b' ' } else { bytes[i - 1] };
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b':') {
                j += 1;
            }
            if !(prev.is_ascii_alphanumeric() || prev == b'_' || prev == b':') {
                found.push((false, code[i..j].trim_end_matches(':').to_string()));
            }
            from = j.max(i + 1);
        }
    }
    found
}

/// A file's module path (`["data", "loader"]`) and the paths each file names.
type Module = Vec<String>;
type Uses = BTreeMap<Module, Vec<(bool, String)>>;

struct Crate {
    /// Module path -> its file.
    files: BTreeMap<Vec<String>, PathBuf>,
    /// (module, name) -> the module path a `pub use` re-exports it from.
    reexports: BTreeMap<(Vec<String>, String), Vec<String>>,
}

impl Crate {
    /// The module a path from `module` lands in: its longest prefix that is a file, with
    /// re-exports followed to the file that defines the name.
    fn resolve(&self, module: &[String], path: &str) -> Option<Vec<String>> {
        let mut segs: Vec<String> = Vec::new();
        let mut parts = path.split("::").filter(|s| !s.is_empty()).peekable();
        match parts.peek().copied() {
            Some("crate") => {
                parts.next();
            }
            Some("super") => {
                segs = module.to_vec();
                while parts.peek() == Some(&"super") {
                    parts.next();
                    segs.pop();
                }
            }
            Some("self") => {
                parts.next();
                segs = module.to_vec();
            }
            _ => return None,
        }
        let rest: Vec<&str> = parts.collect();
        let mut best = None;
        for k in 0..=rest.len() {
            let cand: Vec<String> = segs.iter().cloned().chain(rest[..k].iter().map(|s| s.to_string())).collect();
            if self.files.contains_key(&cand) {
                best = Some((cand, k));
            }
        }
        let (mut m, k) = best?;
        if let Some(name) = rest.get(k) {
            let mut seen = 0;
            while let Some(to) = self.reexports.get(&(m.clone(), name.to_string())) {
                m = to.clone();
                seen += 1;
                if seen > 8 {
                    break;
                }
            }
        }
        Some(m)
    }
}

fn load() -> (Crate, Uses) {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut krate = Crate { files: BTreeMap::new(), reexports: BTreeMap::new() };
    let mut uses = BTreeMap::new();
    for f in &files {
        let m = module_of(f);
        krate.files.insert(m.clone(), f.clone());
        uses.insert(m, paths(&code(&std::fs::read_to_string(f).unwrap())));
    }
    for (m, ps) in &uses {
        for (_, p) in ps.iter().filter(|(is_pub, _)| *is_pub) {
            let full = if p.starts_with("crate::") || p.starts_with("super::") || p.starts_with("self::") { p.clone() } else { format!("self::{p}") };
            let name = full.rsplit("::").next().unwrap().to_string();
            let from = full[..full.len() - name.len()].trim_end_matches(':').to_string();
            if let Some(target) = krate.resolve(m, &from) {
                if &target != m {
                    krate.reexports.insert((m.clone(), name), target);
                }
            }
        }
    }
    (krate, uses)
}

/// File-level imports: module -> modules it uses, without re-export lines and a parent's
/// edges to the children it declares.
fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let (krate, uses) = load();
    let mut g: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, ps) in &uses {
        let edges = g.entry(m.clone()).or_default();
        for (is_pub, p) in ps {
            let p = match p.split("::").next() {
                Some("crate" | "super" | "self") => p.clone(),
                Some(child) if krate.files.contains_key(&[&m[..], &[child.to_string()]].concat()) => format!("self::{p}"),
                _ => continue,
            };
            match krate.resolve(m, &p) {
                // A module's `pub use` of its own children is its interface, not a dependency.
                Some(t) if *is_pub && t.starts_with(m) => {}
                Some(t) if &t != m => {
                    edges.insert(t);
                }
                _ => {}
            }
        }
    }
    g
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("/")
    }
}

fn layer(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

#[test]
fn no_import_circles_between_files() {
    let g = graph();
    // Tarjan's strongly connected components.
    struct T<'a> {
        g: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on: BTreeSet<&'a Vec<String>>,
        sccs: Vec<Vec<&'a Vec<String>>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Vec<String>) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let Some((w, _)) = t.g.get_key_value(w) else { continue };
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.push(w);
                if w == v {
                    break;
                }
            }
            t.sccs.push(scc);
        }
    }
    let mut t = T { g: &g, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on: BTreeSet::new(), sccs: Vec::new() };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    let circles: Vec<String> = t.sccs.iter().filter(|s| s.len() > 1).map(|s| s.iter().map(|m| name(m)).collect::<Vec<_>>().join(" <-> ")).collect();
    assert!(circles.is_empty(), "import circles between files:\n{}", circles.join("\n"));
}

#[test]
fn imports_go_down_the_layers() {
    let g = graph();
    let mut wrong = Vec::new();
    for (m, deps) in &g {
        let from = m.first().map_or("lib", String::as_str);
        let Some(lf) = layer(from) else {
            wrong.push(format!("src/{} is in no layer: add `{from}` to LAYERS", name(m)));
            continue;
        };
        for d in deps {
            let to = d.first().map_or("lib", String::as_str);
            if to == from {
                continue;
            }
            match layer(to) {
                Some(lt) if lt < lf => {}
                Some(_) => wrong.push(format!("src/{} imports {} ({from} may not use {to})", name(m), name(d))),
                None => wrong.push(format!("`{to}` is in no layer: add it to LAYERS")),
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}

#[test]
fn records_and_reports_need_neither_libtorch_nor_rhai() {
    let (krate, _) = load();
    let mut wrong = Vec::new();
    for (m, f) in &krate.files {
        if m.first().is_some_and(|top| NO_TORCH_NO_RHAI.contains(&top.as_str())) {
            let c = code(&std::fs::read_to_string(f).unwrap());
            for bad in ["tch::", "rhai::", "torch_sys"] {
                if c.contains(bad) {
                    wrong.push(format!("src/{}.rs uses {bad}", name(m)));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_resolver_sees_what_it_must() {
    // The test above is only as good as its parsing: check it on known lines.
    assert_eq!(expand("a::{b, c::{d, e as f}}"), ["a::b", "a::c::d", "a::c::e as f"]);
    let c = code("use crate::x::Y; // crate::comment::Z\nlet s = \"crate::string::W\"; let q = '\"'; crate::inline::f();");
    let ps: Vec<String> = paths(&c).into_iter().map(|p| p.1).collect();
    assert!(ps.contains(&"crate::x::Y".to_string()) && ps.contains(&"crate::inline::f".to_string()), "{ps:?}");
    assert!(!ps.iter().any(|p| p.contains("comment") || p.contains("string")), "{ps:?}");
    let g = graph();
    let loader = vec!["data".to_string(), "loader".to_string()];
    assert!(g[&loader].contains(&vec!["data".to_string(), "sampler".to_string()]), "{:?}", g[&loader]);
    let blocks = vec!["data".to_string(), "blocks".to_string()];
    assert!(g[&blocks].contains(&vec!["data".to_string(), "dataloaders".to_string()]), "{:?}", g[&blocks]);
}
