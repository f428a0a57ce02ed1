//! Script functions for the run itself: params, seed, metrics, the run folder.
use super::args::{from_anyhow, script_err, to_f64, OrScript, RhaiResult};
use super::ctx::ScriptCtx;
use crate::reg;
use rhai::{Dynamic, Engine};
use std::rc::Rc;

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(
        engine,
        "param",
        ["name: String", "default: Dynamic", "Dynamic"],
        "A tunable value: `--set name=value`, else `--config` file, else `default`; typed like the default.",
        move |name: &str, default: Dynamic| -> RhaiResult<Dynamic> {
            let (value, p) = c.inputs.resolve(name, &default).or_script()?;
            if let Some(s) = &c.session {
                s.set_param(name, p).or_script()?;
            }
            Ok(value)
        }
    );
    let c = ctx.clone();
    reg!(engine, "seed", ["i64"], "The run's seed (`--seed`, default 42); every random choice derives from it.", move || c.seed as i64);
    let c = ctx.clone();
    reg!(engine, "device", ["String"], "The compute device of this run: `cpu` or `cuda:N`.", move || crate::device::device_name(c.device));
    let c = ctx.clone();
    reg!(
        engine,
        "log_metric",
        ["name: String", "value: f64", "()"],
        "Appends `{kind: metric, name, step, value}` to the run's metrics.jsonl.",
        move |name: &str, value: Dynamic| -> RhaiResult<()> {
            let v = to_f64(&value, "log_metric value")?;
            match &c.session {
                Some(s) => s.metrics.log_metric(name, v).map_err(from_anyhow),
                None => Err(script_err("log_metric needs a run")),
            }
        }
    );
    reg!(
        engine,
        "fixed",
        ["x: f64", "decimals: i64", "String"],
        "The number with a fixed count of decimals: fixed(0.91234, 4) == \"0.9123\".",
        |x: Dynamic, d: Dynamic| -> RhaiResult<String> {
            let d = super::args::to_usize(&d, "decimals")?;
            Ok(format!("{:.*}", d, to_f64(&x, "x")?))
        }
    );
    let c = ctx.clone();
    reg!(engine, "run_dir", ["String"], "The folder of this run, where artifacts belong.", move || -> RhaiResult<String> {
        match &c.session {
            Some(s) => Ok(s.dir.display().to_string()),
            None => Err(script_err("run_dir needs a run")),
        }
    });
}
