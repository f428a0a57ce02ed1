//! N-way one-shot evaluation (Lake et al.'s Omniglot protocol): for each query, the
//! model scores it against every support image; the most "same" support is its answer.
//! `n_way_eval_embeddings` does the same for any model with a body and any N-way K-shot
//! tasks (the official runs, or episodes drawn from a Table), by prototypes of embeddings.
use super::data::LearnData;
use super::tta::{embed_files, Tta};
use crate::data::episodes::Episode;
use crate::data::oneshot::OneShotRun;
use crate::data::table::{Column, Table};
use crate::model::prototypes::{proto_predict, Metric};
use crate::model::{Model, Output};
use anyhow::{bail, Result};
use std::collections::HashMap;
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
    match model.output() {
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

/// An N-way K-shot task as image files: support class-major (K per class), queries with
/// their class index; `turns` quarter-turn each image (rotated classes).
pub struct NWayTask {
    pub name: String,
    pub n_way: usize,
    pub support: Vec<(PathBuf, u8)>,
    pub queries: Vec<(PathBuf, u8, usize)>,
}

impl NWayTask {
    pub fn from_run(run: &OneShotRun) -> NWayTask {
        NWayTask {
            name: run.name.clone(),
            n_way: run.support.len(),
            support: run.support.iter().map(|f| (f.clone(), 0)).collect(),
            queries: run.queries.iter().map(|(f, y)| (f.clone(), 0, *y)).collect(),
        }
    }

    /// Episode `i` over `table` (its `file` column and, when present, `turns`).
    pub fn from_episode(table: &Table, ep: &Episode, i: usize) -> Result<NWayTask> {
        let files = table.strs("file")?;
        let turns: Vec<u8> = match table.column("turns") {
            Ok(Column::Int(t)) => t.iter().map(|&t| t.rem_euclid(4) as u8).collect(),
            _ => vec![0; table.len()],
        };
        let item = |r: usize| (PathBuf::from(&files[r]), turns[r]);
        Ok(NWayTask {
            name: format!("episode{i}"),
            n_way: ep.n_way(),
            support: ep.support.iter().map(|&r| item(r)).collect(),
            queries: ep.query.iter().zip(&ep.query_y).map(|(&r, &y)| (item(r).0, item(r).1, y)).collect(),
        })
    }
}

/// N-way accuracy of any model with a body: each image is embedded once (averaged over
/// `tta`), each query goes to the nearest prototype (`protonet`). Also the 95% confidence
/// half-width of the mean over tasks, which episode-sampled figures should carry.
pub fn n_way_eval_embeddings(model: &Model, data: &dyn LearnData, tasks: &[NWayTask], metric: Metric, tta: Tta) -> Result<(NWayResult, f64)> {
    let mut index: HashMap<(PathBuf, u8), usize> = HashMap::new();
    let mut images: Vec<(PathBuf, u8)> = Vec::new();
    for t in tasks {
        for key in t.support.iter().cloned().chain(t.queries.iter().map(|(f, r, _)| (f.clone(), *r))) {
            index.entry(key.clone()).or_insert_with(|| {
                images.push(key);
                images.len() - 1
            });
        }
    }
    let (files, turns): (Vec<PathBuf>, Vec<u8>) = images.into_iter().unzip();
    let emb = embed_files(model, data, &files, &turns, tta)?;
    let rows = |keys: Vec<(PathBuf, u8)>| Tensor::from_slice(&keys.iter().map(|k| index[k] as i64).collect::<Vec<_>>()).to_device(emb.device());
    let mut per_trial = Vec::new();
    let (mut right, mut total) = (0usize, 0usize);
    for t in tasks {
        let support = emb.index_select(0, &rows(t.support.clone()));
        let queries = emb.index_select(0, &rows(t.queries.iter().map(|(f, r, _)| (f.clone(), *r)).collect()));
        let pred = proto_predict(&support, &queries, t.n_way, metric)?;
        let ok = pred.iter().zip(&t.queries).filter(|(p, q)| **p == q.2).count();
        right += ok;
        total += t.queries.len();
        per_trial.push((t.name.clone(), ok as f64 / t.queries.len().max(1) as f64));
    }
    if total == 0 {
        bail!("no N-way queries to evaluate");
    }
    let n = per_trial.len() as f64;
    let mean = per_trial.iter().map(|p| p.1).sum::<f64>() / n;
    let var = per_trial.iter().map(|p| (p.1 - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Ok((NWayResult { per_trial, accuracy: right as f64 / total as f64 }, 1.96 * (var / n).sqrt()))
}
