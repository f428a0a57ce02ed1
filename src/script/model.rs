//! Script bindings for models: body and head specs, combined into a classifier or a
//! Siamese model on the run's device; summary, save and load.
use super::args::{script_err, to_i64, to_string, to_usizes, Opts, OrScript, RhaiResult};
use super::host::ScriptCtx;
use crate::model::convnet::ConvNetSpec;
use crate::model::head::HeadSpec;
use crate::model::{BodySpec, Model, PairHeadSpec};
use crate::reg;
use rhai::{Array, Dynamic, Engine, Map};
use std::path::PathBuf;
use std::rc::Rc;

#[derive(Clone)]
pub struct ScriptModel(pub Rc<Model>);

fn bools(v: &Dynamic, what: &str) -> RhaiResult<Vec<bool>> {
    match v.clone().try_cast::<Array>() {
        Some(a) => a.iter().map(|x| x.as_bool().map_err(|t| script_err(format!("{what} must hold true/false, got {t}")))).collect(),
        None => Err(script_err(format!("{what} must be an array of true/false"))),
    }
}

fn i64s(v: &Dynamic, what: &str) -> RhaiResult<Vec<i64>> {
    Ok(to_usizes(v, what)?.into_iter().map(|x| x as i64).collect())
}

fn body(arch: &str, o: Map) -> RhaiResult<BodySpec> {
    let mut o = Opts::new("create_body", o);
    let cut = o.i64("cut", -2)?;
    let weights = o.opt_string("weights")?.map(PathBuf::from);
    o.finish()?;
    BodySpec::resnet(arch, cut, weights).or_script()
}

fn convnet_spec(o: Map) -> RhaiResult<BodySpec> {
    let mut o = Opts::new("convnet", o);
    let input = match o.get("input") {
        Some(v) => i64s(&v, "convnet option `input`")?,
        None => return Err(script_err("convnet needs `input: [height, width]`")),
    };
    if input.len() != 2 {
        return Err(script_err(format!("convnet option `input` must be [height, width], got {} numbers", input.len())));
    }
    let in_channels = o.i64("in_channels", 1)?;
    // Koch et al.'s network unless options say otherwise.
    let mut spec = ConvNetSpec::koch((input[0], input[1]), in_channels);
    if let Some(v) = o.get("channels") {
        spec.channels = i64s(&v, "convnet option `channels`")?;
    }
    if let Some(v) = o.get("kernels") {
        spec.kernels = i64s(&v, "convnet option `kernels`")?;
    }
    if let Some(v) = o.get("pool") {
        spec.pool = bools(&v, "convnet option `pool`")?;
    }
    spec.batch_norm = o.bool("bn", spec.batch_norm)?;
    spec.embed = o.i64("embed", spec.embed)?;
    spec.sigmoid = o.bool("sigmoid", spec.sigmoid)?;
    spec.same_padding = match o.string("padding", "valid")?.as_str() {
        "valid" => false,
        "same" => true,
        other => return Err(script_err(format!("convnet option `padding` must be \"valid\" or \"same\", got \"{other}\""))),
    };
    o.finish()?;
    spec.check().or_script()?;
    Ok(BodySpec::ConvNet(spec))
}

fn head(nf: Dynamic, n_out: Dynamic, o: Map) -> RhaiResult<HeadSpec> {
    let mut spec = HeadSpec::new(to_i64(&nf, "nf")?, to_i64(&n_out, "n_out")?);
    let mut o = Opts::new("create_head", o);
    if let Some(v) = o.get("ps") {
        spec.ps = super::args::to_f64s(&v, "create_head option `ps`")?;
    }
    if let Some(v) = o.get("lin_ftrs") {
        spec.lin_ftrs = Some(i64s(&v, "create_head option `lin_ftrs`")?);
    }
    spec.concat_pool = o.bool("concat_pool", true)?;
    spec.first_bn = o.bool("first_bn", true)?;
    spec.bn_final = o.bool("bn_final", false)?;
    o.finish()?;
    spec.check().or_script()?;
    Ok(spec)
}

fn pair_head(kind: &str) -> RhaiResult<PairHeadSpec> {
    Ok(match kind {
        "l1" => PairHeadSpec::L1,
        "cosine" => PairHeadSpec::Cosine,
        "distance" => PairHeadSpec::Distance,
        other => return Err(script_err(format!("unknown Siamese head `{other}`: use a create_head(...), \"l1\", \"cosine\" or \"distance\""))),
    })
}

fn cosine_classifier(ctx: &ScriptCtx, body: BodySpec, head: &str, n_out: Dynamic, o: Map) -> RhaiResult<ScriptModel> {
    if head != "cosine" {
        return Err(script_err(format!("unknown classifier head `{head}`: use \"cosine\", or a create_head(...) for fastai's head")));
    }
    let mut o = Opts::new("classifier_model", o);
    let scale = o.f64("scale", 20.0)?;
    o.finish()?;
    let n_out = to_i64(&n_out, "n_out")?;
    Ok(ScriptModel(Rc::new(Model::cosine_classifier(&body, n_out, scale, ctx.device).or_script()?)))
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    engine.register_type_with_name::<BodySpec>("Body");
    engine.register_type_with_name::<HeadSpec>("Head");
    engine.register_type_with_name::<ScriptModel>("Model");
    reg!(engine, "create_body", ["arch: String", "Body"], "A ResNet body (resnet18/34/50), fastai cut -2: the last feature map.", |arch: &str| body(
        arch,
        Map::new()
    ));
    reg!(
        engine,
        "create_body",
        ["arch: String", "options: Map", "Body"],
        "A ResNet body; options: cut (fastai children cut, default -2), weights (torchvision state_dict .safetensors).",
        |arch: &str, o: Map| body(arch, o)
    );
    reg!(engine, "convnet", ["options: Map", "Body"],
        "A small conv stack, by default Koch et al.'s: input [h, w] (required), in_channels 1, channels [64,128,128,256], kernels [10,7,4,4], pool, bn false, embed 4096 (0: global average pool), sigmoid true, padding \"valid\" (or \"same\").",
        convnet_spec);
    reg!(
        engine,
        "create_head",
        ["nf: i64", "n_out: i64", "Head"],
        "fastai's create_head(nf, n_out): concat pool, BatchNorm/Dropout/Linear, ps 0.5.",
        |nf: Dynamic, n_out: Dynamic| head(nf, n_out, Map::new())
    );
    reg!(
        engine,
        "create_head",
        ["nf: i64", "n_out: i64", "options: Map", "Head"],
        "fastai's create_head; options: ps (number or list), lin_ftrs, concat_pool, first_bn, bn_final.",
        head
    );
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
            Ok(ScriptModel(Rc::new(Model::siamese(&b, &pair_head(h)?, c.device).or_script()?)))
        }
    );
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
        "classifier_model with options: scale.",
        move |b: BodySpec, h: &str, n: Dynamic, o: Map| cosine_classifier(&c, b, h, n, o)
    );
    reg!(engine, "siamese_model", ["model: Model", "head: String", "Model"],
        "A Siamese model over a trained model's body (weights copied) with head \"l1\", \"cosine\" or \"distance\": pairs after classification pretraining.",
        |m: ScriptModel, h: &str| -> RhaiResult<ScriptModel> { Ok(ScriptModel(Rc::new(m.0.siamese_from(&pair_head(h)?).or_script()?))) });
    reg!(engine, "out_channels", ["body: Body", "i64"], "Channels (or features) the body outputs, to size a head.", |b: &mut BodySpec| b
        .out_channels());
    reg!(engine, "summary", ["model: Model", "String"], "Layers, output shapes, parameter counts and what trains.", |m: &mut ScriptModel| m
        .0
        .summary(&m.0.body.default_input())
        .or_script());
    reg!(engine, "summary", ["model: Model", "options: Map", "String"], "summary with `input: [c, h, w]`.", |m: &mut ScriptModel,
                                                                                                             o: Map|
     -> RhaiResult<String> {
        let mut o = Opts::new("summary", o);
        let input = match o.get("input") {
            Some(v) => i64s(&v, "summary option `input`")?,
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
            let p = model_path(&c, &to_string(&path, "path")?);
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
        move |m: &mut ScriptModel, path: &str| m.0.load(&model_path(&c, path)).or_script()
    );
}

/// A bare name means `<run>/models/<name>.safetensors`; anything with a folder or
/// extension is taken as given.
pub fn model_path(ctx: &ScriptCtx, name: &str) -> PathBuf {
    let p = PathBuf::from(name);
    if p.components().count() > 1 || p.extension().is_some() {
        return p;
    }
    let dir = ctx.session.as_ref().map(|s| s.dir.join("models")).unwrap_or_else(|| PathBuf::from("models"));
    dir.join(format!("{name}.safetensors"))
}
