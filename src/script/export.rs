//! Script bindings for inference: `learn.export_learner(path)` (fastai's `learn.export`;
//! `export` is a Rhai keyword), `load_learner(path)` in any script, and
//! `learn.predict_batch(files)` for many items at once.
use super::args::{to_string, OrScript, RhaiResult};
use super::ctx::ScriptCtx;
use super::learn::{prediction_map, ScriptLearner, ScriptParts};
use crate::learn::export::load_learner;
use crate::reg;
use rhai::{Array, Dynamic, Engine};
use std::path::PathBuf;
use std::rc::Rc;

/// An item as a script gives it: a file, or an array of files (a pair).
fn item(v: &Dynamic) -> RhaiResult<Vec<PathBuf>> {
    match v.clone().try_cast::<Array>() {
        Some(files) => files.iter().map(|f| to_string(f, "file").map(PathBuf::from)).collect(),
        None => Ok(vec![to_string(v, "file")?.into()]),
    }
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(
        engine,
        "export_learner",
        ["learn: Learner", "path: String", "String"],
        "fastai's learn.export (`export` is a Rhai keyword): one file with the architecture, the weights (no optimizer state), the vocabulary, target kind, threshold and item pipeline, for load_learner and `runner predict`; a relative path lands in the run folder; returns the path.",
        move |l: &mut ScriptLearner, path: &str| -> RhaiResult<String> {
            let p = c.output_path(path);
            let bytes = l.get()?.export(&p).or_script()?;
            tracing::info!("exported the learner to {} ({bytes} bytes)", p.display());
            Ok(p.display().to_string())
        }
    );
    let c = ctx.clone();
    reg!(
        engine,
        "load_learner",
        ["path: String", "Learner"],
        "fastai's load_learner: a learner from export_learner's file (relative to the working directory) that predicts with no training data present; refuses other format versions and damaged files.",
        move |path: &str| -> RhaiResult<ScriptLearner> {
            ScriptParts::default().wrap(load_learner(&PathBuf::from(path), c.device, c.run_out(), c.seed).or_script()?)
        }
    );
    reg!(
        engine,
        "predict_batch",
        ["learn: Learner", "items: Array", "Array"],
        "Predictions for many items at once (files, or [file1, file2] pairs for a Siamese model), in batches: one #{label, index, prob, probs} per item, in order.",
        |l: &mut ScriptLearner, items: Array| -> RhaiResult<Array> {
            let items = items.iter().map(item).collect::<RhaiResult<Vec<_>>>()?;
            let preds = l.get()?.predict_batch(&items).or_script()?;
            Ok(preds.into_iter().map(|p| Dynamic::from_map(prediction_map(p))).collect())
        }
    );
}
