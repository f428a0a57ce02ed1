//! A small tensor type for scripts: create seeded random tensors, reduce them to numbers.
//! Heavy tensors stay inside the learner; this is for quick checks and custom metrics.
//! Every libtorch call is a fallible one: a bad shape is a script error at its line.
use super::args::{script_err, to_f64, to_sizes, RhaiResult};
use crate::reg;
use crate::torch_errors::{check_alloc, short};
use rhai::{Array, Dynamic, Engine, NativeCallContext};
use std::rc::Rc;
use tch::{Device, Kind, TchError, Tensor};

/// A shared handle: Rhai clones values when passing them, tensors must not be copied.
#[derive(Clone)]
pub struct ScriptTensor(pub Rc<Tensor>);

impl ScriptTensor {
    pub fn new(t: Tensor) -> ScriptTensor {
        ScriptTensor(Rc::new(t))
    }
}

fn shape(v: &Array) -> RhaiResult<Vec<i64>> {
    to_sizes(&Dynamic::from_array(v.clone()), "shape")
}

/// A libtorch result as a script result: `op: what went wrong`, at the calling line.
fn torch<T>(op: &str, r: Result<T, TchError>) -> RhaiResult<T> {
    r.map_err(|e| script_err(short(op, &e)))
}

/// A tensor constructor of tch's: shape and options in, tensor or error out.
type Make = fn(Vec<i64>, (Kind, Device)) -> Result<Tensor, TchError>;

/// A new float tensor of `shape`, refused when it does not fit in memory.
fn new_tensor(op: &str, s: &Array, make: Make) -> RhaiResult<ScriptTensor> {
    let shape = shape(s)?;
    check_alloc(&shape, Kind::Float).map_err(|e| script_err(format!("{op}: {e}")))?;
    torch(op, make(shape, (Kind::Float, Device::Cpu))).map(ScriptTensor::new)
}

/// A reduction to one number, as f64.
fn reduce(op: &str, t: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor, TchError>) -> RhaiResult<f64> {
    torch(op, f(t).and_then(|r| r.f_to_kind(Kind::Double)).and_then(|r| r.f_double_value(&[])))
}

/// The shape two tensors broadcast to (None when they do not: libtorch then says why).
fn broadcast(a: &[i64], b: &[i64]) -> Option<Vec<i64>> {
    let n = a.len().max(b.len());
    let dim = |s: &[i64], i: usize| if i + s.len() >= n { s[i + s.len() - n] } else { 1 };
    (0..n)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y || y == 1 => Some(x),
            (1, y) => Some(y),
            _ => None,
        })
        .collect()
}

/// Where an operation on tensors from devices `a` and `b` runs: tensors a script makes
/// (`tensor`, `randn`) live on the CPU, predictions and metric arguments on the model's
/// device, so the accelerator wins.
fn common_device(a: Device, b: Device) -> Device {
    if a == Device::Cpu {
        b
    } else {
        a
    }
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<ScriptTensor>("Tensor");
    register_making(engine);
    register_reductions(engine);
    register_reading(engine);
    register_arithmetic(engine);
}

/// New tensors: seeded random, from numbers, reshaped.
fn register_making(engine: &mut Engine) {
    reg!(engine, "randn", ["shape: Array", "Tensor"], "Normal(0, 1) random tensor, seeded by the run seed.", |s: Array| new_tensor(
        "randn",
        &s,
        Tensor::f_randn
    ));
    reg!(engine, "rand", ["shape: Array", "Tensor"], "Uniform [0, 1) random tensor, seeded by the run seed.", |s: Array| new_tensor(
        "rand",
        &s,
        Tensor::f_rand
    ));
    reg!(engine, "tensor", ["values: Array", "Tensor"], "A 1-d float tensor from numbers.", |v: Array| -> RhaiResult<ScriptTensor> {
        let xs: Vec<f32> = v.iter().map(|x| to_f64(x, "tensor value").map(|f| f as f32)).collect::<RhaiResult<_>>()?;
        torch("tensor", Tensor::f_from_slice(&xs)).map(ScriptTensor::new)
    });
    reg!(
        engine,
        "reshape",
        ["t: Tensor", "shape: Array", "Tensor"],
        "The same elements in a new shape (one -1 is inferred).",
        |t: &mut ScriptTensor, s: Array| -> RhaiResult<ScriptTensor> {
            let shape: Vec<i64> = s
                .iter()
                .map(|d| d.as_int().map_err(|_| script_err(format!("reshape: dimensions must be integers, got {d}"))))
                .collect::<RhaiResult<_>>()?;
            torch("reshape", t.0.f_reshape(shape)).map(ScriptTensor::new)
        }
    );
}

/// Reductions to one number.
fn register_reductions(engine: &mut Engine) {
    reg!(engine, "mean", ["t: Tensor", "f64"], "Mean of all elements.", |t: &mut ScriptTensor| reduce("mean", &t.0, |t| t.f_mean(Kind::Double)));
    reg!(engine, "sum", ["t: Tensor", "f64"], "Sum of all elements.", |t: &mut ScriptTensor| reduce("sum", &t.0, |t| t.f_sum(Kind::Double)));
    reg!(engine, "std", ["t: Tensor", "f64"], "Standard deviation of all elements (unbiased).", |t: &mut ScriptTensor| reduce("std", &t.0, |t| t
        .f_to_kind(Kind::Double)
        .and_then(|d| d.f_std(true))));
    reg!(engine, "max", ["t: Tensor", "f64"], "Largest element.", |t: &mut ScriptTensor| reduce("max", &t.0, Tensor::f_max));
    reg!(engine, "min", ["t: Tensor", "f64"], "Smallest element.", |t: &mut ScriptTensor| reduce("min", &t.0, Tensor::f_min));
    reg!(
        engine,
        "argmax",
        ["t: Tensor", "i64"],
        "Index of the largest element (of the flattened tensor; first of equals).",
        |t: &mut ScriptTensor| { torch("argmax", t.0.f_argmax(None, false).and_then(|i| i.f_int64_value(&[]))) }
    );
}

/// Shape, indexing and conversion back to script values.
fn register_reading(engine: &mut Engine) {
    reg!(engine, "len", ["t: Tensor", "i64"], "The size of the first dimension (1 for a number).", |t: &mut ScriptTensor| -> i64 {
        t.0.size().first().copied().unwrap_or(1)
    });
    reg!(
        engine,
        "index$get$",
        ["t: Tensor", "i: i64", "Dynamic"],
        "`t[i]`: row i (negative counts from the end); a number when t is 1-d.",
        |t: &mut ScriptTensor, i: i64| -> RhaiResult<Dynamic> {
            let n = t.0.size().first().copied().ok_or_else(|| script_err("a 0-d tensor cannot be indexed (use .max() or .sum())"))?;
            let at = if i < 0 { n + i } else { i };
            if !(0..n).contains(&at) {
                return Err(script_err(format!("index {i} is out of range for a tensor of {n} rows")));
            }
            let row = torch("index", t.0.f_get(at))?;
            Ok(if row.dim() == 0 { Dynamic::from(reduce("index", &row, |r| Ok(r.shallow_clone()))?) } else { Dynamic::from(ScriptTensor::new(row)) })
        }
    );
    reg!(engine, "shape", ["t: Tensor", "Array"], "The tensor's dimensions.", |t: &mut ScriptTensor| -> Array {
        t.0.size().into_iter().map(Dynamic::from).collect()
    });
    reg!(engine, "to_array", ["t: Tensor", "Array"], "All elements as a flat array of floats.", |ctx: NativeCallContext,
                                                                                                 t: &mut ScriptTensor|
     -> RhaiResult<Array> {
        let (n, max) = (t.0.numel(), ctx.engine().max_array_size());
        if max > 0 && n > max {
            return Err(script_err(format!(
                "to_array: the tensor has {n} elements, over the script's array limit of {max} (raise it with --max-array-size N)"
            )));
        }
        let v = torch("to_array", t.0.f_flatten(0, -1).and_then(|f| f.f_to_kind(Kind::Double)).and_then(Vec::<f64>::try_from))?;
        Ok(v.into_iter().map(Dynamic::from).collect())
    });
    reg!(engine, "to_string", ["t: Tensor", "String"], "Shape and values, for print.", |t: &mut ScriptTensor| format!(
        "Tensor{:?}\n{}",
        t.0.size(),
        t.0
    ));
}

/// Elementwise arithmetic with tensors and numbers.
fn register_arithmetic(engine: &mut Engine) {
    for (op, f) in
        [("+", Tensor::f_add as fn(&Tensor, &Tensor) -> Result<Tensor, TchError>), ("-", Tensor::f_sub), ("*", Tensor::f_mul), ("/", Tensor::f_div)]
    {
        reg!(engine, op, ["a: Tensor", "b: Tensor", "Tensor"], "Elementwise arithmetic (+ - * /) of two tensors.", move |a: ScriptTensor,
                                                                                                                         b: ScriptTensor|
              -> RhaiResult<
            ScriptTensor,
        > {
            if let Some(out) = broadcast(&a.0.size(), &b.0.size()) {
                check_alloc(&out, a.0.kind()).map_err(|e| script_err(format!("`{op}`: {e}")))?;
            }
            let what = format!("`{op}` of shapes {:?} and {:?}", a.0.size(), b.0.size());
            let d = common_device(a.0.device(), b.0.device());
            let on = |t: &Tensor| torch(&what, t.f_to_device_(d, t.kind(), false, false));
            torch(&what, f(&on(&a.0)?, &on(&b.0)?)).map(ScriptTensor::new)
        });
        reg!(
            engine,
            op,
            ["a: Tensor", "b: f64", "Tensor"],
            "Elementwise arithmetic (+ - * /) with a number.",
            move |a: ScriptTensor, b: Dynamic| -> RhaiResult<ScriptTensor> {
                let b = Tensor::from(to_f64(&b, "operand")? as f32);
                torch(&format!("`{op}`"), f(&a.0, &b)).map(ScriptTensor::new)
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_operands_go_to_the_accelerator() {
        assert_eq!(common_device(Device::Cpu, Device::Cuda(1)), Device::Cuda(1));
        assert_eq!(common_device(Device::Cuda(0), Device::Cpu), Device::Cuda(0));
        assert_eq!(common_device(Device::Cpu, Device::Cpu), Device::Cpu);
    }

    #[test]
    fn broadcast_shapes_follow_numpy() {
        assert_eq!(broadcast(&[100000, 1], &[1, 100000]), Some(vec![100000, 100000]));
        assert_eq!(broadcast(&[3], &[2, 3]), Some(vec![2, 3]));
        assert_eq!(broadcast(&[2], &[3]), None);
        assert_eq!(broadcast(&[], &[4]), Some(vec![4]));
    }
}
