//! `runner predict FILE.learner IMAGES...`: predictions of an exported learner on the
//! command line, with no script and no training data: a table (file, prediction,
//! probability; for multi-label the labels over the threshold; for regression the numbers)
//! or JSON with every output's probability. A pair model takes its images two at a time.
use crate::data::targets::TargetKind;
use crate::learn::export::load_learner;
use crate::learn::learner::{Prediction, RunOut};
use crate::text_table::render;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

pub fn predict(learner: &Path, images: &[PathBuf], device: &str, json: bool) -> Result<()> {
    let device = crate::device::parse_device(device).map_err(super::usage)?;
    let learn = load_learner(learner, device, RunOut::detached("."), crate::seed::DEFAULT_SEED)?;
    let n = learn.model.n_inputs();
    if images.is_empty() || !images.len().is_multiple_of(n) {
        bail!("{} is a model of {n} image(s) an item: give images in groups of {n}, got {}", learner.display(), images.len());
    }
    let items: Vec<Vec<PathBuf>> = images.chunks(n).map(<[PathBuf]>::to_vec).collect();
    let preds = learn.predict_batch(&items)?;
    let vocab = learn.data.vocab();
    let name = |it: &[PathBuf]| it.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" + ");
    if json {
        let rows: Vec<serde_json::Value> = items
            .iter()
            .zip(&preds)
            .map(|(it, p)| {
                let mut row = serde_json::Map::new();
                match n {
                    1 => row.insert("file".into(), name(it).into()),
                    _ => row.insert("files".into(), it.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().into()),
                };
                row.extend(json_fields(p, &vocab));
                serde_json::Value::Object(row)
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let header = match learn.targets {
            TargetKind::Floats => std::iter::once("file".to_string()).chain(vocab.iter().cloned()).collect(),
            TargetKind::MultiHot => ["file", "labels", "probabilities"].map(String::from).to_vec(),
            TargetKind::Classes => ["file", "prediction", "probability"].map(String::from).to_vec(),
        };
        let rows: Vec<Vec<String>> = items.iter().zip(&preds).map(|(it, p)| std::iter::once(name(it)).chain(cells(p)).collect()).collect();
        println!("{}", render(&header, &rows));
    }
    Ok(())
}

/// The probabilities of the predicted labels, in their order.
fn picked(indices: &[usize], probs: &[f64]) -> Vec<f64> {
    indices.iter().map(|&i| probs[i]).collect()
}

/// A prediction's table cells: the class and its probability; the labels over the
/// threshold and theirs (`-` for none); or each number.
fn cells(p: &Prediction) -> Vec<String> {
    let fmt = |xs: &[f64]| xs.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>();
    match p {
        Prediction::Class { label, index, probs } => vec![label.clone(), format!("{:.4}", probs[*index])],
        Prediction::Labels { labels, .. } if labels.is_empty() => vec!["-".into(), "-".into()],
        Prediction::Labels { labels, indices, probs } => vec![labels.join(" "), fmt(&picked(indices, probs)).join(" ")],
        Prediction::Values(v) => fmt(v),
    }
}

/// A prediction's JSON fields: the prediction and its probability with every output's
/// (`probs`, by name); for numbers `values` by name.
fn json_fields(p: &Prediction, vocab: &[String]) -> serde_json::Map<String, serde_json::Value> {
    let named = |xs: &[f64]| -> serde_json::Map<String, serde_json::Value> { vocab.iter().cloned().zip(xs.iter().map(|&x| x.into())).collect() };
    let mut m = serde_json::Map::new();
    match p {
        Prediction::Class { label, index, probs } => {
            m.insert("prediction".into(), label.clone().into());
            m.insert("probability".into(), probs[*index].into());
            m.insert("probs".into(), named(probs).into());
        }
        Prediction::Labels { labels, indices, probs } => {
            m.insert("labels".into(), labels.clone().into());
            m.insert("probabilities".into(), picked(indices, probs).into());
            m.insert("probs".into(), named(probs).into());
        }
        Prediction::Values(v) => {
            m.insert("values".into(), named(v).into());
        }
    }
    m
}
