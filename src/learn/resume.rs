//! Resuming a stopped run where it stopped. A resumed run replays its script from the
//! start (scripts are deterministic given the seed); each fit that has a checkpoint here
//! restores it instead of training again: model, optimizer, data order (the learner's
//! epoch count), schedule position, its callbacks' state and the metrics log's position,
//! then continues with the next epoch. The torch generator is reseeded from the run seed
//! at every epoch and at the end of every fit, so what follows a restored epoch draws the
//! same numbers as the uninterrupted run did.
//!
//! Layout: `models/resume/fit<N>.json` (N counts every fit of the run, lr_find included)
//! beside `fit<N>.safetensors` and `fit<N>.opt.safetensors`; `models/last` is the newest.
use super::callback::Callback;
use super::learner::Learner;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const RESUME_DIR: &str = "models/resume";

/// What a fit had done when its checkpoint was written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitCheckpoint {
    /// The fit's number in the run.
    pub seq: usize,
    /// Epochs of this fit done.
    pub epochs: usize,
    /// The fit has ended (every epoch, or stopped early); the state is its final one.
    pub done: bool,
    /// The learner's epoch count (it varies shuffles and augmentations).
    pub epochs_done: usize,
    /// metrics.jsonl lines written by then, and `log_metric` steps.
    pub metrics_lines: usize,
    pub metric_steps: HashMap<String, u64>,
    /// Callback state by the callback's order.
    pub callbacks: BTreeMap<String, Value>,
}

pub fn checkpoint_json(run_dir: &Path, seq: usize) -> PathBuf {
    run_dir.join(RESUME_DIR).join(format!("fit{seq}.json"))
}

pub fn checkpoint_model(run_dir: &Path, seq: usize) -> PathBuf {
    run_dir.join(RESUME_DIR).join(format!("fit{seq}.safetensors"))
}

/// The checkpoint of fit `seq`, if the run has one.
pub fn read(run_dir: &Path, seq: usize) -> Result<Option<FitCheckpoint>> {
    let path = checkpoint_json(run_dir, seq);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))?))
}

fn write(run_dir: &Path, c: &FitCheckpoint) -> Result<()> {
    crate::track::record::write_atomic(&checkpoint_json(run_dir, c.seq), &serde_json::to_string_pretty(c)?)
}

/// How many metrics.jsonl lines a resumed run keeps: those its newest checkpoint had
/// written (none without a checkpoint: the run starts over in its folder).
pub fn metrics_lines_kept(run_dir: &Path) -> Result<usize> {
    let Ok(rd) = std::fs::read_dir(run_dir.join(RESUME_DIR)) else { return Ok(0) };
    let newest = rd.flatten().filter_map(|e| e.file_name().to_str()?.strip_prefix("fit")?.strip_suffix(".json")?.parse::<usize>().ok()).max();
    Ok(match newest {
        Some(seq) => read(run_dir, seq)?.map(|c| c.metrics_lines).unwrap_or(0),
        None => 0,
    })
}

/// A completed run needs no resume state; `models/last` stays.
pub fn discard(run_dir: &Path) {
    let _ = std::fs::remove_dir_all(run_dir.join(RESUME_DIR));
}

/// Seeds torch for one epoch of one fit (or, with `epoch` = the fit's length, for what
/// follows the fit), from the run seed alone.
pub fn reseed(run_seed: u64, seq: usize, epoch: usize) {
    crate::seed::seed_torch(crate::seed::derive(run_seed, &format!("fit{seq}/epoch{epoch}")));
}

impl Learner {
    /// Writes fit `seq`'s checkpoint after `epochs` epochs; the weights only when
    /// `weights` (they are unchanged since the last epoch's otherwise).
    pub(crate) fn write_checkpoint(&self, seq: usize, epochs: usize, done: bool, weights: bool, cbs: &[&mut dyn Callback]) -> Result<()> {
        let Some(log) = &self.out.metrics else { return Ok(()) };
        let dir = &self.out.dir;
        let model = checkpoint_model(dir, seq);
        if weights || !model.is_file() {
            std::fs::create_dir_all(dir.join(RESUME_DIR))?;
            self.save_to(&model)?;
            link_last(&model, &crate::track::paths::model_file(Some(dir), "last"))?;
        }
        let (metrics_lines, metric_steps) = log.position();
        let callbacks = cbs.iter().filter_map(|c| c.state().map(|v| (c.order().to_string(), v))).collect();
        write(dir, &FitCheckpoint { seq, epochs, done, epochs_done: self.epochs_done, metrics_lines, metric_steps, callbacks })
    }

    /// Restores fit `seq` from its checkpoint: weights, optimizer, epoch counts, callbacks, log position.
    pub(crate) fn restore_checkpoint(&mut self, c: &FitCheckpoint, cbs: &mut [&mut dyn Callback]) -> Result<()> {
        self.load_from(&checkpoint_model(&self.out.dir, c.seq))?;
        self.epochs_done = c.epochs_done;
        self.state.epoch = c.epochs;
        self.state.train_iter = c.epochs * self.state.n_iter;
        if let Some(log) = &self.out.metrics {
            log.restore_position(c.metrics_lines, c.metric_steps.clone());
        }
        for cb in cbs.iter_mut() {
            if let Some(v) = c.callbacks.get(&cb.order().to_string()) {
                cb.restore(v)?;
            }
        }
        let what = if c.done { "its end".to_string() } else { format!("epoch {} of {}", c.epochs, self.state.n_epoch) };
        eprintln!("fit {}: resumed from its checkpoint at {what}", self.state.fit);
        tracing::info!(fit = self.state.fit, epochs = c.epochs, done = c.done, "fit restored from checkpoint");
        Ok(())
    }
}

/// `models/last` is the newest checkpoint: a hard link to it (a copy where links fail).
fn link_last(model: &Path, last: &Path) -> Result<()> {
    for (from, to) in
        [(model.to_path_buf(), last.to_path_buf()), (crate::track::paths::optimizer_file(model), crate::track::paths::optimizer_file(last))]
    {
        if !from.is_file() {
            continue;
        }
        let tmp = to.with_extension("link.tmp");
        let _ = std::fs::remove_file(&tmp);
        if std::fs::hard_link(&from, &tmp).is_err() {
            std::fs::copy(&from, &tmp).with_context(|| format!("cannot copy {} to {}", from.display(), tmp.display()))?;
        }
        std::fs::rename(&tmp, &to).with_context(|| format!("cannot write {}", to.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::callbacks::recorder::SmoothLoss;
    use crate::track::metrics::{f64_of_json, json_f64};
    use rand::{Rng, SeedableRng};

    /// Issue #25, 12: serde_json's default parser is not correctly rounded, so a float could
    /// come back from a checkpoint one unit in the last place off, and a resumed run differ
    /// from the uninterrupted one. Every float must come back bit for bit.
    #[test]
    fn every_float_comes_back_from_a_checkpoint_bit_for_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(25);
        let mut values: Vec<f64> = (0..20_000).map(|_| f64::from_bits(rng.gen::<u64>())).collect();
        values.extend((0..2_000).map(|_| f64::from_bits(rng.gen_range(1..1u64 << 52)))); // subnormals
        values.extend((0..2_000).map(|_| rng.gen::<f64>() * 10.0)); // losses
        values.extend([0.0, -0.0, f64::MIN_POSITIVE, f64::MAX, f64::MIN, f64::EPSILON, 5e-324, 5.7514900797382, 5.7514900797382005]);
        values.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
        let dir = tempfile::tempdir().unwrap();
        let c = FitCheckpoint {
            seq: 1,
            epochs: 1,
            done: false,
            epochs_done: 1,
            metrics_lines: 0,
            metric_steps: HashMap::new(),
            callbacks: BTreeMap::from([("values".to_string(), Value::Array(values.iter().map(|&v| json_f64(v)).collect()))]),
        };
        std::fs::create_dir_all(dir.path().join(RESUME_DIR)).unwrap();
        write(dir.path(), &c).unwrap();
        let back = read(dir.path(), 1).unwrap().unwrap();
        let got: Vec<f64> = back.callbacks["values"].as_array().unwrap().iter().map(|v| f64_of_json(v).unwrap()).collect();
        assert_eq!(got.len(), values.len());
        for (a, b) in values.iter().zip(&got) {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{a:e} came back as {b:e}");
        }
        // The smoothed loss, as the recorder keeps it (NaN included).
        for x in [5.7514900797382005, 1e-300, f64::NAN] {
            let mut s = SmoothLoss::default();
            s.add(x);
            s.add(x / 3.0);
            let text = serde_json::to_string_pretty(&s.state()).unwrap();
            let r = SmoothLoss::restore(&serde_json::from_str(&text).unwrap()).unwrap();
            assert!(r.value().to_bits() == s.value().to_bits() || r.value().is_nan() && s.value().is_nan(), "{x}");
        }
    }
}
