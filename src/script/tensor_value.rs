//! The script's `Tensor` value: a shared handle (Rhai clones values when passing them,
//! tensors must not be copied), and the number a one-element tensor holds. Reductions
//! (`t.mean()`, `t[i]` of a 1-d tensor) return 0-dim tensors that keep their gradient, as
//! PyTorch's do; every function that takes a number reads one of them as that number.
use rhai::Dynamic;
use std::rc::Rc;
use tch::{Kind, Tensor};

#[derive(Clone)]
pub struct ScriptTensor(pub Rc<Tensor>);

impl ScriptTensor {
    pub fn new(t: Tensor) -> ScriptTensor {
        ScriptTensor(Rc::new(t))
    }
}

/// What a one-element tensor holds, as a script value: a bool, an integer for integer
/// kinds, a float otherwise; None for a tensor of any other size.
pub fn tensor_number(t: &Tensor) -> Option<Dynamic> {
    if !t.defined() || t.numel() != 1 {
        return None;
    }
    let t = t.f_flatten(0, -1).ok()?;
    match t.kind() {
        Kind::Bool => t.f_int64_value(&[0]).ok().map(|v| Dynamic::from_bool(v != 0)),
        Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64 => t.f_int64_value(&[0]).ok().map(Dynamic::from_int),
        Kind::Double => t.f_double_value(&[0]).ok().map(Dynamic::from_float),
        // Shown as the shortest decimal of the single-precision value (0.3, not 0.30000001192092896).
        _ => t.f_double_value(&[0]).ok().map(|v| Dynamic::from_float(format!("{}", v as f32).parse().unwrap_or(v))),
    }
}

/// A script value as a number when it is a one-element tensor (None for anything else).
pub fn as_number(v: &Dynamic) -> Option<Dynamic> {
    v.read_lock::<ScriptTensor>().and_then(|t| tensor_number(&t.0))
}
