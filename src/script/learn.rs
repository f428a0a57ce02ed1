//! Script bindings for the learner: `learner(dls, model, #{...})`, freezing, lr_find,
//! the fits with fastai's learning-rate forms (number, list, `slice`), checkpoints,
//! predictions, metric closures `|preds, targets| ...` (named and ranked with `metric`)
//! and loss closures.
use super::args::{from_anyhow, script_err, to_f64, to_f64s, to_i64, to_string, to_usize, Opts, OrScript, RhaiResult};
use super::callbacks::{script_callbacks, Running, ScriptCallback};
use super::ctx::ScriptCtx;
use super::loss::{closure_loss, ClosureError};
use super::model::ScriptModel;
use super::options;
use super::tensor::ScriptTensor;
use crate::learn::callback::Callback;
use crate::learn::callbacks::ExtraMetricsCb;
use crate::learn::fit::{ExtraMetrics, FitOptions};
use crate::learn::learner::Prediction;
use crate::learn::loss::LossParams;
use crate::learn::lr_find::LrFindOptions;
use crate::learn::metrics::MetricName;
use crate::learn::oneshot::one_shot_eval;
use crate::learn::optimizer::OptKind;
use crate::learn::schedule::OneCycle;
use crate::learn::{LearnData, Learner, LearnerOptions, Loss, Lrs};
use crate::reg;
use crate::track::Goal;
use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext};
use std::cell::RefCell;
use std::rc::Rc;
use tch::Tensor;

#[derive(Clone)]
pub struct ScriptLearner {
    pub inner: Rc<RefCell<Learner>>,
    /// Metric closures `|preds, targets| ...`, named.
    custom: Rc<Vec<ClosureMetric>>,
    /// Callbacks given to `learner(...)`, run in every fit.
    cbs: Rc<Vec<ScriptCallback>>,
    /// Where a loss closure leaves its error.
    loss_error: ClosureError,
}

impl ScriptLearner {
    pub(crate) fn get(&self) -> RhaiResult<std::cell::RefMut<'_, Learner>> {
        self.inner.try_borrow_mut().map_err(|_| script_err("the learner is busy (called from inside its own fit?)"))
    }

    /// A learner error as a script error: a loss closure's own, kept whole, so that it is
    /// reported at the closure's line.
    pub(crate) fn error(&self, e: anyhow::Error) -> Box<EvalAltResult> {
        self.loss_error.take().unwrap_or_else(|| from_anyhow(e))
    }
}

/// The data a learner trains on, whatever script type holds it.
pub fn learn_data(d: &Dynamic) -> RhaiResult<Rc<dyn LearnData>> {
    match d.clone().try_cast::<super::data::ScriptDataLoaders>() {
        Some(dls) => Ok(dls.0 as Rc<dyn LearnData>),
        None => Err(script_err(format!("learner needs DataLoaders (from image_loaders or pair_loaders), got {}", d.type_name()))),
    }
}

/// A metric closure: its column's name, and which way it is better when its options say.
#[derive(Clone)]
pub struct ClosureMetric {
    name: String,
    f: FnPtr,
    goal: Option<Goal>,
}

impl ClosureMetric {
    /// A `metrics:` entry that is a closure, or a map `#{ metric: closure, name, goal }`;
    /// None for anything else (a metric name). `n` numbers unnamed closures.
    fn parse(entry: &Dynamic, n: usize) -> RhaiResult<Option<ClosureMetric>> {
        let unnamed = |f: &FnPtr| if f.fn_name().starts_with("anon$") { format!("metric{n}") } else { f.fn_name().to_string() };
        if let Some(f) = entry.clone().try_cast::<FnPtr>() {
            return Ok(Some(ClosureMetric { name: unnamed(&f), f, goal: None }));
        }
        if let Some(mut m) = entry.clone().try_cast::<ClosureMetric>() {
            m.name = m.name.replace(UNNAMED, &format!("metric{n}"));
            return Ok(Some(m));
        }
        let Some(map) = entry.clone().try_cast::<Map>() else { return Ok(None) };
        let mut o = Opts::new(&options::METRIC_ENTRY, map);
        let Some(f) = o.get("metric")?.and_then(|v| v.try_cast::<FnPtr>()) else {
            return Err(script_err("a metrics entry map needs `metric: |preds, targets| ...`"));
        };
        let name = o.opt_string("name")?.unwrap_or_else(|| unnamed(&f));
        let goal = o.opt_string("goal")?.map(|g| g.parse::<Goal>()).transpose().map_err(script_err)?;
        o.finish()?;
        Ok(Some(ClosureMetric { name, f, goal }))
    }
}

/// What `metric(f)` names an anonymous closure until `learner` numbers it `metricN`.
const UNNAMED: &str = "metric$";

/// `metric(|p, t| ..., #{ name, lower_is_better })`: a closure metric with its column name
/// and direction, for `metrics: [...]`.
fn named_metric(f: FnPtr, o: Map) -> RhaiResult<ClosureMetric> {
    let mut o = Opts::new(&options::METRIC, o);
    let name = o.opt_string("name")?.unwrap_or_else(|| if f.fn_name().starts_with("anon$") { UNNAMED.into() } else { f.fn_name().to_string() });
    let goal = o.opt_bool("lower_is_better")?.map(|lower| if lower { Goal::Min } else { Goal::Max });
    o.finish()?;
    Ok(ClosureMetric { name, f, goal })
}

/// Script closures as metrics: called with (probabilities, targets) tensors. A closure's
/// own error is kept whole so that it is reported at the closure's line.
struct ClosureMetrics<'a> {
    ctx: &'a NativeCallContext<'a>,
    fns: &'a [ClosureMetric],
    error: RefCell<Option<Box<EvalAltResult>>>,
}

impl<'a> ClosureMetrics<'a> {
    fn new(ctx: &'a NativeCallContext<'a>, fns: &'a [ClosureMetric]) -> Self {
        ClosureMetrics { ctx, fns, error: RefCell::new(None) }
    }
}

impl ExtraMetrics for ClosureMetrics<'_> {
    fn names(&self) -> Vec<String> {
        self.fns.iter().map(|m| m.name.clone()).collect()
    }
    fn goals(&self) -> Vec<Option<Goal>> {
        self.fns.iter().map(|m| m.goal).collect()
    }
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> anyhow::Result<Vec<f64>> {
        self.fns
            .iter()
            .map(|ClosureMetric { name, f, .. }| {
                let r = f
                    .call_within_context::<Dynamic>(self.ctx, (ScriptTensor::new(probs.shallow_clone()), ScriptTensor::new(targets.shallow_clone())))
                    .and_then(|v| to_f64(&v, &format!("metric `{name}` result")));
                r.map_err(|e| {
                    let what = anyhow::anyhow!("metric `{name}` failed: {e}");
                    *self.error.borrow_mut() = Some(e);
                    what
                })
            })
            .collect()
    }
}

fn lrs(v: &Dynamic) -> RhaiResult<Lrs> {
    if let Some(l) = v.clone().try_cast::<Lrs>() {
        return Ok(l);
    }
    if v.is_array() {
        return Ok(Lrs::PerGroup(to_f64s(v, "learning rates")?));
    }
    Ok(Lrs::One(to_f64(v, "learning rate")?))
}

fn new_learner(call: &NativeCallContext, ctx: &Rc<ScriptCtx>, data: Dynamic, model: ScriptModel, o: Map) -> RhaiResult<ScriptLearner> {
    let data = learn_data(&data)?;
    let mut o = Opts::new(&options::LEARNER, o);
    let (opts, made) = learner_options(call, ctx, &mut o)?;
    o.finish()?;
    made.wrap(Learner::new(model.0.clone(), data, opts, ctx.run_out(), ctx.seed).or_script()?)
}

/// What a script learner keeps beside the learner: metric closures, callbacks and where a
/// loss closure leaves its error.
#[derive(Default)]
pub(crate) struct ScriptParts {
    custom: Vec<ClosureMetric>,
    cbs: Vec<ScriptCallback>,
    loss_error: ClosureError,
}

impl ScriptParts {
    pub(crate) fn wrap(self, l: Learner) -> RhaiResult<ScriptLearner> {
        let ScriptParts { custom, cbs, loss_error } = self;
        Ok(ScriptLearner { inner: Rc::new(RefCell::new(l)), custom: Rc::new(custom), cbs: Rc::new(cbs), loss_error })
    }
}

/// The learner's options (`learner`'s table, also `vision_learner`'s), read from `o`.
pub(crate) fn learner_options(call: &NativeCallContext, ctx: &Rc<ScriptCtx>, o: &mut Opts) -> RhaiResult<(LearnerOptions, ScriptParts)> {
    let params =
        LossParams { margin: o.f64("margin")?, label_smoothing: o.opt_f64("label_smoothing")?, gamma: o.f64("gamma")?, beta: o.f64("beta")? };
    let loss_error = ClosureError::default();
    // A margin alone means the contrastive loss with it (rather than being ignored), and
    // label smoothing alone the smoothed cross-entropy.
    let loss = match o.get("loss")? {
        Some(v) if v.is::<FnPtr>() => Some(Loss::Custom(closure_loss(call, ctx, v.cast::<FnPtr>(), &loss_error))),
        Some(v) if !v.is_string() => {
            return Err(script_err(format!(
                "learner: `loss` takes a name ({}) or a closure |preds, targets| returning the batch's loss Tensor, got {}",
                Loss::NAMES,
                v.type_name()
            )))
        }
        Some(_) => Some(Loss::parse(&o.string("loss")?, &params).or_script()?),
        None if o.get("margin")?.is_some() => Some(Loss::Contrastive { margin: params.margin }),
        None if params.label_smoothing.is_some() => Some(Loss::parse("cross_entropy", &params).or_script()?),
        None => None,
    };
    let mut metrics = Vec::new();
    let mut custom = Vec::new();
    if let Some(v) = o.get("metrics")? {
        let list = v.try_cast::<Array>().ok_or_else(|| script_err("metrics must be an array of names or closures"))?;
        for m in list {
            match ClosureMetric::parse(&m, custom.len() + 1)? {
                Some(c) => custom.push(c),
                None => match m.clone().try_cast::<MetricName>() {
                    Some(builtin) => metrics.push(builtin),
                    None => metrics.push(to_string(&m, "metric")?.parse().or_script()?),
                },
            }
        }
    }
    let opts = LearnerOptions {
        loss,
        metrics,
        splitter: o.choice("splitter")?,
        opt: OptKind::parse(&o.string("opt")?).or_script()?,
        wd: o.f64("wd")?,
        wd_bn_bias: o.bool("wd_bn_bias")?,
        train_bn: o.bool("train_bn")?,
        threshold: o.opt_f64("threshold")?,
        precision: o.opt_string("precision")?.map(|p| p.parse()).transpose().or_script()?.unwrap_or(ctx.precision),
        sync_bn: o.bool("sync_bn")?,
    };
    let cbs = o.get("cbs")?.map(|v| script_callbacks(&v)).transpose()?.unwrap_or_default();
    Ok((opts, ScriptParts { custom, cbs, loss_error }))
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    engine.register_type_with_name::<ScriptLearner>("Learner");
    engine.register_type_with_name::<Lrs>("Slice");
    engine.register_type_with_name::<MetricName>("Metric");
    engine.register_type_with_name::<ClosureMetric>("Metric");
    register_construction(engine, ctx);
    register_multi_label_metrics(engine);
    register_training_state(engine);
    register_fits(engine);
    register_predictions(engine);
    register_checkpoints(engine);
}

/// A learner from loaders and a model, its model, and learning-rate slices.
fn register_construction(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(
        engine,
        "learner",
        ["dls: DataLoaders", "model: Model", "Learner"],
        "A Learner with the loss the model's output calls for, Adam (fastai defaults), body_head splitter.",
        move |call: NativeCallContext, d: Dynamic, m: ScriptModel| new_learner(&call, &c, d, m, Map::new())
    );
    let c = ctx.clone();
    reg!(
        engine,
        "learner",
        ["dls: DataLoaders", "model: Model", "options: Map", "Learner"],
        "A Learner with options: loss, metrics, splitter, optimizer, weight decay, callbacks. Options: see Options below.",
        move |call: NativeCallContext, d: Dynamic, m: ScriptModel, o: Map| new_learner(&call, &c, d, m, o)
    );
    reg!(
        engine,
        "metric",
        ["f: FnPtr", "options: Map", "Metric"],
        "A closure metric |preds, targets| with its column name and direction, for metrics: [...] (fastai's AccumMetric with a name): #{ name, lower_is_better }. Options: see Options below.",
        named_metric
    );
    reg!(engine, "model", ["learn: Learner", "Model"], "The learner's model.", |l: &mut ScriptLearner| -> RhaiResult<ScriptModel> {
        Ok(ScriptModel(l.get()?.model.clone()))
    });
    reg!(
        engine,
        "slice",
        ["lo: f64", "hi: f64", "Slice"],
        "Learning rates spread geometrically from lo (first group) to hi (last).",
        |lo: Dynamic, hi: Dynamic| -> RhaiResult<Lrs> { Ok(Lrs::Slice(to_f64(&lo, "lo")?, to_f64(&hi, "hi")?)) }
    );
    reg!(engine, "slice", ["hi: f64", "Slice"], "hi/10 for every group but the last, which gets hi.", |hi: Dynamic| -> RhaiResult<Lrs> {
        Ok(Lrs::SliceHi(to_f64(&hi, "hi")?))
    });
}

/// The multi-label metrics with their threshold, for `metrics: [...]`.
fn register_multi_label_metrics(engine: &mut Engine) {
    let with_thresh = |o: Map, m: fn(f64) -> MetricName| -> RhaiResult<MetricName> {
        let mut o = Opts::new(&options::MULTI_METRIC, o);
        let thresh = o.f64("thresh")?;
        o.finish()?;
        if !(0.0..=1.0).contains(&thresh) {
            return Err(script_err(format!("thresh must be a probability in [0, 1], got {thresh}")));
        }
        Ok(m(thresh))
    };
    reg!(
        engine,
        "accuracy_multi",
        ["options: Map", "Metric"],
        "fastai's accuracy_multi with a threshold, for metrics: [...]: a label is predicted when its sigmoid > thresh. Options: see Options below.",
        move |o: Map| with_thresh(o, |thresh| MetricName::AccuracyMulti { thresh })
    );
    reg!(
        engine,
        "f1_multi",
        ["options: Map", "Metric"],
        "fastai's F1ScoreMulti (macro) with a threshold, for metrics: [...]. Options: see Options below.",
        move |o: Map| with_thresh(o, |thresh| MetricName::F1Multi { thresh })
    );
}

/// What trains and how: freezing and precision.
fn register_training_state(engine: &mut Engine) {
    reg!(
        engine,
        "freeze",
        ["learn: Learner", "()"],
        "Train only the last group (BatchNorm stays trainable); resets optimizer state.",
        |l: &mut ScriptLearner| -> RhaiResult<()> {
            l.get()?.freeze();
            Ok(())
        }
    );
    reg!(engine, "unfreeze", ["learn: Learner", "()"], "Train every group.", |l: &mut ScriptLearner| -> RhaiResult<()> {
        l.get()?.unfreeze();
        Ok(())
    });
    reg!(
        engine,
        "freeze_to",
        ["learn: Learner", "n: i64", "()"],
        "Freeze the groups before n (negative counts from the end).",
        |l: &mut ScriptLearner, n: Dynamic| -> RhaiResult<()> {
            l.get()?.freeze_to(to_i64(&n, "n")?);
            Ok(())
        }
    );
    reg!(
        engine,
        "to_bf16",
        ["learn: Learner", "()"],
        "bf16 mixed precision from now on (autocast; float32 weights and losses).",
        |l: &mut ScriptLearner| -> RhaiResult<()> {
            l.get()?.bf16 = true;
            Ok(())
        }
    );
    reg!(engine, "to_fp32", ["learn: Learner", "()"], "Back to full float32 precision.", |l: &mut ScriptLearner| -> RhaiResult<()> {
        l.get()?.bf16 = false;
        Ok(())
    });
}

/// lr_find and the fits, each with and without options.
fn register_fits(engine: &mut Engine) {
    reg!(
        engine,
        "lr_find",
        ["learn: Learner", "Map"],
        "Exponential lr sweep (1e-7..10, 100 batches); weights restored; returns #{valley, minimum, steep, plot}; lr_find.png in the run.",
        |l: &mut ScriptLearner| lr_find(l, Map::new())
    );
    reg!(engine, "lr_find", ["learn: Learner", "options: Map", "Map"], "lr_find with options (see Options below).", lr_find);
    reg!(
        engine,
        "fit_one_cycle",
        ["learn: Learner", "epochs: i64", "lr_max: Dynamic", "()"],
        "fastai's one-cycle fit; lr_max is a number, a list per group, or slice(lo, hi).",
        |ctx: NativeCallContext, l: &mut ScriptLearner, n: Dynamic, lr: Dynamic| fit(&ctx, l, How::OneCycle, n, lr, Map::new())
    );
    reg!(
        engine,
        "fit_one_cycle",
        ["learn: Learner", "epochs: i64", "lr_max: Dynamic", "options: Map", "()"],
        "fit_one_cycle with schedule, regularisation, checkpoint, precision and callback options. Options: see Options below.",
        |ctx: NativeCallContext, l: &mut ScriptLearner, n: Dynamic, lr: Dynamic, o: Map| fit(&ctx, l, How::OneCycle, n, lr, o)
    );
    reg!(
        engine,
        "fit",
        ["learn: Learner", "epochs: i64", "lr: Dynamic", "()"],
        "Constant learning rate(s), momentum 0.9.",
        |ctx: NativeCallContext, l: &mut ScriptLearner, n: Dynamic, lr: Dynamic| fit(&ctx, l, How::Constant, n, lr, Map::new())
    );
    reg!(
        engine,
        "fit",
        ["learn: Learner", "epochs: i64", "lr: Dynamic", "options: Map", "()"],
        "fit with options (see Options below).",
        |ctx: NativeCallContext, l: &mut ScriptLearner, n: Dynamic, lr: Dynamic, o: Map| fit(&ctx, l, How::Constant, n, lr, o)
    );
    reg!(
        engine,
        "fine_tune",
        ["learn: Learner", "epochs: i64", "()"],
        "fastai's fine_tune: 1 frozen epoch, then unfrozen one-cycle epochs (base_lr 2e-3).",
        |ctx: NativeCallContext, l: &mut ScriptLearner, n: Dynamic| fit(&ctx, l, How::FineTune, n, Dynamic::from(2e-3), Map::new())
    );
    reg!(
        engine,
        "fine_tune",
        ["learn: Learner", "epochs: i64", "base_lr: f64", "()"],
        "fine_tune with a base learning rate (e.g. lr_find's valley).",
        |ctx: NativeCallContext, l: &mut ScriptLearner, n: Dynamic, lr: Dynamic| fit(&ctx, l, How::FineTune, n, lr, Map::new())
    );
    reg!(
        engine,
        "fine_tune",
        ["learn: Learner", "epochs: i64", "base_lr: f64", "options: Map", "()"],
        "fine_tune with base_lr and options (see Options below).",
        |ctx: NativeCallContext, l: &mut ScriptLearner, n: Dynamic, lr: Dynamic, o: Map| fit(&ctx, l, How::FineTune, n, lr, o)
    );
}

/// Validation, predictions and the one-shot evaluation.
fn register_predictions(engine: &mut Engine) {
    reg!(engine, "validate", ["learn: Learner", "Map"], "Validation loss and metrics: #{valid_loss, accuracy, ...}.", |ctx: NativeCallContext,
                                                                                                                       l: &mut ScriptLearner|
     -> RhaiResult<Map> {
        let extra = ClosureMetrics::new(&ctx, &l.custom);
        let r = l.get()?.evaluate(Some(&extra));
        let values = r.map_err(|e| extra.error.take().unwrap_or_else(|| l.error(e)))?;
        Ok(values.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    });
    reg!(
        engine,
        "get_preds",
        ["learn: Learner", "ds: String", "Map"],
        "Validation-set #{probs: Tensor [N, C], targets: Tensor [N]} (ds must be \"valid\"); label sets: each label's sigmoid and multi-hot targets [N, C]; numbers: the outputs and targets [N, k].",
        |l: &mut ScriptLearner, ds: &str| -> RhaiResult<Map> {
            if ds != "valid" {
                return Err(script_err(format!("get_preds(\"{ds}\"): only \"valid\" is supported (training batches are shuffled and augmented)")));
            }
            let (p, t) = l.get()?.get_preds().map_err(|e| l.error(e))?;
            let mut m = Map::new();
            m.insert("probs".into(), Dynamic::from(ScriptTensor::new(p)));
            m.insert("targets".into(), Dynamic::from(ScriptTensor::new(t)));
            Ok(m)
        }
    );
    reg!(
        engine,
        "predict",
        ["learn: Learner", "files: Array", "Map"],
        "fastai's predict for one item: [file] for a classifier, [file1, file2] for a Siamese model; #{label, index, probs: Tensor [C]} (probs.argmax() == index, probs[i], probs.to_array()); label sets: #{labels: [those over learn.threshold], probs: Tensor [C]}; numbers: #{value (the first output), values: Tensor [k]}.",
        |l: &mut ScriptLearner, files: Array| -> RhaiResult<Map> {
            let files: Vec<std::path::PathBuf> = files.iter().map(|f| to_string(f, "file").map(Into::into)).collect::<RhaiResult<_>>()?;
            predict(l, &files)
        }
    );
    reg!(
        engine,
        "predict",
        ["learn: Learner", "file: String", "Map"],
        "predict for one image file (a classifier); as predict([file]).",
        |l: &mut ScriptLearner, file: &str| -> RhaiResult<Map> { predict(l, &[file.into()]) }
    );
    reg!(engine, "one_shot_eval", ["learn: Learner", "runs_dir: String", "Map"],
        "N-way one-shot accuracy on Omniglot-style runs (runNN/class_labels.txt): each query picks the support image scored most \"same\"; #{accuracy, runs: #{name: accuracy}}.",
        |l: &mut ScriptLearner, dir: &str| -> RhaiResult<Map> {
            let learn = l.get()?;
            one_shot_map(&learn.model, learn.data.as_ref(), dir)
        });
    reg!(
        engine,
        "one_shot_eval",
        ["model: Model", "dls: DataLoaders", "runs_dir: String", "Map"],
        "one_shot_eval for a Siamese model, images prepared as dls prepares its validation set.",
        |m: ScriptModel, d: Dynamic, dir: &str| -> RhaiResult<Map> { one_shot_map(&m.0, learn_data(&d)?.as_ref(), dir) }
    );
}

/// Saving, loading and summarising the learner's model.
fn register_checkpoints(engine: &mut Engine) {
    reg!(
        engine,
        "save",
        ["learn: Learner", "name: String", "String"],
        "Saves model and optimizer state to models/<name>.safetensors in the run; returns the path.",
        |l: &mut ScriptLearner, name: &str| -> RhaiResult<String> { Ok(l.get()?.save(name).or_script()?.display().to_string()) }
    );
    reg!(engine, "load", ["learn: Learner", "name: String", "()"], "Loads what save wrote (model and optimizer state).", |l: &mut ScriptLearner,
                                                                                                                          name: &str|
     -> RhaiResult<()> {
        l.get()?.load(name).or_script()
    });
    reg!(
        engine,
        "summary",
        ["learn: Learner", "String"],
        "The model summary for the loaders' input size, with frozen/trainable counts.",
        |l: &mut ScriptLearner| -> RhaiResult<String> {
            let learn = l.get()?;
            let input = learn.data.input_shape().unwrap_or_else(|| learn.model.body.default_input());
            learn.model.summary(&input).or_script()
        }
    );
}

fn predict(l: &ScriptLearner, files: &[std::path::PathBuf]) -> RhaiResult<Map> {
    Ok(prediction_map(l.get()?.predict_files(files).or_script()?))
}

/// A prediction as scripts read it: `#{label, index, prob, probs}` for a class (`prob`: the
/// label's), `#{labels, probs}` for multi-label, `#{value, values}` for numbers.
pub(crate) fn prediction_map(p: Prediction) -> Map {
    let tensor = |v: &[f64]| Dynamic::from(ScriptTensor::new(Tensor::from_slice(v)));
    let mut m = Map::new();
    match p {
        Prediction::Class { label, index, probs } => {
            m.insert("label".into(), label.into());
            m.insert("index".into(), (index as i64).into());
            m.insert("prob".into(), probs.get(index).copied().unwrap_or(f64::NAN).into());
            m.insert("probs".into(), tensor(&probs));
        }
        Prediction::Labels { labels, probs, .. } => {
            m.insert("labels".into(), Dynamic::from_array(labels.into_iter().map(Dynamic::from).collect()));
            m.insert("probs".into(), tensor(&probs));
        }
        Prediction::Values(values) => {
            m.insert("value".into(), values.first().copied().unwrap_or(f64::NAN).into());
            m.insert("values".into(), tensor(&values));
        }
    }
    m
}

fn one_shot_map(model: &crate::model::Model, data: &dyn LearnData, dir: &str) -> RhaiResult<Map> {
    let res = one_shot_eval(model, data, std::path::Path::new(dir)).or_script()?;
    let mut m = Map::new();
    m.insert("accuracy".into(), res.accuracy.into());
    m.insert("runs".into(), Dynamic::from_map(res.per_trial.into_iter().map(|(n, a)| (n.into(), a.into())).collect()));
    Ok(m)
}

fn lr_find(l: &mut ScriptLearner, o: Map) -> RhaiResult<Map> {
    let mut o = Opts::new(&options::LR_FIND, o);
    let mut opts = LrFindOptions::default();
    o.fill(&mut opts)?;
    o.finish()?;
    let r = l.get()?.lr_find(&opts).map_err(|e| l.error(e))?;
    let mut m = Map::new();
    m.insert("valley".into(), r.valley.into());
    m.insert("minimum".into(), r.minimum.into());
    m.insert("steep".into(), r.steep.into());
    m.insert("plot".into(), r.plot.map(|p| Dynamic::from(p.display().to_string())).unwrap_or(Dynamic::UNIT));
    Ok(m)
}

/// The three fits scripts call.
#[derive(Clone, Copy, PartialEq)]
enum How {
    OneCycle,
    Constant,
    FineTune,
}

fn fit(ctx: &NativeCallContext, l: &mut ScriptLearner, how: How, n: Dynamic, lr: Dynamic, o: Map) -> RhaiResult<()> {
    let epochs = to_usize(&n, "epochs")?;
    let table = match how {
        How::OneCycle => &options::FIT_ONE_CYCLE,
        How::Constant => &options::FIT_CONSTANT,
        How::FineTune => &options::FINE_TUNE,
    };
    let mut o = Opts::new(table, o);
    let (mut cycle, mut f) = (OneCycle::default(), FitOptions::default());
    o.fill(&mut cycle)?;
    let freeze_epochs = if how == How::FineTune { o.usize("freeze_epochs")? } else { 0 };
    o.fill(&mut f)?;
    let fit_cbs = o.get("cbs")?.map(|v| script_callbacks(&v)).transpose()?.unwrap_or_default();
    o.finish()?;
    let metrics = ClosureMetrics::new(ctx, &l.custom);
    let mut metrics_cb = ExtraMetricsCb(&metrics);
    let mut running: Vec<Running> = l.cbs.iter().chain(&fit_cbs).map(|c| Running::new(ctx, c.clone())).collect();
    let mut cbs: Vec<&mut dyn Callback> = vec![&mut metrics_cb];
    cbs.extend(running.iter_mut().map(|r| r as &mut dyn Callback));
    let mut learn = l.get()?;
    let r = match how {
        How::OneCycle => learn.fit_one_cycle(epochs, &lrs(&lr)?, cycle, &f, &mut cbs),
        How::FineTune => learn.fine_tune(epochs, to_f64(&lr, "base_lr")?, freeze_epochs, &f, &mut cbs),
        How::Constant => learn.fit(epochs, &lrs(&lr)?, &f, &mut cbs),
    };
    drop(cbs);
    // A closure's own error says where in the script it happened; prefer it.
    let closure_error = metrics.error.take().or_else(|| running.iter_mut().find_map(|r| r.error.take()));
    r.map_err(|e| closure_error.unwrap_or_else(|| l.error(e)))
}
