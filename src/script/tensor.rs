//! The script's tensors: seeded random ones, reductions, elementwise maths, comparisons,
//! indexing and reshaping, enough to write a metric or a loss `|preds, targets| ...` as
//! in PyTorch. Operations keep the autograd graph (a loss closure's result is what
//! backward runs on); reductions return 0-dim tensors, which read as numbers wherever a
//! number is taken (`to_float()`, `fixed`, comparisons, printing). Every libtorch call is
//! a fallible one: a bad shape or kind is a script error at its line.
use super::args::{script_err, to_f64, to_sizes, RhaiResult};
use super::tensor_value::tensor_number;
pub use super::tensor_value::ScriptTensor;
use crate::reg;
use crate::torch_errors::{check_alloc, short};
use rhai::{Array, Dynamic, Engine, NativeCallContext};
use tch::{Device, Kind, Scalar, TchError, Tensor};

type TensorResult = RhaiResult<ScriptTensor>;

fn shape(v: &Array) -> RhaiResult<Vec<i64>> {
    to_sizes(&Dynamic::from_array(v.clone()), "shape")
}

/// A libtorch result as a script result: `op: what went wrong`, at the calling line.
fn torch<T>(op: &str, r: Result<T, TchError>) -> RhaiResult<T> {
    r.map_err(|e| script_err(short(op, &e)))
}

fn new(op: &str, r: Result<Tensor, TchError>) -> TensorResult {
    torch(op, r).map(ScriptTensor::new)
}

/// A tensor constructor of tch's: shape and options in, tensor or error out.
type Make = fn(Vec<i64>, (Kind, Device)) -> Result<Tensor, TchError>;

/// A new float tensor of `shape`, refused when it does not fit in memory.
fn new_tensor(op: &str, s: &Array, make: Make) -> TensorResult {
    let shape = shape(s)?;
    check_alloc(&shape, Kind::Float).map_err(|e| script_err(format!("{op}: {e}")))?;
    new(op, make(shape, (Kind::Float, Device::Cpu)))
}

/// The kind a reduction or softmax computes in: the tensor's own when it is floating,
/// float32 for integers and booleans (`(a == b).mean()` is a share).
fn float_kind(t: &Tensor) -> Kind {
    if t.is_floating_point() {
        t.kind()
    } else {
        Kind::Float
    }
}

/// A number operand, kept an integer when written as one (`long + 1` stays int64), as
/// PyTorch treats Python numbers.
fn scalar(v: &Dynamic) -> RhaiResult<Scalar> {
    match v.as_int() {
        Ok(i) => Ok(Scalar::int(i)),
        Err(_) => Ok(Scalar::float(to_f64(v, "operand")?)),
    }
}

/// Dimensions given as integers (one -1 may be inferred by libtorch).
fn dims(op: &str, s: &Array) -> RhaiResult<Vec<i64>> {
    s.iter().map(|d| d.as_int().map_err(|_| script_err(format!("{op}: dimensions must be integers, got {d}")))).collect()
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

/// `f(a, b)` on the device both go to, refused when the broadcast result does not fit.
fn pair(op: &str, a: &Tensor, b: &Tensor, f: impl Fn(&Tensor, &Tensor) -> Result<Tensor, TchError>) -> TensorResult {
    if let Some(out) = broadcast(&a.size(), &b.size()) {
        check_alloc(&out, a.kind()).map_err(|e| script_err(format!("`{op}`: {e}")))?;
    }
    let what = format!("`{op}` of shapes {:?} and {:?}", a.size(), b.size());
    let d = common_device(a.device(), b.device());
    let on = |t: &Tensor| torch(&what, t.f_to_device_(d, t.kind(), false, false));
    new(&what, f(&on(a)?, &on(b)?))
}

/// The binary operators with tensors and numbers on either side.
#[derive(Clone, Copy)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

impl Arith {
    const ALL: [(&'static str, Arith); 6] =
        [("+", Arith::Add), ("-", Arith::Sub), ("*", Arith::Mul), ("/", Arith::Div), ("**", Arith::Pow), ("pow", Arith::Pow)];

    fn tensors(self, a: &Tensor, b: &Tensor) -> Result<Tensor, TchError> {
        match self {
            Arith::Add => a.f_add(b),
            Arith::Sub => a.f_sub(b),
            Arith::Mul => a.f_mul(b),
            Arith::Div => a.f_div(b),
            Arith::Pow => a.f_pow(b),
        }
    }

    fn tensor_number(self, a: &Tensor, b: Scalar) -> Result<Tensor, TchError> {
        match self {
            Arith::Add => a.f_add_scalar(b),
            Arith::Sub => a.f_sub_scalar(b),
            Arith::Mul => a.f_mul_scalar(b),
            Arith::Div => a.f_div_scalar(b),
            Arith::Pow => a.f_pow_tensor_scalar(b),
        }
    }

    /// `a op b` with the number on the left, as PyTorch's reflected operators compute it.
    fn number_tensor(self, a: Scalar, b: &Tensor) -> Result<Tensor, TchError> {
        match self {
            Arith::Add => b.f_add_scalar(a),
            Arith::Sub => b.f_rsub_scalar(a),
            Arith::Mul => b.f_mul_scalar(a),
            Arith::Div => b.f_reciprocal()?.f_mul_scalar(a),
            Arith::Pow => Tensor::f_pow_scalar(a, b),
        }
    }
}

/// The comparisons, elementwise to a bool tensor.
#[derive(Clone, Copy)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    const ALL: [(&'static str, Cmp); 6] = [("==", Cmp::Eq), ("!=", Cmp::Ne), ("<", Cmp::Lt), ("<=", Cmp::Le), (">", Cmp::Gt), (">=", Cmp::Ge)];

    fn tensors(self, a: &Tensor, b: &Tensor) -> Result<Tensor, TchError> {
        match self {
            Cmp::Eq => a.f_eq_tensor(b),
            Cmp::Ne => a.f_ne_tensor(b),
            Cmp::Lt => a.f_lt_tensor(b),
            Cmp::Le => a.f_le_tensor(b),
            Cmp::Gt => a.f_gt_tensor(b),
            Cmp::Ge => a.f_ge_tensor(b),
        }
    }

    fn tensor_number(self, a: &Tensor, b: Scalar) -> Result<Tensor, TchError> {
        match self {
            Cmp::Eq => a.f_eq(b),
            Cmp::Ne => a.f_ne(b),
            Cmp::Lt => a.f_lt(b),
            Cmp::Le => a.f_le(b),
            Cmp::Gt => a.f_gt(b),
            Cmp::Ge => a.f_ge(b),
        }
    }

    /// The same comparison with its sides swapped (`1 < t` is `t > 1`).
    fn flipped(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            same => same,
        }
    }
}

/// A comparison's result: a bool when it is 0-dim (so `if t.mean() > 0.5` works), else
/// the elementwise bool tensor (`(p.argmax(1) == t).float().mean()`).
fn comparison(r: ScriptTensor) -> Dynamic {
    match tensor_number(&r.0).filter(|_| r.0.dim() == 0) {
        Some(b) => b,
        None => Dynamic::from(r),
    }
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<ScriptTensor>("Tensor");
    register_making(engine);
    register_reductions(engine);
    register_elementwise(engine);
    register_shaping(engine);
    register_reading(engine);
    register_arithmetic(engine);
    register_comparisons(engine);
}

/// New tensors: seeded random, from numbers.
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
    reg!(
        engine,
        "tensor",
        ["values: Array", "Tensor"],
        "A 1-d float tensor from numbers (`.long()` for class indices).",
        |v: Array| -> TensorResult {
            let xs: Vec<f32> = v.iter().map(|x| to_f64(x, "tensor value").map(|f| f as f32)).collect::<RhaiResult<_>>()?;
            new("tensor", Tensor::f_from_slice(&xs))
        }
    );
}

/// Reductions, whole (to a 0-dim tensor) and along one dimension.
fn register_reductions(engine: &mut Engine) {
    reg!(
        engine,
        "mean",
        ["t: Tensor", "Tensor"],
        "Mean of all elements, a 0-dim tensor (integers and booleans: in float32).",
        |t: &mut ScriptTensor| new("mean", t.0.f_mean(float_kind(&t.0)))
    );
    reg!(
        engine,
        "mean",
        ["t: Tensor", "dim: i64", "Tensor"],
        "Mean along dimension dim (negative counts from the end), which goes away.",
        |t: &mut ScriptTensor, d: i64| new("mean", t.0.f_mean_dim(d, false, float_kind(&t.0)))
    );
    reg!(
        engine,
        "mean",
        ["t: Tensor", "dim: i64", "keepdim: bool", "Tensor"],
        "Mean along dim, kept as size 1 when keepdim.",
        |t: &mut ScriptTensor, d: i64, keep: bool| new("mean", t.0.f_mean_dim(d, keep, float_kind(&t.0)))
    );
    reg!(engine, "sum", ["t: Tensor", "Tensor"], "Sum of all elements, a 0-dim tensor.", |t: &mut ScriptTensor| new("sum", t.0.f_sum(None)));
    reg!(engine, "sum", ["t: Tensor", "dim: i64", "Tensor"], "Sum along dimension dim, which goes away.", |t: &mut ScriptTensor, d: i64| new(
        "sum",
        t.0.f_sum_dim_intlist(d, false, None)
    ));
    reg!(
        engine,
        "sum",
        ["t: Tensor", "dim: i64", "keepdim: bool", "Tensor"],
        "Sum along dim, kept as size 1 when keepdim.",
        |t: &mut ScriptTensor, d: i64, keep: bool| new("sum", t.0.f_sum_dim_intlist(d, keep, None))
    );
    reg!(engine, "std", ["t: Tensor", "Tensor"], "Standard deviation of all elements (unbiased), a 0-dim tensor.", |t: &mut ScriptTensor| new(
        "std",
        t.0.f_to_kind(float_kind(&t.0)).and_then(|f| f.f_std(true))
    ));
    reg!(engine, "max", ["t: Tensor", "Tensor"], "Largest element, a 0-dim tensor.", |t: &mut ScriptTensor| new("max", t.0.f_max()));
    reg!(engine, "min", ["t: Tensor", "Tensor"], "Smallest element, a 0-dim tensor.", |t: &mut ScriptTensor| new("min", t.0.f_min()));
    reg!(
        engine,
        "argmax",
        ["t: Tensor", "i64"],
        "Index of the largest element of the flattened tensor (first of equals), as an integer (to index a vocab).",
        |t: &mut ScriptTensor| { torch("argmax", t.0.f_argmax(None, false).and_then(|i| i.f_int64_value(&[]))) }
    );
    reg!(
        engine,
        "argmax",
        ["t: Tensor", "dim: i64", "Tensor"],
        "Indices of the largest elements along dim, an int64 tensor (`preds.argmax(1)`: each row's class).",
        |t: &mut ScriptTensor, d: i64| new("argmax", t.0.f_argmax(d, false))
    );
}

/// A `t.name()` that maps each element (or changes the kind), keeping the graph.
macro_rules! unary {
    ($engine:expr, $name:literal, $doc:literal, $f:expr) => {
        reg!($engine, $name, ["t: Tensor", "Tensor"], $doc, |t: &mut ScriptTensor| new($name, $f(&*t.0)))
    };
}

/// Elementwise maths, softmaxes, clamping, kinds.
fn register_elementwise(engine: &mut Engine) {
    unary!(engine, "sigmoid", "1 / (1 + exp(-t)), elementwise.", Tensor::f_sigmoid);
    unary!(engine, "exp", "e^t, elementwise.", Tensor::f_exp);
    unary!(engine, "log", "Natural logarithm, elementwise.", Tensor::f_log);
    unary!(engine, "abs", "Absolute value, elementwise.", Tensor::f_abs);
    unary!(engine, "sqrt", "Square root, elementwise.", Tensor::f_sqrt);
    unary!(engine, "float", "As float32 (PyTorch's .float()).", |t: &Tensor| t.f_to_kind(Kind::Float));
    unary!(engine, "long", "As int64 (PyTorch's .long(), for class indices).", |t: &Tensor| t.f_to_kind(Kind::Int64));
    unary!(engine, "detach", "The same values cut from the autograd graph.", Tensor::f_detach);
    reg!(engine, "-", ["t: Tensor", "Tensor"], "Negation, elementwise.", |t: ScriptTensor| new("-", t.0.f_neg()));
    reg!(engine, "softmax", ["t: Tensor", "dim: i64", "Tensor"], "Softmax along dim (rows sum to 1).", |t: &mut ScriptTensor, d: i64| new(
        "softmax",
        t.0.f_softmax(d, float_kind(&t.0))
    ));
    reg!(
        engine,
        "log_softmax",
        ["t: Tensor", "dim: i64", "Tensor"],
        "Log of the softmax along dim, computed stably (for a cross-entropy: -t.log_softmax(1).gather(1, y.unsqueeze(1)).mean()).",
        |t: &mut ScriptTensor, d: i64| new("log_softmax", t.0.f_log_softmax(d, float_kind(&t.0)))
    );
    reg!(engine, "clamp", ["t: Tensor", "min: f64", "max: f64", "Tensor"], "Each element limited to [min, max].", |t: &mut ScriptTensor,
                                                                                                                   lo: Dynamic,
                                                                                                                   hi: Dynamic|
     -> TensorResult {
        new("clamp", t.0.f_clamp(scalar(&lo)?, scalar(&hi)?))
    });
    reg!(engine, "clamp_min", ["t: Tensor", "min: f64", "Tensor"], "Each element at least min.", |t: &mut ScriptTensor,
                                                                                                  lo: Dynamic|
     -> TensorResult {
        new("clamp_min", t.0.f_clamp_min(scalar(&lo)?))
    });
    reg!(engine, "clamp_max", ["t: Tensor", "max: f64", "Tensor"], "Each element at most max.", |t: &mut ScriptTensor,
                                                                                                 hi: Dynamic|
     -> TensorResult {
        new("clamp_max", t.0.f_clamp_max(scalar(&hi)?))
    });
}

/// Reshaping, gathering and one-hot encoding.
fn register_shaping(engine: &mut Engine) {
    reg!(
        engine,
        "reshape",
        ["t: Tensor", "shape: Array", "Tensor"],
        "The same elements in a new shape (one -1 is inferred).",
        |t: &mut ScriptTensor, s: Array| -> TensorResult { new("reshape", t.0.f_reshape(dims("reshape", &s)?)) }
    );
    reg!(
        engine,
        "view",
        ["t: Tensor", "shape: Array", "Tensor"],
        "PyTorch's view: reshape sharing the elements (the tensor must be contiguous).",
        |t: &mut ScriptTensor, s: Array| -> TensorResult { new("view", t.0.f_view(dims("view", &s)?.as_slice())) }
    );
    unary!(engine, "squeeze", "Without its dimensions of size 1.", Tensor::f_squeeze);
    unary!(engine, "flatten", "All elements in one dimension.", |t: &Tensor| t.f_flatten(0, -1));
    reg!(engine, "squeeze", ["t: Tensor", "dim: i64", "Tensor"], "Without dimension dim when its size is 1.", |t: &mut ScriptTensor, d: i64| new(
        "squeeze",
        t.0.f_squeeze_dim(d)
    ));
    reg!(
        engine,
        "unsqueeze",
        ["t: Tensor", "dim: i64", "Tensor"],
        "With a new dimension of size 1 at dim ([N] -> [N, 1] at 1).",
        |t: &mut ScriptTensor, d: i64| new("unsqueeze", t.0.f_unsqueeze(d))
    );
    reg!(
        engine,
        "gather",
        ["t: Tensor", "dim: i64", "index: Tensor", "Tensor"],
        "PyTorch's gather: out[i][j] = t[i][index[i][j]] for dim 1; index is int64 (targets are; `.long()` otherwise).",
        |t: &mut ScriptTensor, d: i64, index: ScriptTensor| -> TensorResult {
            let index = torch("gather", index.0.f_to_device(t.0.device()))?;
            new("gather", t.0.f_gather(d, &index, false))
        }
    );
    reg!(
        engine,
        "one_hot",
        ["t: Tensor", "num_classes: i64", "Tensor"],
        "Int64 class indices [N] as one-hot rows [N, num_classes] (int64; `.float()` for arithmetic).",
        |t: &mut ScriptTensor, n: i64| new("one_hot", t.0.f_one_hot(n))
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
        ["t: Tensor", "i: i64", "Tensor"],
        "`t[i]`: row i (negative counts from the end); a 0-dim tensor when t is 1-d.",
        |t: &mut ScriptTensor, i: i64| -> TensorResult {
            let n = t.0.size().first().copied().ok_or_else(|| script_err("a 0-d tensor cannot be indexed (use it as a number)"))?;
            let at = if i < 0 { n + i } else { i };
            if !(0..n).contains(&at) {
                return Err(script_err(format!("index {i} is out of range for a tensor of {n} rows")));
            }
            new("index", t.0.f_get(at))
        }
    );
    reg!(engine, "shape", ["t: Tensor", "Array"], "The tensor's dimensions (also `t.shape`).", |t: &mut ScriptTensor| -> Array {
        t.0.size().into_iter().map(Dynamic::from).collect()
    });
    reg!(engine, "get$shape", ["t: Tensor", "Array"], "`t.shape`: the tensor's dimensions.", |t: &mut ScriptTensor| -> Array {
        t.0.size().into_iter().map(Dynamic::from).collect()
    });
    reg!(
        engine,
        "to_float",
        ["t: Tensor", "f64"],
        "The number a one-element tensor holds (PyTorch's .item()).",
        |t: &mut ScriptTensor| -> RhaiResult<f64> { one_number(&t.0, "to_float").and_then(|n| to_f64(&n, "to_float")) }
    );
    reg!(
        engine,
        "to_int",
        ["t: Tensor", "i64"],
        "The integer a one-element tensor holds (rounded toward zero).",
        |t: &mut ScriptTensor| -> RhaiResult<i64> {
            let n = one_number(&t.0, "to_int")?;
            Ok(n.as_int().unwrap_or_else(|_| to_f64(&n, "to_int").map_or(0, |f| f as i64)))
        }
    );
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
    reg!(
        engine,
        "to_string",
        ["t: Tensor", "String"],
        "For print: a 0-dim tensor as its number, others as shape and values.",
        |t: &mut ScriptTensor| match tensor_number(&t.0).filter(|_| t.0.dim() == 0) {
            Some(n) => n.to_string(),
            None => format!("Tensor{:?}\n{}", t.0.size(), t.0),
        }
    );
}

/// The number a one-element tensor holds, or an error that says its shape.
fn one_number(t: &Tensor, op: &str) -> RhaiResult<Dynamic> {
    tensor_number(t).ok_or_else(|| script_err(format!("{op}: the tensor has shape {:?}, not one element (reduce it first, e.g. .mean())", t.size())))
}

/// Elementwise arithmetic (`+ - * / **`, `pow`) with tensors and numbers on either side.
fn register_arithmetic(engine: &mut Engine) {
    for (op, a) in Arith::ALL {
        reg!(
            engine,
            op,
            ["a: Tensor", "b: Tensor", "Tensor"],
            "Elementwise arithmetic (+ - * / **, pow) of two tensors, broadcast.",
            move |x: ScriptTensor, y: ScriptTensor| { pair(op, &x.0, &y.0, |x, y| a.tensors(x, y)) }
        );
        reg!(
            engine,
            op,
            ["a: Tensor", "b: f64", "Tensor"],
            "Elementwise arithmetic with a number (an integer keeps an integer tensor integer).",
            move |x: ScriptTensor, y: Dynamic| -> TensorResult { new(&format!("`{op}`"), a.tensor_number(&x.0, scalar(&y)?)) }
        );
        reg!(
            engine,
            op,
            ["a: f64", "b: Tensor", "Tensor"],
            "Arithmetic with the number on the left (1.0 - t, 2 * t).",
            move |x: f64, y: ScriptTensor| new(&format!("`{op}`"), a.number_tensor(Scalar::float(x), &y.0))
        );
        reg!(engine, op, ["a: i64", "b: Tensor", "Tensor"], "Arithmetic with an integer on the left.", move |x: i64, y: ScriptTensor| new(
            &format!("`{op}`"),
            a.number_tensor(Scalar::int(x), &y.0)
        ));
    }
}

/// Comparisons (`== != < <= > >=`): a bool tensor, or a bool for 0-dim operands.
fn register_comparisons(engine: &mut Engine) {
    for (op, c) in Cmp::ALL {
        reg!(
            engine,
            op,
            ["a: Tensor", "b: Tensor", "Dynamic"],
            "Elementwise comparison: a bool tensor (`.float()` to count), or a bool when both are 0-dim (`if loss < 0.1`).",
            move |x: ScriptTensor, y: ScriptTensor| -> RhaiResult<Dynamic> { pair(op, &x.0, &y.0, |x, y| c.tensors(x, y)).map(comparison) }
        );
        reg!(
            engine,
            op,
            ["a: Tensor", "b: f64", "Dynamic"],
            "Elementwise comparison with a number; a bool for a 0-dim tensor (`t.mean() > 0.5`).",
            move |x: ScriptTensor, y: Dynamic| -> RhaiResult<Dynamic> { new(&format!("`{op}`"), c.tensor_number(&x.0, scalar(&y)?)).map(comparison) }
        );
        reg!(engine, op, ["a: f64", "b: Tensor", "Dynamic"], "Comparison with the number on the left.", move |x: f64, y: ScriptTensor| new(
            &format!("`{op}`"),
            c.flipped().tensor_number(&y.0, Scalar::float(x))
        )
        .map(comparison));
        reg!(engine, op, ["a: i64", "b: Tensor", "Dynamic"], "Comparison with an integer on the left.", move |x: i64, y: ScriptTensor| new(
            &format!("`{op}`"),
            c.flipped().tensor_number(&y.0, Scalar::int(x))
        )
        .map(comparison));
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

    #[test]
    fn numbers_on_the_left_compute_as_pytorch_reflects_them() {
        let t = Tensor::from_slice(&[0.5f32, 2.0, 4.0]);
        let v = |r: Result<Tensor, TchError>| Vec::<f32>::try_from(r.unwrap()).unwrap();
        assert_eq!(v(Arith::Sub.number_tensor(Scalar::float(1.0), &t)), [0.5, -1.0, -3.0]);
        assert_eq!(v(Arith::Div.number_tensor(Scalar::int(1), &t)), [2.0, 0.5, 0.25]);
        assert_eq!(v(Arith::Pow.number_tensor(Scalar::int(2), &t))[1..], [4.0, 16.0]);
        let lt = Cmp::Lt.flipped().tensor_number(&t, Scalar::float(1.0)).unwrap();
        assert_eq!(Vec::<bool>::try_from(lt).unwrap(), [false, true, true], "1 < t is t > 1");
    }

    #[test]
    fn integer_operands_keep_an_integer_tensor_integer() {
        let t = Tensor::from_slice(&[1i64, 2]);
        assert_eq!(Arith::Add.tensor_number(&t, Scalar::int(1)).unwrap().kind(), Kind::Int64);
        assert_eq!(Arith::Mul.tensor_number(&t, Scalar::float(0.5)).unwrap().kind(), Kind::Float);
        assert_eq!(float_kind(&t), Kind::Float);
    }
}
