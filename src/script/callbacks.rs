//! Callbacks written in the script: `after_epoch(|e| ...)` and `after_batch(|b| ...)`
//! closures passed as `cbs: [...]` to a fit or a learner. They read the fit's position and
//! values from their argument map, may `log_metric`, and may end the fit with
//! `cancel_fit()`; an error inside one is reported at the closure's own line.
use super::args::{script_err, RhaiResult};
use crate::learn::callback::{Callback, Cancel};
use crate::learn::Learner;
use crate::reg;
use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext};

/// What `cancel_fit()` throws; a fit's script callback turns it into `Cancel::Fit`.
const CANCEL_FIT: &str = "cancel_fit() was called outside a fit callback";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptEvent {
    AfterBatch,
    AfterEpoch,
}

/// A script closure bound to an event, as scripts hold it.
#[derive(Clone)]
pub struct ScriptCallback {
    pub event: ScriptEvent,
    pub f: FnPtr,
}

/// The callbacks in a `cbs` option: an array of `after_epoch(..)` / `after_batch(..)`.
pub fn script_callbacks(v: &Dynamic) -> RhaiResult<Vec<ScriptCallback>> {
    let list = v.clone().try_cast::<Array>().ok_or_else(|| script_err("cbs must be an array such as [after_epoch(|e| ...)]"))?;
    list.into_iter()
        .map(|c| {
            let t = c.type_name();
            c.try_cast::<ScriptCallback>()
                .ok_or_else(|| script_err(format!("cbs holds callbacks made by after_epoch(|e| ...) or after_batch(|b| ...), got {t}")))
        })
        .collect()
}

/// A script callback running inside one fit, with the call context to run the closure in.
pub struct Running<'a> {
    ctx: &'a NativeCallContext<'a>,
    cb: ScriptCallback,
    /// The closure's own error, kept whole so it can be reported at its line.
    pub error: Option<Box<EvalAltResult>>,
}

impl<'a> Running<'a> {
    pub fn new(ctx: &'a NativeCallContext<'a>, cb: ScriptCallback) -> Running<'a> {
        Running { ctx, cb, error: None }
    }

    fn call(&mut self, arg: Map) -> anyhow::Result<()> {
        match self.cb.f.call_within_context::<Dynamic>(self.ctx, (arg,)) {
            Ok(_) => Ok(()),
            Err(e) if is_cancel(&e) => Err(Cancel::Fit.into()),
            Err(e) => {
                let what = format!("{:?} callback failed: {e}", self.cb.event);
                self.error = Some(e);
                Err(anyhow::anyhow!(what))
            }
        }
    }
}

/// Whether a closure's error is `cancel_fit()`, however deep in its calls.
fn is_cancel(e: &EvalAltResult) -> bool {
    match e {
        EvalAltResult::ErrorRuntime(v, _) => v.clone().into_immutable_string().is_ok_and(|s| s == CANCEL_FIT),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) | EvalAltResult::ErrorInModule(_, inner, _) => is_cancel(inner),
        _ => false,
    }
}

/// The fit's position and current values, as the closure's argument.
fn position(l: &Learner) -> Map {
    let s = &l.state;
    let mut m = Map::new();
    m.insert("fit".into(), (s.fit as i64).into());
    m.insert("epoch".into(), (s.epoch as i64).into());
    m.insert("n_epoch".into(), (s.n_epoch as i64).into());
    m.insert("lr".into(), l.opt.lrs.last().copied().unwrap_or(0.0).into());
    m.insert("smooth_loss".into(), s.smooth_loss.into());
    m
}

impl Callback for Running<'_> {
    fn order(&self) -> i32 {
        80
    }
    /// A script's `after_batch` runs when the batch's loss is read back (one batch late), so
    /// that closures never make the device wait.
    fn after_loss_read(&mut self, l: &mut Learner) -> anyhow::Result<()> {
        let Some(b) = l.state.loss.filter(|_| self.cb.event == ScriptEvent::AfterBatch) else { return Ok(()) };
        let mut m = position(l);
        m.insert("epoch".into(), (b.epoch as i64).into());
        m.insert("lr".into(), b.lr.into());
        m.insert("iter".into(), (b.iter as i64).into());
        m.insert("n_iter".into(), (l.state.n_iter as i64).into());
        m.insert("loss".into(), b.loss.into());
        self.call(m)
    }
    fn after_epoch(&mut self, l: &mut Learner) -> anyhow::Result<()> {
        if self.cb.event != ScriptEvent::AfterEpoch {
            return Ok(());
        }
        let mut m = position(l);
        for (c, v) in l.state.columns.iter().zip(&l.state.values) {
            m.insert(c.as_str().into(), (*v).into());
        }
        // Wall-clock, so not reproducible: for timing scripts, not for metrics.
        m.insert("train_seconds".into(), l.state.train_time.as_secs_f64().into());
        m.insert("data_wait_seconds".into(), l.state.data_wait.as_secs_f64().into());
        self.call(m)
    }
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<ScriptCallback>("Callback");
    reg!(
        engine,
        "after_epoch",
        ["f: FnPtr", "Callback"],
        "A fit callback run after each epoch (for `cbs: [...]`): f gets #{fit, epoch, n_epoch, lr, smooth_loss, train_loss, valid_loss, <metrics>, train_seconds, data_wait_seconds} (the training phase's wall-clock time and its wait for batches).",
        |f: FnPtr| ScriptCallback { event: ScriptEvent::AfterEpoch, f }
    );
    reg!(
        engine,
        "after_batch",
        ["f: FnPtr", "Callback"],
        "A fit callback run for each training batch once its loss is read back (one batch later, the last at the end of the epoch's training, so the device never waits): f gets #{fit, epoch, n_epoch, iter, n_iter, lr, loss, smooth_loss}.",
        |f: FnPtr| ScriptCallback { event: ScriptEvent::AfterBatch, f }
    );
    reg!(engine, "cancel_fit", ["()"], "Inside a fit callback: end the fit after this step (fastai's CancelFitException).", || -> RhaiResult<()> {
        Err(script_err(CANCEL_FIT))
    });
}
