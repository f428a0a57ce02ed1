//! Script functions for the run itself: params, seed, metrics, the run folder.
use super::args::{from_anyhow, script_err, to_f64, Opts, OrScript, RhaiResult};
use super::ctx::ScriptCtx;
use crate::reg;
use crate::track::Goal;
use rhai::{Dynamic, Engine, Map};
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
        "Appends `{kind: metric, name, step, value}` to the run's metrics.jsonl; ranked in comparisons when the name is a built-in metric or loss.",
        move |name: &str, value: Dynamic| log_metric(&c, name, value, Map::new())
    );
    let c = ctx.clone();
    reg!(
        engine,
        "log_metric",
        ["name: String", "value: f64", "options: Map", "()"],
        "log_metric with #{ goal: \"max\" } (or \"min\"): which way the metric is better, for comparisons of runs.",
        move |name: &str, value: Dynamic, o: Map| log_metric(&c, name, value, o)
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

/// `log_metric(name, value, #{ goal })`: the value in metrics.jsonl, its goal in run.toml
/// (given, or the definition of a built-in metric or loss of that name).
fn log_metric(c: &ScriptCtx, name: &str, value: Dynamic, o: Map) -> RhaiResult<()> {
    let v = to_f64(&value, "log_metric value")?;
    let mut o = Opts::new(&super::options::LOG_METRIC, o);
    let goal = o.opt_string("goal")?.map(|g| g.parse::<Goal>()).transpose().map_err(script_err)?;
    o.finish()?;
    let Some(s) = &c.session else { return Err(script_err("log_metric needs a run")) };
    if let Some(g) = goal.or_else(|| crate::learn::metrics::defined_goal(name)) {
        s.note_goal(name, g).map_err(from_anyhow)?;
    }
    s.metrics.log_metric(name, v).map_err(from_anyhow)
}
