//! Argument glue shared by every binding file: numbers that may be written as integers,
//! option maps that reject unknown keys, and errors that Rhai positions at the call site.
use super::options::OptTable;
use super::tensor_value::as_number;
use crate::opts::{Def, Label, Opt, OptValue, Options, Value};
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

/// A script value as the plain API's options take it (see `crate::opts`).
/// A one-element tensor reads as the number it holds (`fixed(t.mean(), 3)`).
pub fn value(v: &Dynamic) -> Value {
    if let Some(n) = as_number(v) {
        return value(&n);
    }
    if v.is_unit() {
        Value::Unit
    } else if let Ok(b) = v.as_bool() {
        Value::Bool(b)
    } else if let Ok(i) = v.as_int() {
        Value::Int(i)
    } else if let Ok(f) = v.as_float() {
        Value::Float(f)
    } else if let Ok(s) = v.clone().into_immutable_string() {
        Value::Str(s.to_string())
    } else if let Some(a) = v.read_lock::<Array>() {
        Value::List(a.iter().map(value).collect())
    } else if let Some(m) = v.read_lock::<Map>() {
        Value::Map(m.iter().map(|(k, v)| (k.to_string(), value(v))).collect())
    } else {
        Value::Other { ty: v.type_name().to_string(), shown: v.to_string() }
    }
}

/// The plain API's value as a script value (the inverse of `value`).
pub fn dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Unit => Dynamic::UNIT,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(x) => (*x).into(),
        Value::Str(s) => s.clone().into(),
        Value::List(l) => Dynamic::from_array(l.iter().map(dynamic).collect()),
        Value::Map(m) => Dynamic::from_map(m.iter().map(|(k, v)| (k.into(), dynamic(v))).collect()),
        Value::Other { shown, .. } => shown.clone().into(),
    }
}

/// A positional argument read as `T` (numbers may be written as integers:
/// `fit_one_cycle(1, 1)`); errors name it.
pub fn arg<T: OptValue>(v: &Dynamic, what: &str) -> RhaiResult<T> {
    T::from_value(&value(v), &Label::bare(what)).map_err(from_anyhow)
}

pub fn to_f64(v: &Dynamic, what: &str) -> RhaiResult<f64> {
    arg(v, what)
}

pub fn to_i64(v: &Dynamic, what: &str) -> RhaiResult<i64> {
    arg(v, what)
}

pub fn to_usize(v: &Dynamic, what: &str) -> RhaiResult<usize> {
    arg(v, what)
}

pub fn to_string(v: &Dynamic, what: &str) -> RhaiResult<String> {
    arg(v, what)
}

/// One number or a list of them.
pub fn to_f64s(v: &Dynamic, what: &str) -> RhaiResult<Vec<f64>> {
    arg(v, what)
}

/// A list of sizes (no negative entries).
pub fn to_sizes(v: &Dynamic, what: &str) -> RhaiResult<Vec<i64>> {
    arg(v, what)
}

/// An options map (`#{ bs: 64 }`) read through its function's table (see `options`): a
/// declared options struct is filled with `fill`, other keys are read one by one with
/// their defaults from the table, and `finish` rejects keys the table does not list, so a
/// typo is an error that names the accepted keys.
pub struct Opts {
    table: &'static OptTable,
    rows: Vec<Opt>,
    map: Map,
}

impl Opts {
    pub fn new(table: &'static OptTable, map: Map) -> Opts {
        Opts { table, rows: table.rows(), map }
    }

    fn spec(&self, key: &str) -> RhaiResult<&Opt> {
        self.rows
            .iter()
            .find(|o| o.key == key)
            .ok_or_else(|| script_err(format!("internal error: {} reads option `{key}` that its table lacks", self.table.function)))
    }

    fn at<'a>(&self, key: &'a str) -> Label<'a> {
        Label { function: self.table.function, key }
    }

    /// The value given for `key`, if any.
    pub fn get(&mut self, key: &str) -> RhaiResult<Option<Dynamic>> {
        self.spec(key)?;
        Ok(self.map.get(key).cloned().filter(|v| !v.is_unit()))
    }

    /// Sets every option of `into` (a struct declared with `options!`) that the map gives
    /// and the function's table lists; the rest keep the values `into` has.
    pub fn fill<T: Options>(&mut self, into: &mut T) -> RhaiResult<()> {
        for o in &self.rows {
            if let Some(v) = self.map.get(o.key).filter(|v| !v.is_unit()) {
                into.set(&value(v), &self.at(o.key)).map_err(from_anyhow)?;
            }
        }
        Ok(())
    }

    /// `key` read as `T`, or its table default.
    fn read<T: OptValue>(&mut self, key: &str, default: impl Fn(&Def) -> Option<T>) -> RhaiResult<T> {
        let d = self.spec(key)?.default.clone();
        match self.get(key)? {
            Some(v) => T::from_value(&value(&v), &self.at(key)).map_err(from_anyhow),
            None => default(&d).ok_or_else(|| script_err(format!("internal error: {} option `{key}` has default {d:?}", self.table.function))),
        }
    }

    /// `key` read as `T` when given.
    fn read_opt<T: OptValue>(&mut self, key: &str) -> RhaiResult<Option<T>> {
        self.read(key, |_| Some(None))
    }

    pub fn f64(&mut self, key: &str) -> RhaiResult<f64> {
        self.read(key, |d| match d {
            Def::F(x) => Some(*x),
            Def::I(i) => Some(*i as f64),
            _ => None,
        })
    }

    pub fn opt_f64(&mut self, key: &str) -> RhaiResult<Option<f64>> {
        self.read_opt(key)
    }

    pub fn i64(&mut self, key: &str) -> RhaiResult<i64> {
        self.read(key, |d| if let Def::I(i) = d { Some(*i) } else { None })
    }

    pub fn usize(&mut self, key: &str) -> RhaiResult<usize> {
        self.read(key, |d| match d {
            Def::I(i) => usize::try_from(*i).ok(),
            _ => None,
        })
    }

    pub fn opt_usize(&mut self, key: &str) -> RhaiResult<Option<usize>> {
        self.read_opt(key)
    }

    pub fn opt_u64(&mut self, key: &str) -> RhaiResult<Option<u64>> {
        self.read_opt(key)
    }

    pub fn opt_bool(&mut self, key: &str) -> RhaiResult<Option<bool>> {
        self.read_opt(key)
    }

    pub fn bool(&mut self, key: &str) -> RhaiResult<bool> {
        self.read(key, |d| if let Def::B(b) = d { Some(*b) } else { None })
    }

    pub fn string(&mut self, key: &str) -> RhaiResult<String> {
        self.read(key, |d| if let Def::S(s) = d { Some(s.to_string()) } else { None })
    }

    pub fn opt_string(&mut self, key: &str) -> RhaiResult<Option<String>> {
        self.read_opt(key)
    }

    /// A string option parsed into its library type (`FromStr` next to that type).
    pub fn choice<T: std::str::FromStr<Err = anyhow::Error>>(&mut self, key: &str) -> RhaiResult<T> {
        self.string(key)?.parse().map_err(from_anyhow)
    }

    /// Errors on keys the function's table does not list.
    pub fn finish(self) -> RhaiResult<()> {
        let known: Vec<&str> = self.rows.iter().map(|o| o.key).collect();
        let unknown: Vec<&str> = self.map.keys().map(|k| k.as_str()).filter(|k| !known.contains(k)).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(script_err(crate::opts::unknown_keys(self.table.function, &unknown, &known)))
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
