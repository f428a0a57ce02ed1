//! N-way one-shot evaluation (Lake et al.'s Omniglot protocol): for each query, the
//! model scores it against every support image; the most "same" support is its answer.
use super::data::LearnData;
use crate::data::oneshot::OneShotRun;
use crate::model::{Model, Output};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// One N-way trial set: support images (one per class) as a batch, and queries with
/// the index of their true support image.
pub struct NWayTrial {
    pub name: String,
    pub support: Tensor,
    pub queries: Vec<(Tensor, usize)>,
}

impl NWayTrial {
    /// A run's support and query images, prepared as `data` prepares its validation set.
    pub fn from_run(run: &OneShotRun, data: &dyn LearnData) -> Result<NWayTrial> {
        let support = data.encode_files(&run.support)?;
        let files: Vec<PathBuf> = run.queries.iter().map(|(f, _)| f.clone()).collect();
        let q = data.encode_files(&files)?;
        let queries = run.queries.iter().enumerate().map(|(i, (_, t))| (q.get(i as i64), *t)).collect();
        Ok(NWayTrial { name: run.name.clone(), support, queries })
    }
}

/// Accuracy per trial set and overall.
pub struct NWayResult {
    pub per_trial: Vec<(String, f64)>,
    pub accuracy: f64,
}

/// "How same" each pair is, higher meaning more alike, whatever the Siamese head outputs.
fn same_score(model: &Model, out: Tensor) -> Tensor {
    match model.output {
        Output::Logit => out,
        Output::Distance => -out,
        Output::Logits => out.softmax(-1, Kind::Float).select(1, 1),
    }
}

/// Scores every trial with a Siamese model in eval mode.
pub fn n_way_eval(model: &Model, trials: &[NWayTrial]) -> Result<NWayResult> {
    if model.n_inputs() != 2 {
        bail!("one-shot evaluation needs a Siamese model (two inputs); for a classifier, use siamese_model(model, \"cosine\")");
    }
    let mut per_trial = Vec::new();
    let (mut right, mut total) = (0usize, 0usize);
    tch::no_grad(|| -> Result<()> {
        for t in trials {
            let n = t.support.size()[0];
            let mut ok = 0;
            for (q, truth) in &t.queries {
                let qs = q.unsqueeze(0).expand([n, -1, -1, -1], false);
                let scores = same_score(model, model.forward(&[qs, t.support.shallow_clone()], false)?);
                ok += (scores.argmax(0, false).int64_value(&[]) as usize == *truth) as usize;
            }
            right += ok;
            total += t.queries.len();
            per_trial.push((t.name.clone(), ok as f64 / t.queries.len().max(1) as f64));
        }
        Ok(())
    })?;
    if total == 0 {
        bail!("no one-shot queries to evaluate");
    }
    Ok(NWayResult { per_trial, accuracy: right as f64 / total as f64 })
}

/// N-way one-shot accuracy on Omniglot-style run folders (`runNN/class_labels.txt`), the
/// images prepared as `data` prepares its validation set.
pub fn one_shot_eval(model: &Model, data: &dyn LearnData, runs_dir: &Path) -> Result<NWayResult> {
    let runs = crate::data::oneshot::read_oneshot_runs(runs_dir)?;
    let trials = runs.iter().map(|r| NWayTrial::from_run(r, data)).collect::<Result<Vec<_>>>()?;
    n_way_eval(model, &trials)
}
