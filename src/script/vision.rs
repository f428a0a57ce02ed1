//! Script bindings for fastai's one-call learner and its picture of results:
//! `vision_learner(dls, arch, #{ ... })` (the body's, the head's and the learner's options
//! in one map) and `learn.show_results(path)`.
use super::args::{script_err, Opts, OrScript, RhaiResult};
use super::ctx::ScriptCtx;
use super::data::ScriptDataLoaders;
use super::learn::{learner_options, ScriptLearner};
use super::model::BodyAsk;
use super::options;
use crate::learn::vision::{check_stats, vision_learner, VisionOptions};
use crate::model::head::HeadSpec;
use crate::model::registry;
use crate::reg;
use rhai::{Dynamic, Engine, Map, NativeCallContext};
use std::rc::Rc;

fn vision(call: &NativeCallContext, ctx: &Rc<ScriptCtx>, dls: Dynamic, arch: &str, o: Map) -> RhaiResult<ScriptLearner> {
    let Some(dls) = dls.clone().try_cast::<ScriptDataLoaders>() else {
        return Err(script_err(format!("vision_learner needs DataLoaders (from image_loaders or pair_loaders), got {}", dls.type_name())));
    };
    let mut o = Opts::new(&options::VISION_LEARNER, o);
    let ask = BodyAsk::read(&mut o)?;
    let mut head = HeadSpec::default();
    o.fill(&mut head)?;
    let (learner, parts) = learner_options(call, ctx, &mut o)?;
    o.finish()?;
    let pretrained = ask.pretrained();
    // Refused before any weights are looked for or downloaded.
    if pretrained {
        check_stats(&dls.0, registry::arch(arch).or_script()?).or_script()?;
    }
    let body = ask.body(ctx, arch)?;
    let opts = VisionOptions { head, pretrained, learner };
    parts.wrap(vision_learner(dls.0.clone(), &body, opts, ctx.run_out(), ctx.seed).or_script()?)
}

fn show_results(ctx: &ScriptCtx, l: &ScriptLearner, path: &str, o: Map) -> RhaiResult<String> {
    let mut o = Opts::new(&options::SHOW_RESULTS, o);
    let max_n = o.usize("max_n")?;
    o.finish()?;
    let p = ctx.output_path(path);
    l.get()?.show_results(&p, max_n).or_script()?;
    Ok(p.display().to_string())
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(
        engine,
        "vision_learner",
        ["dls: DataLoaders", "arch: String", "Learner"],
        "fastai's vision_learner: the arch's pretrained body (cut and splitter from the registry), fastai's head sized from the loaders (n_out = dls.vocab.len()); pair loaders get the tutorial's Siamese model. Loaders must normalise with the arch's statistics (imagenet) unless pretrained: false.",
        move |call: NativeCallContext, d: Dynamic, arch: &str| vision(&call, &c, d, arch, Map::new())
    );
    let c = ctx.clone();
    reg!(
        engine,
        "vision_learner",
        ["dls: DataLoaders", "arch: String", "options: Map", "Learner"],
        "vision_learner with the body's options (cut, weights, pretrained), the head's (lin_ftrs, ps, ...) and the learner's (metrics, loss, splitter, ...). Options: see Options below.",
        move |call: NativeCallContext, d: Dynamic, arch: &str, o: Map| vision(&call, &c, d, arch, o)
    );
    let c = ctx.clone();
    reg!(
        engine,
        "show_results",
        ["learn: Learner", "path: String", "String"],
        "fastai's show_results: the first 9 validation items titled actual / predicted (probability), green when right, red when wrong, as a PNG (a relative path lands in the run folder); returns the path.",
        move |l: &mut ScriptLearner, path: &str| show_results(&c, l, path, Map::new())
    );
    let c = ctx.clone();
    reg!(
        engine,
        "show_results",
        ["learn: Learner", "path: String", "options: Map", "String"],
        "show_results with `max_n` (see Options below).",
        move |l: &mut ScriptLearner, path: &str, o: Map| show_results(&c, l, path, o)
    );
}
