//! `param("name", default)`: a script's tunable values, taken from `--set name=value`,
//! from `--config params.toml`, or the default, and typed like the default. The names a
//! script declares are found before it runs, so a mistyped `--set` fails at once.
use super::args::{from_toml, to_toml};
use crate::track::{Param, ParamSource};
use anyhow::{bail, Context, Result};
use rhai::{Dynamic, Engine, Expr, Stmt, AST};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The values given on the command line and in a config file.
#[derive(Debug, Default, Clone)]
pub struct ParamInputs {
    pub cli: BTreeMap<String, String>,
    pub config: toml::Table,
}

impl ParamInputs {
    /// Parses `name=value` pairs and an optional TOML file.
    pub fn new(sets: &[String], config: Option<&Path>) -> Result<ParamInputs> {
        let mut cli = BTreeMap::new();
        for s in sets {
            let Some((k, v)) = s.split_once('=') else {
                bail!("--set `{s}`: expected name=value");
            };
            let k = k.trim();
            if k.is_empty() {
                bail!("--set `{s}`: the name is empty");
            }
            cli.insert(k.to_string(), v.trim().to_string());
        }
        let config = match config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("cannot read config {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("config {} is not valid TOML", p.display()))?
            }
            None => toml::Table::new(),
        };
        Ok(ParamInputs { cli, config })
    }

    /// Fails on given names the script never declares (typo guard).
    pub fn check_declared(&self, declared: &BTreeSet<String>, script: &Path) -> Result<()> {
        let known = || declared.iter().cloned().collect::<Vec<_>>().join(", ");
        for (name, from) in self.cli.keys().map(|k| (k, "--set")).chain(self.config.keys().map(|k| (k, "--config"))) {
            if !declared.contains(name) {
                bail!(
                    "{from} names `{name}`, but {} declares no such param (its params: {})",
                    script.display(),
                    if declared.is_empty() { "none".to_string() } else { known() }
                );
            }
        }
        Ok(())
    }

    /// The value of `name`: command line, then config, then the default, typed like the default.
    pub fn resolve(&self, name: &str, default: &Dynamic) -> Result<(Dynamic, Param)> {
        let Some(default_toml) = to_toml(default) else {
            bail!("param `{name}`: the default must be a number, bool, string or array, got {}", default.type_name());
        };
        let (given, source) = if let Some(raw) = self.cli.get(name) {
            (parse_cli_value(raw, &default_toml), ParamSource::Cli)
        } else if let Some(v) = self.config.get(name) {
            (v.clone(), ParamSource::Config)
        } else {
            (default_toml.clone(), ParamSource::Default)
        };
        let value = coerce(&given, &default_toml).with_context(|| {
            let from = match source {
                ParamSource::Cli => "--set",
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

/// Names passed as a literal first argument to `param(...)` in the script and in every
/// module it imports by a literal path (found by walking the compiled ASTs).
pub fn declared_params(engine: &Engine, ast: &AST, script: &Path) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<(AST, PathBuf)> = vec![(ast.clone(), script.to_path_buf())];
    while let Some((ast, path)) = todo.pop() {
        let mut imports = Vec::new();
        ast.walk(&mut |nodes| {
            match nodes.last() {
                Some(rhai::ASTNode::Expr(Expr::FnCall(call, _))) if call.name == "param" => {
                    if let Some(Expr::StringConstant(s, _)) = call.args.first() {
                        names.insert(s.to_string());
                    }
                }
                Some(rhai::ASTNode::Stmt(Stmt::Import(x, _))) => {
                    if let Expr::StringConstant(s, _) = &x.0 {
                        imports.push(s.to_string());
                    }
                }
                _ => {}
            }
            true
        });
        for import in imports {
            let file = super::modules::module_file(&path, &import);
            if seen.insert(file.clone()) && file.exists() {
                // A module that fails to compile is reported when the script imports it.
                if let Ok(m) = engine.compile_file(file.clone()) {
                    todo.push((m, file));
                }
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(sets: &[&str]) -> ParamInputs {
        ParamInputs::new(&sets.iter().map(|s| s.to_string()).collect::<Vec<_>>(), None).unwrap()
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
}
