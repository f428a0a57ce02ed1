//! Argument glue shared by every binding file: numbers that may be written as integers,
//! option maps that reject unknown keys, and errors that Rhai positions at the call site.
use super::options::{Def, Opt, OptTable};
use rhai::{Array, Dynamic, EvalAltResult, Map, Position};

pub type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// A runtime error; Rhai fills in the script line and column of the failing call.
pub fn script_err(msg: impl Into<String>) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from(msg.into()), Position::NONE).into()
}

/// Converts a plain-API error (with its context chain) into a script error.
pub fn from_anyhow(e: anyhow::Error) -> Box<EvalAltResult> {
    script_err(format!("{e:#}"))
}

pub trait OrScript<T> {
    fn or_script(self) -> RhaiResult<T>;
}

impl<T> OrScript<T> for anyhow::Result<T> {
    fn or_script(self) -> RhaiResult<T> {
        self.map_err(from_anyhow)
    }
}

/// A float parameter that also accepts an integer (`fit_one_cycle(1, 1)`).
pub fn to_f64(v: &Dynamic, what: &str) -> RhaiResult<f64> {
    if let Ok(f) = v.as_float() {
        Ok(f)
    } else if let Ok(i) = v.as_int() {
        Ok(i as f64)
    } else {
        Err(script_err(format!("{what} must be a number, got {} `{v}`", v.type_name())))
    }
}

pub fn to_i64(v: &Dynamic, what: &str) -> RhaiResult<i64> {
    match v.as_int() {
        Ok(i) => Ok(i),
        Err(_) => match v.as_float() {
            Ok(f) if f.fract() == 0.0 => Ok(f as i64),
            _ => Err(script_err(format!("{what} must be an integer, got {} `{v}`", v.type_name()))),
        },
    }
}

pub fn to_usize(v: &Dynamic, what: &str) -> RhaiResult<usize> {
    let i = to_i64(v, what)?;
    usize::try_from(i).map_err(|_| script_err(format!("{what} must not be negative, got {i}")))
}

pub fn to_string(v: &Dynamic, what: &str) -> RhaiResult<String> {
    v.clone().into_immutable_string().map(|s| s.to_string()).map_err(|t| script_err(format!("{what} must be a string, got {t} `{v}`")))
}

pub fn to_f64s(v: &Dynamic, what: &str) -> RhaiResult<Vec<f64>> {
    match v.clone().try_cast::<Array>() {
        Some(a) => a.iter().map(|x| to_f64(x, what)).collect(),
        None => Ok(vec![to_f64(v, what)?]),
    }
}

pub fn to_usizes(v: &Dynamic, what: &str) -> RhaiResult<Vec<usize>> {
    match v.clone().try_cast::<Array>() {
        Some(a) => a.iter().map(|x| to_usize(x, what)).collect(),
        None => Err(script_err(format!("{what} must be an array of integers, got {} `{v}`", v.type_name()))),
    }
}

/// An options map (`#{ bs: 64 }`) read key by key through its function's table (see
/// `options`): defaults come from the table, and `finish` rejects keys the table does not
/// list, so a typo is an error that names the accepted keys.
pub struct Opts {
    table: &'static OptTable,
    map: Map,
}

impl Opts {
    pub fn new(table: &'static OptTable, map: Map) -> Opts {
        Opts { table, map }
    }

    fn spec(&self, key: &str) -> RhaiResult<&'static Opt> {
        self.table.get(key).ok_or_else(|| script_err(format!("internal error: {} reads option `{key}` that its table lacks", self.table.function)))
    }

    /// Whether the function's table has option `key`.
    pub fn has(&self, key: &str) -> bool {
        self.table.get(key).is_some()
    }

    /// The value given for `key`, if any.
    pub fn get(&mut self, key: &str) -> RhaiResult<Option<Dynamic>> {
        self.spec(key)?;
        Ok(self.map.get(key).cloned().filter(|v| !v.is_unit()))
    }

    fn label(&self, key: &str) -> String {
        format!("{} option `{key}`", self.table.function)
    }

    fn default_bad(&self, key: &str, d: Def) -> Box<EvalAltResult> {
        script_err(format!("internal error: {} option `{key}` has default {d:?}", self.table.function))
    }

    pub fn f64(&mut self, key: &str) -> RhaiResult<f64> {
        match (self.get(key)?, self.spec(key)?.default) {
            (Some(v), _) => to_f64(&v, &self.label(key)),
            (None, Def::F(x)) => Ok(x),
            (None, Def::I(i)) => Ok(i as f64),
            (None, d) => Err(self.default_bad(key, d)),
        }
    }

    pub fn opt_f64(&mut self, key: &str) -> RhaiResult<Option<f64>> {
        self.get(key)?.map(|v| to_f64(&v, &self.label(key))).transpose()
    }

    pub fn i64(&mut self, key: &str) -> RhaiResult<i64> {
        match (self.get(key)?, self.spec(key)?.default) {
            (Some(v), _) => to_i64(&v, &self.label(key)),
            (None, Def::I(i)) => Ok(i),
            (None, d) => Err(self.default_bad(key, d)),
        }
    }

    pub fn usize(&mut self, key: &str) -> RhaiResult<usize> {
        let label = self.label(key);
        let i = self.i64(key)?;
        usize::try_from(i).map_err(|_| script_err(format!("{label} must not be negative, got {i}")))
    }

    pub fn opt_usize(&mut self, key: &str) -> RhaiResult<Option<usize>> {
        self.get(key)?.map(|v| to_usize(&v, &self.label(key))).transpose()
    }

    pub fn opt_u64(&mut self, key: &str) -> RhaiResult<Option<u64>> {
        let label = self.label(key);
        self.get(key)?.map(|v| u64::try_from(to_i64(&v, &label)?).map_err(|_| script_err(format!("{label} must not be negative")))).transpose()
    }

    pub fn bool(&mut self, key: &str) -> RhaiResult<bool> {
        match (self.get(key)?, self.spec(key)?.default) {
            (Some(v), _) => v.as_bool().map_err(|t| script_err(format!("{} must be true or false, got {t}", self.label(key)))),
            (None, Def::B(b)) => Ok(b),
            (None, d) => Err(self.default_bad(key, d)),
        }
    }

    pub fn string(&mut self, key: &str) -> RhaiResult<String> {
        match (self.get(key)?, self.spec(key)?.default) {
            (Some(v), _) => to_string(&v, &self.label(key)),
            (None, Def::S(s)) => Ok(s.to_string()),
            (None, d) => Err(self.default_bad(key, d)),
        }
    }

    pub fn opt_string(&mut self, key: &str) -> RhaiResult<Option<String>> {
        self.get(key)?.map(|v| to_string(&v, &self.label(key))).transpose()
    }

    /// A string option parsed into its library type (`FromStr` next to that type).
    pub fn choice<T: std::str::FromStr<Err = anyhow::Error>>(&mut self, key: &str) -> RhaiResult<T> {
        self.string(key)?.parse().map_err(from_anyhow)
    }

    /// Errors on keys the function's table does not list.
    pub fn finish(self) -> RhaiResult<()> {
        let known = self.table.keys();
        let unknown: Vec<&str> = self.map.keys().map(|k| k.as_str()).filter(|k| !known.contains(k)).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(script_err(format!(
            "unknown {} option{} {}; known options: {}",
            self.table.function,
            if unknown.len() > 1 { "s" } else { "" },
            unknown.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
            known.join(", ")
        )))
    }
}

/// TOML value -> script value (params come from TOML files and `--set`).
pub fn from_toml(v: &toml::Value) -> Dynamic {
    match v {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Array(a) => Dynamic::from_array(a.iter().map(from_toml).collect()),
        toml::Value::Table(t) => Dynamic::from_map(t.iter().map(|(k, v)| (k.as_str().into(), from_toml(v))).collect()),
        toml::Value::Datetime(d) => d.to_string().into(),
    }
}

/// Script value -> TOML value, for recording params.
pub fn to_toml(v: &Dynamic) -> Option<toml::Value> {
    if let Ok(i) = v.as_int() {
        Some(toml::Value::Integer(i))
    } else if let Ok(f) = v.as_float() {
        Some(toml::Value::Float(f))
    } else if let Ok(b) = v.as_bool() {
        Some(toml::Value::Boolean(b))
    } else if v.is_string() {
        Some(toml::Value::String(v.to_string()))
    } else if let Some(a) = v.clone().try_cast::<Array>() {
        a.iter().map(to_toml).collect::<Option<Vec<_>>>().map(toml::Value::Array)
    } else {
        None
    }
}
