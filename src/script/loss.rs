//! A script closure `|preds, targets| ...` as a learner's loss (fastai takes any callable
//! as `loss_func`): the learner calls it for every batch with the outputs and targets as
//! Tensors, and backward runs on the Tensor it returns. It runs on the script's engine in
//! the context of the `learner(...)` call that made it (the script's functions and
//! imports); its own error is kept whole so that it is reported at the closure's line.
use super::args::script_err;
use super::ctx::ScriptCtx;
use super::tensor_value::ScriptTensor;
use crate::learn::loss::CustomLoss;
use rhai::{Dynamic, EvalAltResult, FnPtr, NativeCallContext};
use std::cell::RefCell;
use std::rc::Rc;
use tch::Tensor;

/// Where a script closure called by the learner leaves its error for the script call
/// that started the learner's work (fit, validate, ...) to report.
pub type ClosureError = Rc<RefCell<Option<Box<EvalAltResult>>>>;

/// The closure's name for messages: a named function's own, else `closure`.
fn name_of(f: &FnPtr) -> String {
    if f.fn_name().starts_with("anon$") {
        "closure".into()
    } else {
        f.fn_name().to_string()
    }
}

/// The custom loss that calls `f` (given to `learner` at `call`), leaving its errors in `error`.
// The stored call context is Rhai's "volatile" (not deprecated) API, flagged as deprecated.
#[allow(deprecated)]
pub fn closure_loss(call: &NativeCallContext, script: &Rc<ScriptCtx>, f: FnPtr, error: &ClosureError) -> CustomLoss {
    let (name, at, script, error) = (name_of(&f), call.store_data(), script.clone(), error.clone());
    CustomLoss::new(name.clone(), move |out: &Tensor, y: &Tensor| {
        let fail = |e: Box<EvalAltResult>| {
            let what = anyhow::anyhow!("loss `{name}` failed: {e}");
            *error.borrow_mut() = Some(e);
            what
        };
        let engine = script.engine().ok_or_else(|| anyhow::anyhow!("loss `{name}`: the script that defined it is no longer running"))?;
        let args = (ScriptTensor::new(out.shallow_clone()), ScriptTensor::new(y.shallow_clone()));
        let v = f.call_within_context::<Dynamic>(&at.create_context(&engine), args).map_err(fail)?;
        let loss = v.read_lock::<ScriptTensor>().map(|t| t.0.shallow_clone());
        loss.ok_or_else(|| fail(script_err(not_a_tensor(&name, &v))))
    })
}

/// Why a closure's result cannot be a loss.
fn not_a_tensor(name: &str, v: &Dynamic) -> String {
    let what = if v.is_float() || v.is_int() { format!("the number {v}") } else { format!("a {}", v.type_name()) };
    format!(
        "loss `{name}` returned {what}, not a Tensor: a loss must stay a Tensor computed from preds so that backward can run (e.g. (preds - targets).pow(2).mean(), without to_float())"
    )
}
