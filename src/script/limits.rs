//! What one script may use: Rhai counts its operations and the sizes of its arrays, strings
//! and object maps, so that `a.pad(1000000000, 0)` or a string doubled forty times stops at
//! its line instead of eating the machine. The message names the limit and the flag that
//! moves it. (Tensors are not Rhai values; `torch_errors::check_alloc` guards them.)
use super::host::DEFAULT_MAX_OPERATIONS;
use rhai::{Engine, EvalAltResult, Position};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub operations: u64,
    /// Elements of an array, those of nested arrays counted (0: no limit).
    pub array_size: usize,
    /// Bytes of a string, or of all strings inside one array or map (0: no limit).
    pub string_size: usize,
    /// Entries of an object map, nested ones counted (0: no limit).
    pub map_size: usize,
}

/// Far above what experiment scripts hold (file lists of a few hundred thousand paths,
/// metric histories), far below what hurts a machine: 10 M elements are about 160 MB.
impl Default for Limits {
    fn default() -> Limits {
        Limits { operations: DEFAULT_MAX_OPERATIONS, array_size: 10_000_000, string_size: 100_000_000, map_size: 1_000_000 }
    }
}

impl Limits {
    pub fn apply(&self, engine: &mut Engine) {
        engine.set_max_operations(self.operations);
        engine.set_max_array_size(self.array_size);
        engine.set_max_string_size(self.string_size);
        engine.set_max_map_size(self.map_size);
        // Rhai checks a map's size when it is passed or assigned as a whole, not when
        // `m[key] = v` adds a key: a loop of those would grow it unchecked. So a map variable
        // is also checked (its length, O(1)) each time the script reads it.
        let max_map = self.map_size;
        #[allow(deprecated)] // `on_var` is stable but marked volatile
        engine.on_var(move |name, _, ctx| {
            let too_big = ctx.scope().get(name).and_then(|v| v.as_map_ref().ok().map(|m| m.len())).is_some_and(|n| max_map > 0 && n > max_map);
            match too_big {
                true => Err(EvalAltResult::ErrorDataTooLarge("Size of object map".into(), Position::NONE).into()),
                false => Ok(None),
            }
        });
    }

    /// The message for an error that is one of these limits being hit, naming the flag.
    pub fn explain(&self, err: &EvalAltResult) -> Option<String> {
        let (what, limit, unit, flag) = match err {
            EvalAltResult::ErrorTooManyOperations(..) => {
                ("the script ran too many operations", self.operations as usize, "operations", "--max-operations")
            }
            EvalAltResult::ErrorDataTooLarge(kind, ..) if kind.contains("string") => {
                ("a string grew too large", self.string_size, "bytes", "--max-string-size")
            }
            EvalAltResult::ErrorDataTooLarge(kind, ..) if kind.contains("map") => {
                ("an object map grew too large", self.map_size, "entries", "--max-map-size")
            }
            EvalAltResult::ErrorDataTooLarge(..) => ("an array grew too large", self.array_size, "elements", "--max-array-size"),
            _ => return None,
        };
        Some(format!("{what}: over the limit of {limit} {unit} (raise it with {flag} N; 0 turns it off)"))
    }
}
