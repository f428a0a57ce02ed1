//! Options declared once. A plain struct whose fields scripts may set is written with
//! `options!`: each field's doc comment, type and default give the struct, its `Default`,
//! its rows in the reference (docs/API.md) and `Options::set`, through which the script
//! layer fills it from an options map. Nothing here knows Rhai (the script layer hands its
//! values over as `Value`s), so `data`, `model` and `learn` declare their options without
//! depending on the layer that reads them.
use anyhow::{bail, Result};
use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

/// A default as the reference shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Def {
    F(f64),
    I(i64),
    B(bool),
    S(Cow<'static, str>),
    /// No default: the option is off or absent unless given.
    None,
    /// A default in words: known only at run time (the run's seed, the core count) or a list.
    Text(Cow<'static, str>),
}

impl Def {
    pub const fn s(s: &'static str) -> Def {
        Def::S(Cow::Borrowed(s))
    }

    pub const fn text(t: &'static str) -> Def {
        Def::Text(Cow::Borrowed(t))
    }
}

impl fmt::Display for Def {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Def::F(x) => write!(f, "{x:?}"),
            Def::I(x) => write!(f, "{x}"),
            Def::B(x) => write!(f, "{x}"),
            Def::S(s) => write!(f, "\"{s}\""),
            Def::None => write!(f, "none"),
            Def::Text(t) => write!(f, "{t}"),
        }
    }
}

/// One option: key, type as scripts write it, default, meaning.
#[derive(Debug, Clone)]
pub struct Opt {
    pub key: &'static str,
    pub ty: &'static str,
    pub default: Def,
    pub doc: &'static str,
}

/// A value given in a script, as options take it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
    /// Anything else (a closure, a table): its type and how the script prints it.
    Other {
        ty: String,
        shown: String,
    },
}

impl Value {
    /// The type's name as scripts see it.
    pub fn ty(&self) -> &str {
        match self {
            Value::Unit => "()",
            Value::Bool(_) => "bool",
            Value::Int(_) => "i64",
            Value::Float(_) => "f64",
            Value::Str(_) => "string",
            Value::List(_) => "array",
            Value::Map(_) => "map",
            Value::Other { ty, .. } => ty,
        }
    }
}

/// As the script prints the value (Rhai's float format: `1.0`, `1e-7`).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unit => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) if *x == 0.0 => write!(f, "0.0"),
            Value::Float(x) if !(1e-5..=1e15).contains(&x.abs()) => write!(f, "{x:e}"),
            Value::Float(x) if x.fract() == 0.0 => write!(f, "{x}.0"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s}"),
            Value::List(l) => write!(f, "[{}]", l.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")),
            Value::Map(m) => write!(f, "#{{{}}}", m.iter().map(|(k, v)| format!("{k:?}: {v}")).collect::<Vec<_>>().join(", ")),
            Value::Other { shown, .. } => write!(f, "{shown}"),
        }
    }
}

/// What a value is for, in messages: "image_loaders option `size`", or a bare argument
/// name ("learning rate") when `function` is empty.
#[derive(Debug, Clone, Copy)]
pub struct Label<'a> {
    pub function: &'a str,
    pub key: &'a str,
}

impl Label<'_> {
    pub fn bare(name: &str) -> Label<'_> {
        Label { function: "", key: name }
    }
}

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.function {
            "" => write!(f, "{}", self.key),
            function => write!(f, "{function} option `{}`", self.key),
        }
    }
}

/// A type an option can have: how scripts write it, how it is read, how its default shows.
pub trait OptValue: Sized {
    const TY: &'static str;
    fn from_value(v: &Value, at: &Label) -> Result<Self>;
    fn def(&self) -> Def;
}

/// A struct declared with `options!`.
pub trait Options: Default {
    /// The rows of the reference, with this value's fields as the defaults.
    fn rows(&self) -> Vec<Opt>;
    /// Sets option `at.key` (its own or a flattened struct's); false when it has none.
    fn set(&mut self, v: &Value, at: &Label) -> Result<bool>;
    /// The rows with the declared defaults.
    fn table() -> Vec<Opt> {
        Self::default().rows()
    }
}

/// A string option naming one of a type's values (`"crop"`): read with `FromStr`, shown by name.
pub trait Choice: std::str::FromStr<Err = anyhow::Error> {
    fn name(&self) -> &'static str;
}

/// The error for keys an options map does not take, listing the ones it does.
pub fn unknown_keys(function: &str, unknown: &[&str], known: &[&str]) -> String {
    format!(
        "unknown {function} option{} {}; known options: {}",
        if unknown.len() > 1 { "s" } else { "" },
        unknown.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
        known.join(", ")
    )
}

/// One row of a declared struct (for `options!`).
pub fn row<T: OptValue>(key: &'static str, doc: &'static str, default: &T, shown: Option<&'static str>) -> Opt {
    Opt { key, ty: T::TY, default: shown.map_or_else(|| default.def(), Def::text), doc }
}

/// Sets one declared field when `at` names it (for `options!`).
pub fn set_field<T: OptValue>(slot: &mut T, key: &str, v: &Value, at: &Label) -> Result<bool> {
    if at.key != key {
        return Ok(false);
    }
    *slot = T::from_value(v, at)?;
    Ok(true)
}

/// A declared struct given as a map (`early_stopping: #{ monitor, patience }`): named
/// after the key it is given for, unknown keys refused.
pub fn from_map<T: Options>(v: &Value, at: &Label) -> Result<T> {
    let mut t = T::default();
    let known: Vec<&str> = t.rows().iter().map(|o| o.key).collect();
    let Value::Map(entries) = v else { bail!("{at} must be a map #{{ {} }}", known.join(", ")) };
    for (k, v) in entries.iter().filter(|(_, v)| *v != Value::Unit) {
        t.set(v, &Label { function: at.key, key: k })?;
    }
    let unknown: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).filter(|k| !known.contains(k)).collect();
    if !unknown.is_empty() {
        bail!("{}", unknown_keys(at.key, &unknown, &known));
    }
    Ok(t)
}

impl OptValue for f64 {
    const TY: &'static str = "f64";
    fn from_value(v: &Value, at: &Label) -> Result<f64> {
        match v {
            Value::Float(x) => Ok(*x),
            Value::Int(i) => Ok(*i as f64),
            v => bail!("{at} must be a number, got {} `{v}`", v.ty()),
        }
    }
    fn def(&self) -> Def {
        Def::F(*self)
    }
}

impl OptValue for i64 {
    const TY: &'static str = "i64";
    fn from_value(v: &Value, at: &Label) -> Result<i64> {
        match v {
            Value::Int(i) => Ok(*i),
            Value::Float(x) if x.fract() == 0.0 => Ok(*x as i64),
            v => bail!("{at} must be an integer, got {} `{v}`", v.ty()),
        }
    }
    fn def(&self) -> Def {
        Def::I(*self)
    }
}

/// Counts and sizes: integers that must not be negative.
macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl OptValue for $t {
            const TY: &'static str = "i64";
            fn from_value(v: &Value, at: &Label) -> Result<$t> {
                let i = i64::from_value(v, at)?;
                if i < 0 {
                    bail!("{at} must not be negative, got {i}");
                }
                <$t>::try_from(i).map_err(|_| anyhow::anyhow!("{at} must be at most {}, got {i}", <$t>::MAX))
            }
            fn def(&self) -> Def {
                Def::I(*self as i64)
            }
        }
    )*};
}
unsigned!(usize, u64, u32);

impl OptValue for bool {
    const TY: &'static str = "bool";
    fn from_value(v: &Value, at: &Label) -> Result<bool> {
        match v {
            Value::Bool(b) => Ok(*b),
            v => bail!("{at} must be true or false, got {}", v.ty()),
        }
    }
    fn def(&self) -> Def {
        Def::B(*self)
    }
}

impl OptValue for String {
    const TY: &'static str = "String";
    fn from_value(v: &Value, at: &Label) -> Result<String> {
        match v {
            Value::Str(s) => Ok(s.clone()),
            v => bail!("{at} must be a string, got {} `{v}`", v.ty()),
        }
    }
    fn def(&self) -> Def {
        Def::S(self.clone().into())
    }
}

impl OptValue for PathBuf {
    const TY: &'static str = "String";
    fn from_value(v: &Value, at: &Label) -> Result<PathBuf> {
        String::from_value(v, at).map(PathBuf::from)
    }
    fn def(&self) -> Def {
        Def::S(self.display().to_string().into())
    }
}

impl<T: Choice> OptValue for T {
    const TY: &'static str = "String";
    fn from_value(v: &Value, at: &Label) -> Result<T> {
        String::from_value(v, at)?.parse()
    }
    fn def(&self) -> Def {
        Def::s(self.name())
    }
}

/// Absent unless given.
impl<T: OptValue> OptValue for Option<T> {
    const TY: &'static str = T::TY;
    fn from_value(v: &Value, at: &Label) -> Result<Option<T>> {
        T::from_value(v, at).map(Some)
    }
    fn def(&self) -> Def {
        self.as_ref().map_or(Def::None, T::def)
    }
}

/// The items of a list, each read as one value.
fn items<T>(v: &Value, at: &Label, what: &str, item: impl Fn(&Value) -> Result<T>) -> Result<Vec<T>> {
    match v {
        Value::List(l) => l.iter().map(item).collect(),
        v => bail!("{at} must be an array of {what}, got {} `{v}`", v.ty()),
    }
}

/// One number for all, or one each (fastai's `ps`).
impl OptValue for Vec<f64> {
    const TY: &'static str = "f64 | Array";
    fn from_value(v: &Value, at: &Label) -> Result<Vec<f64>> {
        match v {
            Value::List(l) => l.iter().map(|x| f64::from_value(x, at)).collect(),
            v => Ok(vec![f64::from_value(v, at)?]),
        }
    }
    fn def(&self) -> Def {
        match self[..] {
            [x] => Def::F(x),
            _ => Def::Text(format!("{self:?}").into()),
        }
    }
}

/// Sizes (channels, kernels, hidden features, shapes): negative entries are refused.
impl OptValue for Vec<i64> {
    const TY: &'static str = "Array";
    fn from_value(v: &Value, at: &Label) -> Result<Vec<i64>> {
        items(v, at, "integers", |x| usize::from_value(x, at).map(|n| n as i64))
    }
    fn def(&self) -> Def {
        Def::Text(format!("{self:?}").into())
    }
}

impl OptValue for Vec<bool> {
    const TY: &'static str = "Array";
    fn from_value(v: &Value, at: &Label) -> Result<Vec<bool>> {
        items(v, at, "true/false", |x| bool::from_value(x, at))
    }
    fn def(&self) -> Def {
        Def::Text(format!("{self:?}").into())
    }
}

/// `[height, width]`.
impl OptValue for (i64, i64) {
    const TY: &'static str = "[i64; 2]";
    fn from_value(v: &Value, at: &Label) -> Result<(i64, i64)> {
        match Vec::<i64>::from_value(v, at)?[..] {
            [a, b] => Ok((a, b)),
            ref l => bail!("{at} must be two numbers [height, width], got {} numbers", l.len()),
        }
    }
    fn def(&self) -> Def {
        Def::Text(format!("[{}, {}]", self.0, self.1).into())
    }
}

/// `[start, middle, end]` (fastai's `moms`).
impl OptValue for (f64, f64, f64) {
    const TY: &'static str = "Array";
    fn from_value(v: &Value, at: &Label) -> Result<(f64, f64, f64)> {
        match Vec::<f64>::from_value(v, at)?[..] {
            [a, b, c] => Ok((a, b, c)),
            _ => bail!("{at} must be three numbers [start, middle, end]"),
        }
    }
    fn def(&self) -> Def {
        Def::Text(format!("[{:?}, {:?}, {:?}]", self.0, self.1, self.2).into())
    }
}

/// Declares a struct whose fields scripts may set, one line per field:
///
/// ```ignore
/// crate::options! {
///     /// What a one-cycle fit varies.
///     #[derive(Debug, Clone, Copy)]
///     pub struct OneCycle {
///         /// the first learning rate is lr_max / div
///         opt div: f64 = 25.0,
///         /// the peak learning rate (the fit's argument, not an option)
///         field lr_max: f64 = 1.0,
///     }
/// }
/// ```
///
/// `opt name: T = default` is an option, its doc comment the reference's meaning (`T` an
/// `OptValue`); `opt name as key: ...` gives it another key; `opt ... = expr => "words"` shows
/// a default only known at run time in words (`expr` is the library's own). `flat name: T`
/// lists a nested declared struct's options as this one's, and `field` is a plain field
/// that scripts do not set. Every field is public.
#[macro_export]
macro_rules! options {
    (@key $field:ident) => { stringify!($field) };
    (@key $field:ident $key:ident) => { stringify!($key) };
    (@rows opt $value:expr, $key:expr, $doc:expr, $shown:expr) => {
        vec![$crate::opts::row($key, $doc.trim(), &$value, $shown)]
    };
    (@rows flat $value:expr, $key:expr, $doc:expr, $shown:expr) => {
        $crate::opts::Options::rows(&$value)
    };
    (@rows field $($rest:tt)*) => {
        Vec::new()
    };
    (@set opt $slot:expr, $key:expr, $v:ident, $at:ident) => {
        $crate::opts::set_field(&mut $slot, $key, $v, $at)?
    };
    (@set flat $slot:expr, $key:expr, $v:ident, $at:ident) => {
        $crate::opts::Options::set(&mut $slot, $v, $at)?
    };
    (@set field $($rest:tt)*) => {
        false
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[doc = $doc:literal])* $kind:ident $field:ident $(as $key:ident)? : $ty:ty = $default:expr $(=> $shown:literal)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $crate::opts::Options for $name {
            fn rows(&self) -> Vec<$crate::opts::Opt> {
                [$( $crate::options!(@rows $kind self.$field, $crate::options!(@key $field $($key)?), concat!($($doc),*), None $(.or(Some($shown)))?) ),*].concat()
            }

            fn set(&mut self, v: &$crate::opts::Value, at: &$crate::opts::Label) -> anyhow::Result<bool> {
                $( if $crate::options!(@set $kind self.$field, $crate::options!(@key $field $($key)?), v, at) { return Ok(true); } )*
                Ok(false)
            }
        }

        impl $crate::opts::OptValue for $name {
            const TY: &'static str = "Map";
            fn from_value(v: &$crate::opts::Value, at: &$crate::opts::Label) -> anyhow::Result<Self> {
                $crate::opts::from_map(v, at)
            }
            fn def(&self) -> $crate::opts::Def {
                $crate::opts::Def::text("see its options")
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::options! {
        /// A test struct.
        #[derive(Debug, PartialEq)]
        pub struct Inner {
            /// a rate
            opt rate: f64 = 0.5,
            /// how many
            /// (two lines)
            opt count as n: usize = 3,
        }
    }

    crate::options! {
        #[derive(Debug, PartialEq)]
        pub struct Outer {
            /// a name
            opt name: String = "x".into(),
            flat inner: Inner = Inner::default(),
            /// known at run time
            opt seed: Option<u64> = None => "the run's seed",
            field device: u8 = 7,
        }
    }

    fn at(key: &str) -> Label<'_> {
        Label { function: "f", key }
    }

    #[test]
    fn one_declaration_gives_rows_defaults_and_setters() {
        let rows = Outer::table();
        let keys: Vec<&str> = rows.iter().map(|o| o.key).collect();
        assert_eq!(keys, ["name", "rate", "n", "seed"], "flattened in place, renamed, plain fields left out");
        assert_eq!(rows[2].doc, "how many (two lines)");
        assert_eq!(
            (rows[0].default.to_string(), rows[1].default.to_string(), rows[3].default.to_string()),
            ("\"x\"".into(), "0.5".into(), "the run's seed".into())
        );
        assert_eq!(rows[2].ty, "i64");
        let mut o = Outer::default();
        assert_eq!(o.device, 7);
        assert!(o.set(&Value::Int(2), &at("rate")).unwrap());
        assert!(o.set(&Value::Int(9), &at("n")).unwrap());
        assert!(!o.set(&Value::Int(9), &at("count")).unwrap(), "the key, not the field name");
        assert!(!o.set(&Value::Int(1), &at("device")).unwrap());
        assert_eq!((o.inner.rate, o.inner.count), (2.0, 9));
    }

    #[test]
    fn bad_values_say_which_option() {
        let mut o = Outer::default();
        let e = o.set(&Value::Str("a".into()), &at("rate")).unwrap_err().to_string();
        assert_eq!(e, "f option `rate` must be a number, got string `a`");
        let e = o.set(&Value::Int(-1), &at("n")).unwrap_err().to_string();
        assert_eq!(e, "f option `n` must not be negative, got -1");
        assert!(u32::from_value(&Value::Int(1 << 40), &at("size")).is_err(), "too large for its type");
    }

    #[test]
    fn a_declared_struct_reads_from_a_map() {
        let map = |entries: Vec<(&str, Value)>| Value::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let i: Inner = from_map(&map(vec![("rate", Value::Float(0.1)), ("n", Value::Unit)]), &at("inner")).unwrap();
        assert_eq!(i, Inner { rate: 0.1, count: 3 });
        let e = from_map::<Inner>(&map(vec![("rat", Value::Int(1))]), &at("inner")).unwrap_err().to_string();
        assert_eq!(e, "unknown inner option `rat`; known options: rate, n");
        let e = from_map::<Inner>(&Value::Int(1), &at("inner")).unwrap_err().to_string();
        assert_eq!(e, "f option `inner` must be a map #{ rate, n }");
    }

    #[test]
    fn values_print_as_scripts_do() {
        let shown: Vec<String> = [Value::Float(1.0), Value::Float(1e-7), Value::Float(2.5), Value::List(vec![Value::Int(1), Value::Bool(true)])]
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(shown, ["1.0", "1e-7", "2.5", "[1, true]"]);
    }
}
