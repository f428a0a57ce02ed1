//! Script bindings for looking at what a learner gets wrong (fastai's
//! `ClassificationInterpretation`) and for the decision threshold of pair models:
//! `learn.interpretation()`, its confusion matrix, most confused classes and top losses
//! (data and pictures in the run folder), `learn.calibrate()` and `learn.threshold`.
use super::args::{script_err, to_f64, to_usize, Opts, OrScript, RhaiResult};
use super::ctx::ScriptCtx;
use super::learn::ScriptLearner;
use super::options;
use crate::learn::calibrate::Cut;
use crate::learn::interpret::{Interpretation, Outcome};
use crate::learn::Learner;
use crate::reg;
use rhai::{Array, Dynamic, Engine, Map};
use std::cell::RefCell;
use std::rc::Rc;

/// The interpretation of a learner's validation set, and the learner (for its images).
#[derive(Clone)]
pub struct ScriptInterpretation {
    interp: Rc<Interpretation>,
    learn: Rc<RefCell<Learner>>,
}

fn outcome_map(i: &Interpretation, o: &Outcome) -> Map {
    let mut m = Map::new();
    m.insert("index".into(), (o.index as i64).into());
    m.insert("actual".into(), o.actual.text(&i.vocab).into());
    m.insert("predicted".into(), o.predicted.text(&i.vocab).into());
    m.insert("loss".into(), o.loss.into());
    m.insert("prob".into(), o.prob.into());
    m.insert("prob_actual".into(), o.prob_actual.into());
    m
}

fn matrix(i: &Interpretation) -> RhaiResult<Array> {
    let m = i.confusion_matrix().or_script()?;
    Ok(m.into_iter().map(|row| Dynamic::from_array(row.into_iter().map(|n| Dynamic::from(n as i64)).collect())).collect())
}

fn most_confused(i: &mut ScriptInterpretation, o: Map) -> RhaiResult<Array> {
    let mut o = Opts::new(&options::MOST_CONFUSED, o);
    let min_val = o.usize("min_val")?;
    o.finish()?;
    Ok(i.interp
        .most_confused(min_val)
        .or_script()?
        .into_iter()
        .map(|(a, p, n)| Dynamic::from_array(vec![a.into(), p.into(), Dynamic::from(n as i64)]))
        .collect())
}

fn plot_confusion_matrix(ctx: &ScriptCtx, i: &mut ScriptInterpretation, path: &str, o: Map) -> RhaiResult<String> {
    let mut o = Opts::new(&options::PLOT_CONFUSION_MATRIX, o);
    let normalize = o.bool("normalize")?;
    o.finish()?;
    let p = ctx.output_path(path);
    i.interp.plot_confusion_matrix(&p, normalize).or_script()?;
    Ok(p.display().to_string())
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    engine.register_type_with_name::<ScriptInterpretation>("Interpretation");
    register_interpretation(engine, ctx);
    register_confusion(engine, ctx);
    register_threshold(engine);
}

/// The interpretation of a learner, and its worst items.
fn register_interpretation(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    reg!(
        engine,
        "interpretation",
        ["learn: Learner", "Interpretation"],
        "fastai's ClassificationInterpretation.from_learner: runs the model over the validation set once (the threshold applied); pair models have the classes different/same.",
        |l: &mut ScriptLearner| -> RhaiResult<ScriptInterpretation> {
            let interp = Interpretation::from_learner(&*l.get()?).map_err(|e| l.error(e))?;
            Ok(ScriptInterpretation { interp: Rc::new(interp), learn: l.inner.clone() })
        }
    );
    reg!(
        engine,
        "get$vocab",
        ["interp: Interpretation", "Array"],
        "`interp.vocab`: the class names, in matrix order.",
        |i: &mut ScriptInterpretation| -> Array { i.interp.vocab.iter().map(|v| Dynamic::from(v.clone())).collect() }
    );
    reg!(
        engine,
        "top_losses",
        ["interp: Interpretation", "k: i64", "Array"],
        "The k validation items with the highest loss, highest first: #{index, actual, predicted, loss, prob (of predicted), prob_actual}; label sets show their labels joined by spaces (prob: the highest label probability, prob_actual: the lowest of the item's labels), numbers their values (probs NaN).",
        |i: &mut ScriptInterpretation, k: Dynamic| -> RhaiResult<Array> {
            let k = to_usize(&k, "k")?;
            Ok(i.interp.top_losses(k).into_iter().map(|o| Dynamic::from_map(outcome_map(&i.interp, o))).collect())
        }
    );
    let c = ctx.clone();
    reg!(
        engine,
        "plot_top_losses",
        ["interp: Interpretation", "k: i64", "path: String", "Array"],
        "fastai's plot_top_losses: a PNG grid of the k worst validation items (pairs side by side) titled predicted/actual/loss/prob, wrong ones in red; returns top_losses(k).",
        move |i: &mut ScriptInterpretation, k: Dynamic, path: &str| -> RhaiResult<Array> {
            let k = to_usize(&k, "k")?;
            let learn = i.learn.try_borrow().map_err(|_| script_err("the learner is busy (called from inside its own fit?)"))?;
            let top = i.interp.plot_top_losses(&learn, k, &c.output_path(path)).or_script()?;
            Ok(top.iter().map(|o| Dynamic::from_map(outcome_map(&i.interp, o))).collect())
        }
    );
}

/// The confusion matrix and the most confused classes.
fn register_confusion(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    reg!(
        engine,
        "confusion_matrix",
        ["interp: Interpretation", "Array"],
        "Counts as rows of the actual class, columns of the predicted class (vocab order); the counts sum to the validation items. Refused for label sets and numbers (use top_losses).",
        |i: &mut ScriptInterpretation| matrix(&i.interp)
    );
    let c = ctx.clone();
    reg!(
        engine,
        "plot_confusion_matrix",
        ["interp: Interpretation", "path: String", "String"],
        "The confusion matrix as a PNG (relative paths: in the run folder), counts in the cells; returns the path written.",
        move |i: &mut ScriptInterpretation, path: &str| plot_confusion_matrix(&c, i, path, Map::new())
    );
    let c = ctx.clone();
    reg!(
        engine,
        "plot_confusion_matrix",
        ["interp: Interpretation", "path: String", "options: Map", "String"],
        "plot_confusion_matrix with options (see Options below).",
        move |i: &mut ScriptInterpretation, path: &str, o: Map| plot_confusion_matrix(&c, i, path, o)
    );
    reg!(
        engine,
        "most_confused",
        ["interp: Interpretation", "Array"],
        "Wrong (actual, predicted) class pairs as [actual, predicted, count], most frequent first.",
        |i: &mut ScriptInterpretation| most_confused(i, Map::new())
    );
    reg!(
        engine,
        "most_confused",
        ["interp: Interpretation", "options: Map", "Array"],
        "most_confused with options (see Options below).",
        most_confused
    );
}

fn calibrate(l: &mut ScriptLearner, o: Map) -> RhaiResult<Map> {
    let mut o = Opts::new(&options::CALIBRATE, o);
    let cut = Cut::parse(&o.string("cut")?).or_script()?;
    o.finish()?;
    let c = l.get()?.calibrate(cut).or_script()?;
    let mut m = Map::new();
    m.insert("threshold".into(), c.threshold.into());
    m.insert("accuracy_before".into(), c.accuracy_before.into());
    m.insert("accuracy".into(), c.accuracy.into());
    m.insert("n".into(), (c.n as i64).into());
    m.insert("distance".into(), c.distance.map_or(Dynamic::UNIT, Dynamic::from));
    Ok(m)
}

/// The decision threshold of pair models: calibrated, read and set.
fn register_threshold(engine: &mut Engine) {
    reg!(
        engine,
        "calibrate",
        ["learn: Learner", "Map"],
        "Fits the same/different threshold of a pair model on its training pairs (the cut that gets the most right) and sets it: #{threshold (p(same)), accuracy_before, accuracy (training pairs), n, distance (distance heads)}.",
        |l: &mut ScriptLearner| calibrate(l, Map::new())
    );
    reg!(
        engine,
        "calibrate",
        ["learn: Learner", "options: Map", "Map"],
        "calibrate with options (see Options below): cut \"eer\" puts the threshold at equal error rates.",
        calibrate
    );
    reg!(
        engine,
        "get$threshold",
        ["learn: Learner", "f64"],
        "`learn.threshold`: p(same) at which a two-class (pair) model says same (0.5 unless set or calibrated).",
        |l: &mut ScriptLearner| -> RhaiResult<f64> { Ok(l.get()?.threshold()) }
    );
    reg!(
        engine,
        "set$threshold",
        ["learn: Learner", "t: f64", "()"],
        "`learn.threshold = t`: every metric, prediction and interpretation then calls a pair same when p(same) > t.",
        |l: &mut ScriptLearner, t: Dynamic| -> RhaiResult<()> { l.get()?.set_threshold(to_f64(&t, "threshold")?).or_script() }
    );
}
