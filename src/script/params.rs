//! `param("name", default)`: a script's tunable values, taken from `--set name=value`,
//! from `--config params.toml`, or the default, and typed like the default. The names a
//! script declares are found before it runs, so a mistyped `--set` fails at once.
use super::args::{from_toml, to_toml};
use crate::track::{Param, ParamSource};
use anyhow::{bail, Context, Result};
use rhai::{ASTNode, Dynamic, Engine, Expr, Stmt, AST};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The values given on the command line and in a config file.
#[derive(Debug, Default, Clone)]
pub struct ParamInputs {
    pub cli: BTreeMap<String, String>,
    /// The names of `cli` that a sweep's `--grid` gave (errors name the flag a value came from).
    pub grid: BTreeSet<String>,
    pub config: toml::Table,
}

impl ParamInputs {
    /// Parses `name=value` pairs (`--set`, then a sweep point's `--grid` values, which win)
    /// and an optional TOML file.
    pub fn new(sets: &[String], grid: &[String], config: Option<&Path>) -> Result<ParamInputs> {
        let mut cli = BTreeMap::new();
        let mut grid_names = BTreeSet::new();
        for (s, flag) in sets.iter().map(|s| (s, "--set")).chain(grid.iter().map(|s| (s, "--grid"))) {
            let Some((k, v)) = s.split_once('=') else {
                bail!("{flag} `{s}`: expected name=value");
            };
            let k = k.trim();
            if k.is_empty() {
                bail!("{flag} `{s}`: the name is empty");
            }
            cli.insert(k.to_string(), v.trim().to_string());
            if flag == "--grid" {
                grid_names.insert(k.to_string());
            }
        }
        let config = match config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("cannot read config {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("config {} is not valid TOML", p.display()))?
            }
            None => toml::Table::new(),
        };
        Ok(ParamInputs { cli, grid: grid_names, config })
    }

    /// The flag a command-line value of `name` came from.
    fn flag(&self, name: &str) -> &'static str {
        if self.grid.contains(name) {
            "--grid"
        } else {
            "--set"
        }
    }

    /// Refuses given names the script never declares (typo guard) and values that do not
    /// fit a literal default. When the script computes some param names, a name not found
    /// may be one of them: that is a warning (returned), not a refusal.
    pub fn check_declared(&self, declared: &Declared, script: &Path) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        for (name, from) in self.cli.keys().map(|k| (k, self.flag(k))).chain(self.config.keys().map(|k| (k, "--config"))) {
            match declared.params.get(name) {
                Some(Some(default)) => {
                    let _ = self.resolve(name, default)?;
                }
                Some(None) => {}
                None if !declared.unresolved.is_empty() => warnings.push(format!(
                    "{from} names `{name}`, which no param(\"...\") call in {} names literally; passing it on, as {} cannot be read before the run",
                    script.display(),
                    declared.unresolved.join(", ")
                )),
                None => bail!(
                    "{from} names `{name}`, but {} declares no such param (its params: {})",
                    script.display(),
                    if declared.params.is_empty() { "none".to_string() } else { declared.params.keys().cloned().collect::<Vec<_>>().join(", ") }
                ),
            }
        }
        Ok(warnings)
    }

    /// The value of `name`: command line, then config, then the default, typed like the default.
    pub fn resolve(&self, name: &str, default: &Dynamic) -> Result<(Dynamic, Param)> {
        let Some(default_toml) = to_toml(default) else {
            bail!("param `{name}`: the default must be a number, bool, string or array, got {}", default.type_name());
        };
        let (given, source) = if let Some(raw) = self.cli.get(name) {
            let given = parse_cli_value(raw, &default_toml);
            if let toml::Value::Float(v) = given {
                if let Some(why) = lost_float(raw, v) {
                    bail!("param `{name}`: --set value `{raw}` {why}; give one a 64-bit float can hold");
                }
            }
            (given, ParamSource::Cli)
        } else if let Some(v) = self.config.get(name) {
            (v.clone(), ParamSource::Config)
        } else {
            (default_toml.clone(), ParamSource::Default)
        };
        let value = coerce(&given, &default_toml).with_context(|| {
            let from = match source {
                ParamSource::Cli => self.flag(name),
                ParamSource::Config => "--config",
                ParamSource::Default => "default",
            };
            format!(
                "param `{name}` expects {} like its default `{}`, got `{}` from {from}",
                kind(&default_toml),
                crate::track::record::value_string(&default_toml),
                crate::track::record::value_string(&given)
            )
        })?;
        Ok((from_toml(&value), Param { value, source }))
    }
}

/// `--set` values are TOML values (`3e-3`, `true`, `[1, 2]`); anything else is a string.
fn parse_cli_value(raw: &str, default: &toml::Value) -> toml::Value {
    if matches!(default, toml::Value::String(_)) {
        return toml::Value::String(raw.to_string());
    }
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Why the float `v` read from `raw` is not the number written: too small for a 64-bit
/// float, it became 0 (TOML itself refuses one too large).
fn lost_float(raw: &str, v: f64) -> Option<&'static str> {
    let mantissa = raw.trim().split(['e', 'E']).next().unwrap_or("");
    (v == 0.0 && mantissa.chars().any(|c| c.is_ascii_digit() && c != '0')).then_some("is too small for a 64-bit float: it would be 0.0")
}

fn kind(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::String(_) => "a string",
        toml::Value::Array(_) => "an array",
        _ => "a value",
    }
}

fn coerce(v: &toml::Value, like: &toml::Value) -> Result<toml::Value> {
    use toml::Value::*;
    Ok(match (v, like) {
        (Integer(i), Integer(_)) => Integer(*i),
        (Integer(i), Float(_)) => Float(*i as f64),
        (Float(f), Float(_)) => Float(*f),
        (Boolean(b), Boolean(_)) => Boolean(*b),
        (String(s), String(_)) => String(s.clone()),
        (Array(a), Array(_)) => Array(a.clone()),
        _ => bail!("type mismatch"),
    })
}

/// What a script declares, read from its compiled form (and its modules') before it runs.
#[derive(Debug, Default)]
pub struct Declared {
    /// Names passed literally to `param(...)`, with the default where that is a literal too.
    pub params: BTreeMap<String, Option<Dynamic>>,
    /// What cannot be read statically: `param` calls with a computed name and imports of a
    /// computed or missing path, as `file:line (what)`.
    pub unresolved: Vec<String>,
}

/// Walks the compiled script and, by their literal paths, every module it imports.
pub fn declared_params(engine: &Engine, ast: &AST, script: &Path) -> Declared {
    let mut out = Declared::default();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<(AST, PathBuf)> = vec![(ast.clone(), script.to_path_buf())];
    while let Some((ast, path)) = todo.pop() {
        let at = |pos: rhai::Position, what: &str| format!("{}:{} ({what})", path.display(), pos.line().unwrap_or(0));
        let mut imports = Vec::new();
        ast.walk(&mut |nodes| {
            match nodes.last() {
                // A call is an expression (`let e = param(..)`) or, standing alone (the last
                // line of a function body), a statement.
                Some(ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)))
                    if call.name == "param" && call.namespace.is_empty() =>
                {
                    match call.args.first().and_then(|a| a.get_literal_value(None)).and_then(|v| v.into_immutable_string().ok()) {
                        Some(name) => {
                            let default = call.args.get(1).and_then(|d| d.get_literal_value(None));
                            out.params.entry(name.to_string()).or_insert(default);
                        }
                        None => out.unresolved.push(at(*pos, "a param name computed at run time")),
                    }
                }
                Some(ASTNode::Stmt(Stmt::Import(x, pos))) => match x.0.get_literal_value(None).and_then(|v| v.into_immutable_string().ok()) {
                    Some(import) => imports.push((import.to_string(), *pos)),
                    None => out.unresolved.push(at(*pos, "an import of a computed path")),
                },
                _ => {}
            }
            true
        });
        for (import, pos) in imports {
            let file = super::modules::module_file(&path, &import);
            if !seen.insert(file.clone()) {
                continue;
            }
            // A module that is missing or fails to compile is reported when the script imports it.
            match engine.compile_file(file.clone()) {
                Ok(m) => todo.push((m, file)),
                Err(_) => out.unresolved.push(at(pos, &format!("module {} cannot be read", file.display()))),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(sets: &[&str]) -> ParamInputs {
        ParamInputs::new(&sets.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &[], None).unwrap()
    }

    #[test]
    fn values_are_typed_like_the_default() {
        let p = inputs(&["lr=3", "epochs=5", "arch=resnet18", "bad=1.5"]);
        let (v, rec) = p.resolve("lr", &Dynamic::from(1e-3)).unwrap();
        assert_eq!(v.as_float().unwrap(), 3.0);
        assert_eq!(rec.source, ParamSource::Cli);
        assert_eq!(p.resolve("epochs", &Dynamic::from(4_i64)).unwrap().0.as_int().unwrap(), 5);
        assert_eq!(p.resolve("arch", &Dynamic::from("resnet34")).unwrap().0.to_string(), "resnet18");
        let err = p.resolve("bad", &Dynamic::from(2_i64)).unwrap_err().to_string();
        assert!(err.contains("expects an integer") && err.contains("1.5"), "{err}");
        let (v, rec) = p.resolve("other", &Dynamic::from(true)).unwrap();
        assert!(v.as_bool().unwrap());
        assert_eq!(rec.source, ParamSource::Default);
    }

    #[test]
    fn floats_too_small_or_large_to_hold_are_refused_not_rounded() {
        let p = inputs(&["lr=1e-400", "big=1e400", "tiny=0.0e-400", "ok=1e-300", "neg=-1e-400"]);
        for (name, want) in [("lr", "`1e-400` is too small for a 64-bit float: it would be 0.0"), ("big", "expects a number"), ("neg", "too small")] {
            let e = p.resolve(name, &Dynamic::from(1e-3)).unwrap_err().to_string();
            assert!(e.contains(&format!("param `{name}`")) && e.contains(want), "{e}");
        }
        assert_eq!(p.resolve("tiny", &Dynamic::from(1e-3)).unwrap().0.as_float().unwrap(), 0.0, "a zero is a zero");
        assert_eq!(p.resolve("ok", &Dynamic::from(1e-3)).unwrap().0.as_float().unwrap(), 1e-300);
    }

    #[test]
    fn declarations_are_found_in_functions_and_computed_names_are_pointed_at() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.rhai");
        std::fs::write(&script, "fn lr() { param(\"lr\", 1e-3) }\nlet n = \"e\" + \"pochs\";\nlet e = param(n, 4);\n").unwrap();
        let engine = Engine::new();
        let d = declared_params(&engine, &engine.compile_file(script.clone()).unwrap(), &script);
        assert_eq!(d.params.keys().collect::<Vec<_>>(), ["lr"]);
        assert_eq!(d.params["lr"].as_ref().unwrap().as_float().unwrap(), 1e-3);
        assert_eq!(d.unresolved.len(), 1);
        assert!(d.unresolved[0].ends_with("s.rhai:3 (a param name computed at run time)"), "{:?}", d.unresolved);
        let warnings = inputs(&["epochs=2"]).check_declared(&d, &script).unwrap();
        assert!(warnings[0].contains("`epochs`"), "{warnings:?}");
        let e = inputs(&["lr=fast"]).check_declared(&d, &script).unwrap_err().to_string();
        assert!(e.contains("param `lr` expects a number"), "{e}");
    }
}
