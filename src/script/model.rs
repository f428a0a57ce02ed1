//! Script bindings for models: body and head specs, combined into a classifier or a
//! Siamese model on the run's device; summary, save and load.
use super::args::{script_err, to_i64, to_sizes, to_string, Opts, OrScript, RhaiResult};
use super::ctx::ScriptCtx;
use super::options;
use crate::model::convnet::ConvNetSpec;
use crate::model::head::HeadSpec;
use crate::model::{BodySpec, Model, PairHeadSpec, ProtoShape};
use crate::reg;
use rhai::{Dynamic, Engine, Map};
use std::path::PathBuf;
use std::rc::Rc;

#[derive(Clone)]
pub struct ScriptModel(pub Rc<Model>);

fn body(arch: &str, o: Map) -> RhaiResult<BodySpec> {
    let mut o = Opts::new(&options::CREATE_BODY, o);
    let cut = o.i64("cut")?;
    let weights = o.opt_string("weights")?.map(PathBuf::from);
    o.finish()?;
    BodySpec::resnet(arch, cut, weights).or_script()
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
    o.finish()?;
    let n_out = to_i64(&n_out, "n_out")?;
    let model = Model::cosine_classifier(&body, n_out, scale, ctx.device).and_then(|m| m.with_cos_margin(margin)).or_script()?;
    Ok(ScriptModel(Rc::new(model)))
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    engine.register_type_with_name::<BodySpec>("Body");
    engine.register_type_with_name::<HeadSpec>("Head");
    engine.register_type_with_name::<ScriptModel>("Model");
    register_parts(engine);
    register_classifiers(engine, ctx);
    register_similarity_models(engine, ctx);
    register_model_files(engine, ctx);
}

/// Bodies and heads, the parts models are made of.
fn register_parts(engine: &mut Engine) {
    reg!(engine, "create_body", ["arch: String", "Body"], "A ResNet body (resnet18/34/50), fastai cut -2: the last feature map.", |arch: &str| body(
        arch,
        Map::new()
    ));
    reg!(
        engine,
        "create_body",
        ["arch: String", "options: Map", "Body"],
        "A ResNet body with options: cut, weights (random weights unless given). Options: see Options below.",
        |arch: &str, o: Map| body(arch, o)
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
