//! Script bindings for models: body and head specs (a body's weights found and recorded),
//! combined into a classifier or a Siamese model on the run's device; summary, save and load.
use super::args::{script_err, to_i64, to_sizes, to_string, Opts, OrScript, RhaiResult};
use super::ctx::ScriptCtx;
use super::options;
use crate::model::convnet::ConvNetSpec;
use crate::model::head::HeadSpec;
use crate::model::pretrained::{self, Places, Request};
use crate::model::registry::{self, Arch};
use crate::model::{BodySpec, Model, PairHeadSpec, ProtoShape};
use crate::reg;
use rhai::{Dynamic, Engine, Map};
use std::rc::Rc;

#[derive(Clone)]
pub struct ScriptModel(pub Rc<Model>);

/// Where weights are looked for; a run asked to stop ends a download at once.
fn places(ctx: &ScriptCtx) -> Places {
    let stop: fn() -> Option<&'static str> = if ctx.session.is_some() { crate::session::interrupt_signal } else { || None };
    Places { stop, ..Places::from_env() }
}

/// What `weights` and `pretrained` ask a body to start from.
fn weights_request(arch: &Arch, weights: Option<String>, pretrained: Option<Dynamic>) -> RhaiResult<Request> {
    let required = match pretrained {
        None => pretrained::required_by_env(),
        Some(v) if v.as_bool() == Ok(true) => pretrained::required_by_env(),
        Some(v) if v.as_bool() == Ok(false) => {
            if weights.is_some() {
                return Err(script_err("create_body: give `weights` or `pretrained: false`, not both"));
            }
            return Ok(Request::Random { why: "pretrained: false".into() });
        }
        Some(v) if v.clone().into_string().is_ok_and(|s| s == "required") => true,
        Some(v) => return Err(script_err(format!("create_body option `pretrained` must be true, false or \"required\", got {v}"))),
    };
    Ok(match weights {
        Some(w) => Request::parse(arch, &w),
        None => Request::Default { required },
    })
}

/// `create_body`: the weights are found (or downloaded, or random init is the fallback),
/// announced, recorded in run.toml, and for a rerun checked against the recorded run's.
fn body(ctx: &ScriptCtx, name: &str, o: Map) -> RhaiResult<BodySpec> {
    let mut o = Opts::new(&options::CREATE_BODY, o);
    let asked = BodyAsk::read(&mut o)?;
    o.finish()?;
    asked.body(ctx, name)
}

/// What a script asks of a body (`create_body`'s options, also `vision_learner`'s).
pub(crate) struct BodyAsk {
    cut: i64,
    weights: Option<String>,
    pretrained: Option<Dynamic>,
}

impl BodyAsk {
    pub(crate) fn read(o: &mut Opts) -> RhaiResult<BodyAsk> {
        Ok(BodyAsk { cut: o.i64("cut")?, weights: o.opt_string("weights")?, pretrained: o.get("pretrained")? })
    }

    /// Whether pretrained weights were asked for (all but `pretrained: false`), whether
    /// or not they can be had.
    pub(crate) fn pretrained(&self) -> bool {
        self.pretrained.as_ref().and_then(|p| p.as_bool().ok()) != Some(false)
    }

    pub(crate) fn body(self, ctx: &ScriptCtx, name: &str) -> RhaiResult<BodySpec> {
        resolve_body(ctx, name, self.cut, self.weights, self.pretrained)
    }
}

fn resolve_body(ctx: &ScriptCtx, name: &str, cut: i64, weights: Option<String>, pretrained: Option<Dynamic>) -> RhaiResult<BodySpec> {
    let arch = registry::arch(name).or_script()?;
    arch.children_kept(cut).or_script()?;
    let index = ctx.bodies.get();
    ctx.bodies.set(index + 1);
    let recorded = ctx.rerun_weights.as_ref().and_then(|(run, ws)| Some((run, ws.get(index)?)));
    let request = match recorded {
        Some((run, w)) if w.is_random() => Request::Random { why: format!("as {run} did: {}", w.reason.as_deref().unwrap_or("random")) },
        _ => weights_request(arch, weights, pretrained)?,
    };
    let resolved = pretrained::resolve(arch, &request, &places(ctx)).or_script()?;
    for note in &resolved.notes {
        tracing::warn!("{note}");
    }
    if let Some((run, w)) = recorded {
        resolved.record.check_rerun(w, run).or_script()?;
    }
    if let Some(file) = &resolved.file {
        let tag = resolved.record.tag.as_deref().map(|t| format!(" {t}")).unwrap_or_default();
        let place = match resolved.record.source.as_str() {
            "path" => String::new(),
            "downloaded" => "downloaded to ".into(),
            folder => format!("from the {folder}, "),
        };
        eprintln!("{name} weights{tag}: {place}{}", file.display());
    }
    if let Some(session) = &ctx.session {
        session.record_weights(index, resolved.record.clone()).or_script()?;
    }
    BodySpec::arch(name, cut, resolved.file).or_script()
}

fn convnet_spec(o: Map) -> RhaiResult<BodySpec> {
    let mut o = Opts::new(&options::CONVNET, o);
    if o.get("input")?.is_none() {
        return Err(script_err("convnet needs `input: [height, width]`"));
    }
    // Koch et al.'s network unless options say otherwise.
    let mut spec = ConvNetSpec::default();
    o.fill(&mut spec)?;
    o.finish()?;
    spec.check().or_script()?;
    Ok(BodySpec::ConvNet(spec))
}

fn head(nf: Dynamic, n_out: Dynamic, o: Map) -> RhaiResult<HeadSpec> {
    let mut spec = HeadSpec::new(to_i64(&nf, "nf")?, to_i64(&n_out, "n_out")?);
    let mut o = Opts::new(&options::CREATE_HEAD, o);
    o.fill(&mut spec)?;
    o.finish()?;
    spec.check().or_script()?;
    Ok(spec)
}

fn cosine_classifier(ctx: &ScriptCtx, body: BodySpec, head: &str, n_out: Dynamic, o: Map) -> RhaiResult<ScriptModel> {
    if head != "cosine" {
        return Err(script_err(format!("unknown classifier head `{head}`: use \"cosine\", or a create_head(...) for fastai's head")));
    }
    let mut o = Opts::new(&options::CLASSIFIER_MODEL, o);
    let scale = o.f64("scale")?;
    let margin = o.f64("margin")?;
    let arc_margin = o.f64("arc_margin")?;
    o.finish()?;
    if margin != 0.0 && arc_margin != 0.0 {
        return Err(script_err(format!(
            "classifier_model takes one margin, CosFace's (margin) or ArcFace's (arc_margin), got margin {margin} and arc_margin {arc_margin}"
        )));
    }
    let n_out = to_i64(&n_out, "n_out")?;
    let model = Model::cosine_classifier(&body, n_out, scale, ctx.device)
        .and_then(|m| if arc_margin != 0.0 { m.with_arc_margin(arc_margin) } else { m.with_cos_margin(margin) })
        .or_script()?;
    Ok(ScriptModel(Rc::new(model)))
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    engine.register_type_with_name::<BodySpec>("Body");
    engine.register_type_with_name::<HeadSpec>("Head");
    engine.register_type_with_name::<ScriptModel>("Model");
    register_parts(engine, ctx);
    register_classifiers(engine, ctx);
    register_similarity_models(engine, ctx);
    register_model_files(engine, ctx);
}

/// Bodies and heads, the parts models are made of.
fn register_parts(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(
        engine,
        "create_body",
        ["arch: String", "Body"],
        "A pretrained body (resnet18/34/50/101/152, convnext_tiny), fastai cut -2 (the last feature map), from the arch's ImageNet weights: found in RUNNER_WEIGHTS, the runner's or torch's cache, else downloaded; offline, random init with a warning. Recorded in run.toml.",
        move |arch: &str| body(&c, arch, Map::new())
    );
    let c = ctx.clone();
    reg!(
        engine,
        "create_body",
        ["arch: String", "options: Map", "Body"],
        "create_body with options: cut, weights (a file, URL or tag), pretrained (false: random init; \"required\"). Options: see Options below.",
        move |arch: &str, o: Map| body(&c, arch, o)
    );
    reg!(
        engine,
        "convnet",
        ["options: Map", "Body"],
        "A small conv stack, by default Koch et al.'s; `input: [h, w]` is required. Options: see Options below.",
        convnet_spec
    );
    reg!(
        engine,
        "create_head",
        ["nf: i64", "n_out: i64", "Head"],
        "fastai's create_head(nf, n_out): concat pool, BatchNorm/Dropout/Linear, ps 0.5.",
        |nf: Dynamic, n_out: Dynamic| head(nf, n_out, Map::new())
    );
    reg!(engine, "create_head", ["nf: i64", "n_out: i64", "options: Map", "Head"], "fastai's create_head with options (see Options below).", head);
    reg!(engine, "out_channels", ["body: Body", "i64"], "Channels (or features) the body outputs, to size a head.", |b: &mut BodySpec| b
        .out_channels());
}

/// Image classifiers: a body with fastai's head or a cosine head.
fn register_classifiers(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(engine, "classifier_model", ["body: Body", "head: Head", "Model"], "An image classifier: body then fastai head.", move |b: BodySpec,
                                                                                                                                 h: HeadSpec|
          -> RhaiResult<
        ScriptModel,
    > {
        Ok(ScriptModel(Rc::new(Model::classifier(&b, &h, c.device).or_script()?)))
    });
    let c = ctx.clone();
    reg!(
        engine,
        "classifier_model",
        ["body: Body", "head: String", "n_out: i64", "Model"],
        "An image classifier with a \"cosine\" head: scale * cos(embedding, class weight), scale 20; any body.",
        move |b: BodySpec, h: &str, n: Dynamic| cosine_classifier(&c, b, h, n, Map::new())
    );
    let c = ctx.clone();
    reg!(
        engine,
        "classifier_model",
        ["body: Body", "head: String", "n_out: i64", "options: Map", "Model"],
        "classifier_model with options (see Options below).",
        move |b: BodySpec, h: &str, n: Dynamic, o: Map| cosine_classifier(&c, b, h, n, o)
    );
}

/// Models that compare images: Siamese pairs and prototypical episodes.
fn register_similarity_models(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(
        engine,
        "siamese_model",
        ["body: Body", "head: Head", "Model"],
        "Shared encoder on both images, feature maps concatenated, then the fastai head (2 logits).",
        move |b: BodySpec, h: HeadSpec| -> RhaiResult<ScriptModel> {
            Ok(ScriptModel(Rc::new(Model::siamese(&b, &PairHeadSpec::Concat(h), c.device).or_script()?)))
        }
    );
    let c = ctx.clone();
    reg!(
        engine,
        "siamese_model",
        ["body: Body", "head: String", "Model"],
        "Shared encoder and a distance head: \"l1\" (Koch et al., bce), \"cosine\" (bce) or \"distance\" (contrastive).",
        move |b: BodySpec, h: &str| -> RhaiResult<ScriptModel> {
            Ok(ScriptModel(Rc::new(Model::siamese(&b, &h.parse::<PairHeadSpec>().or_script()?, c.device).or_script()?)))
        }
    );
    reg!(engine, "siamese_model", ["model: Model", "head: String", "Model"],
        "A Siamese model over a trained model's body (weights copied) with head \"l1\", \"cosine\" or \"distance\": pairs after classification pretraining.",
        |m: ScriptModel, h: &str| -> RhaiResult<ScriptModel> { Ok(ScriptModel(Rc::new(m.0.siamese_from(&h.parse::<PairHeadSpec>().or_script()?).or_script()?))) });
    let c = ctx.clone();
    reg!(
        engine,
        "protonet",
        ["body: Body", "options: Map", "Model"],
        "A prototypical network over body, trained on episode_loaders' episodes: scale * closeness of each query to each class mean of the support embeddings, [n_way * n_query, n_way]. Options: see Options below.",
        move |b: BodySpec, o: Map| -> RhaiResult<ScriptModel> {
            let mut o = Opts::new(&options::PROTONET, o);
            let mut shape = ProtoShape::default();
            o.fill(&mut shape)?;
            o.finish()?;
            Ok(ScriptModel(Rc::new(Model::protonet(&b, shape, c.device).or_script()?)))
        }
    );
}

/// A model's summary, and its weights saved and loaded.
fn register_model_files(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    reg!(engine, "summary", ["model: Model", "String"], "Layers, output shapes, parameter counts and what trains.", |m: &mut ScriptModel| m
        .0
        .summary(&m.0.body.default_input())
        .or_script());
    reg!(engine, "summary", ["model: Model", "options: Map", "String"], "summary with `input: [c, h, w]`.", |m: &mut ScriptModel,
                                                                                                             o: Map|
     -> RhaiResult<String> {
        let mut o = Opts::new(&options::SUMMARY, o);
        let input = match o.get("input")? {
            Some(v) => to_sizes(&v, "summary option `input`")?,
            None => m.0.body.default_input(),
        };
        o.finish()?;
        m.0.summary(&input).or_script()
    });
    let c = ctx.clone();
    reg!(
        engine,
        "save",
        ["model: Model", "path: String", "String"],
        "Saves the weights as safetensors (a bare name goes to the run's models/ folder); returns the path.",
        move |m: &mut ScriptModel, path: Dynamic| -> RhaiResult<String> {
            let p = c.model_path(&to_string(&path, "path")?);
            m.0.save(&p).or_script()?;
            Ok(p.display().to_string())
        }
    );
    let c = ctx.clone();
    reg!(
        engine,
        "load",
        ["model: Model", "path: String", "()"],
        "Loads weights saved by `save` (names and shapes checked).",
        move |m: &mut ScriptModel, path: &str| m.0.load(&c.model_path(path)).or_script()
    );
}
