//! `Learner`: a model, its data, a loss, metrics and an optimizer over the splitter's
//! parameter groups; freezing, learning-rate specs, checkpoints and predictions.
//! The training loop lives in `fit.rs`, its callbacks in `callbacks/`.
use super::data::{LearnData, TargetKind};
use super::loss::Loss;
use super::metrics::ExtraMetrics;
use super::metrics::{Metric, MetricName};
use super::optimizer::{OptKind, Optimizer, Param};
use super::state::FitState;
use crate::dist::ProcessGroup;
use crate::model::{Model, Splitter};
use crate::precision::Precision;
use crate::track::MetricsLog;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tch::Tensor;

/// Learning rates for the parameter groups, as fastai accepts them.
#[derive(Debug, Clone, PartialEq)]
pub enum Lrs {
    /// One rate for every group.
    One(f64),
    /// One rate per group.
    PerGroup(Vec<f64>),
    /// `slice(lo, hi)`: geometric from `lo` (first group) to `hi` (last).
    Slice(f64, f64),
    /// `slice(hi)`: `hi / 10` for every group but the last, which gets `hi`.
    SliceHi(f64),
}

/// A learning rate must be a finite number: NaN or an infinity would only be caught by the
/// NaN guard after the first batch, with the weights already ruined.
pub fn check_lr(lr: f64, what: &str) -> Result<()> {
    if !lr.is_finite() {
        bail!("{what} {lr} is not a finite number");
    }
    Ok(())
}

impl Lrs {
    /// The rate of each of `n` parameter groups; non-finite rates are refused, given or computed.
    pub fn for_groups(&self, n: usize) -> Result<Vec<f64>> {
        let given = match self {
            Lrs::One(lr) | Lrs::SliceHi(lr) => vec![*lr],
            Lrs::PerGroup(v) => v.clone(),
            Lrs::Slice(lo, hi) => vec![*lo, *hi],
        };
        for lr in given {
            check_lr(lr, "learning rate")?;
        }
        let v = self.spread(n)?;
        if v.iter().any(|x| !x.is_finite()) {
            bail!("{self:?} gives learning rates {v:?} for {n} parameter groups, not all finite (slice(lo, hi) needs lo > 0)");
        }
        Ok(v)
    }

    fn spread(&self, n: usize) -> Result<Vec<f64>> {
        Ok(match self {
            Lrs::One(lr) => vec![*lr; n],
            Lrs::PerGroup(v) if v.len() == n => v.clone(),
            Lrs::PerGroup(v) => bail!("{} learning rates given for {n} parameter groups", v.len()),
            Lrs::Slice(_, hi) | Lrs::SliceHi(hi) if n == 1 => vec![*hi],
            Lrs::Slice(lo, hi) => {
                let step = (hi / lo).powf(1.0 / (n as f64 - 1.0));
                (0..n).map(|i| lo * step.powi(i as i32)).collect()
            }
            Lrs::SliceHi(hi) => {
                let mut v = vec![hi / 10.0; n - 1];
                v.push(*hi);
                v
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct LearnerOptions {
    pub loss: Option<Loss>,
    pub metrics: Vec<MetricName>,
    pub splitter: Splitter,
    pub opt: OptKind,
    pub wd: f64,
    pub wd_bn_bias: bool,
    pub train_bn: bool,
    /// p(same) at which a two-class model says "same", the probability above which a
    /// multi-label model predicts a label (default 0.5); see `set_threshold`.
    pub threshold: Option<f64>,
    /// float32 or bf16 mixed precision (with channels_last where it helps), or auto.
    pub precision: Precision,
    /// In a data-parallel run, BatchNorm statistics over the whole group's batch (fastai's
    /// `sync_bn=True`); false keeps each rank's own, and rank 0's are used to validate.
    pub sync_bn: bool,
}

impl Default for LearnerOptions {
    fn default() -> Self {
        LearnerOptions {
            loss: None,
            metrics: vec![],
            splitter: Splitter::BodyHead,
            opt: OptKind::Adam { sqr_mom: 0.99, eps: 1e-5 },
            wd: 0.01,
            wd_bn_bias: false,
            train_bn: true,
            threshold: None,
            precision: crate::precision::DEFAULT,
            sync_bn: true,
        }
    }
}

/// Where a learner writes (the run folder for checkpoints and plots, its metrics log) and
/// how it learns that the process was asked to stop (the signal's name, e.g. `Ctrl-C`).
#[derive(Clone)]
pub struct RunOut {
    pub dir: PathBuf,
    pub metrics: Option<Arc<MetricsLog>>,
    /// The run's record, where fits note what they trained with and their metrics' goals.
    pub record: Option<Arc<crate::track::LiveRecord>>,
    pub interrupted: fn() -> Option<&'static str>,
    /// Fits of the run so far, over all its learners (names their resume checkpoints).
    pub fits: Arc<AtomicUsize>,
    /// The data-parallel group the run trains in (None: one process).
    pub group: Option<Arc<ProcessGroup>>,
}

impl RunOut {
    /// Outside a run: no folder of its own, no log, never interrupted.
    pub fn detached(dir: impl Into<PathBuf>) -> RunOut {
        RunOut { dir: dir.into(), metrics: None, record: None, interrupted: || None, fits: Arc::default(), group: None }
    }

    /// Numbers a new fit of the run: 1, 2, ...
    pub fn next_fit(&self) -> usize {
        self.fits.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// Validation outputs item by item, in the validation set's order.
pub struct ValidItems {
    /// Each item's loss `[N]`.
    pub losses: Tensor,
    /// Class probabilities `[N, C]` (the threshold applied); label probabilities `[N, C]`;
    /// numbers `[N, k]` (see `Loss::probs`).
    pub probs: Tensor,
    /// Int64 classes `[N]`, or float rows `[N, k]` (numbers, multi-hot label sets).
    pub targets: Tensor,
    /// The logit of "same" `[N]`, unbiased, for two-class outputs (None otherwise).
    pub same_logits: Option<Tensor>,
}

/// Episodes feed a prototypical network of the same shape, and only episodes do: any
/// other pairing would misread the batch (support images as items, targets per query).
fn check_episodes(model: &Model, data: &dyn LearnData) -> Result<()> {
    match (data.episodes(), model.episode_shape()) {
        (Some(e), Some((n, k))) if (e.n_way, e.k_shot) != (n, k) => bail!(
            "the protonet is {n}-way {k}-shot but the episode loaders give {}-way {}-shot episodes: give both the same n_way and k_shot",
            e.n_way,
            e.k_shot
        ),
        (Some(_), None) => bail!("episode loaders feed a protonet(body, #{{n_way, k_shot}}) model, not a {}", model.kind()),
        (None, Some(_)) => bail!("a protonet model trains on episodes: build its data with episode_loaders(...)"),
        _ => Ok(()),
    }
}

/// Items `predict_batch` runs through the model at once.
pub const PREDICT_BS: usize = 64;

/// One item's prediction, as fastai's `predict` decodes it for its targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// The most likely class, its index, and every class's probability.
    Class { label: String, index: usize, probs: Vec<f64> },
    /// The labels whose probability exceeds the threshold, their indices, and every
    /// label's probability.
    Labels { labels: Vec<String>, indices: Vec<usize>, probs: Vec<f64> },
    /// The predicted numbers, one per output.
    Values(Vec<f64>),
}

pub struct Learner {
    pub model: Rc<Model>,
    pub data: Rc<dyn LearnData>,
    /// This rank's share of `data`, which the loop trains and validates on, in a
    /// data-parallel run.
    shard: Option<Rc<dyn LearnData>>,
    pub sync_bn: bool,
    pub loss: Loss,
    pub metrics: Vec<Box<dyn Metric>>,
    pub opt: Optimizer,
    pub train_bn: bool,
    pub out: RunOut,
    /// Number of leading groups that are frozen.
    pub frozen_to: usize,
    /// Epochs trained so far (varies shuffles across fits).
    pub epochs_done: usize,
    /// Fits (and lr_finds) so far, to tell their records apart.
    pub fits: usize,
    pub seed: u64,
    /// bf16 mixed precision for every forward pass (fastai's `to_bf16`).
    pub bf16: bool,
    /// Conv weights and training inputs in NHWC memory order in every fit.
    pub channels_last: bool,
    /// The running fit's position and values, for its callbacks.
    pub state: FitState,
    /// p(same) at which a two-class model says "same" (a multi-label model: a label is
    /// predicted); None means 0.5.
    threshold: Option<f64>,
    /// What the data's targets are (classes, numbers, label sets).
    pub targets: TargetKind,
}

impl Learner {
    pub fn new(model: Rc<Model>, data: Rc<dyn LearnData>, opts: LearnerOptions, out: RunOut, seed: u64) -> Result<Learner> {
        let targets = data.target_kind();
        let loss = opts.loss.unwrap_or_else(|| Loss::default_for(&model, targets));
        loss.check(model.output(), targets)?;
        if let Some(shape) = data.input_shape() {
            model.body.check_input(&shape)?;
        }
        check_episodes(&model, data.as_ref())?;
        let metrics: Vec<Box<dyn Metric>> = opts.metrics.iter().map(|m| m.build()).collect();
        if let Some(m) = metrics.iter().find(|m| m.targets() != targets) {
            bail!("metric `{}` measures {}, but these loaders give {targets}: use {}", m.name(), m.targets(), MetricName::names_for(targets));
        }
        let groups = model.split(opts.splitter)?;
        let vars = model.vs.variables();
        let groups: Vec<Vec<Param>> = groups
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .map(|name| {
                        let decay = opts.wd_bn_bias || !(model.is_bn(&name) || name.ends_with(".bias"));
                        Param { tensor: vars[&name].shallow_clone(), name, decay }
                    })
                    .collect()
            })
            .collect();
        let opt = Optimizer::new(opts.opt, groups, opts.wd);
        let precision = opts.precision.resolve(model.device());
        let shard = match &out.group {
            Some(g) => Some(data.shard(g.rank(), g.world())?),
            None => None,
        };
        let mut learn = Learner {
            model,
            data,
            shard,
            sync_bn: opts.sync_bn,
            loss,
            metrics,
            opt,
            train_bn: opts.train_bn,
            out,
            frozen_to: 0,
            epochs_done: 0,
            fits: 0,
            seed,
            bf16: precision.bf16(),
            channels_last: precision.channels_last,
            state: FitState::new(0, 0, 0),
            threshold: None,
            targets,
        };
        if let Some(t) = opts.threshold {
            learn.set_threshold(t)?;
        }
        Ok(learn)
    }

    /// A class head must output one logit per class: checked on the host before the first
    /// loss, since on CUDA a target past the logits is a device-side assert that poisons
    /// the process.
    pub fn check_output(&self, pred: &Tensor) -> Result<()> {
        let want = self.data.vocab().len() as i64;
        let what = match self.targets {
            TargetKind::Classes => format!("{want} classes"),
            TargetKind::MultiHot => format!("{want} labels"),
            TargetKind::Floats => format!("{want} number(s) per item to regress"),
        };
        match (self.model.output(), pred.size().as_slice()) {
            (crate::model::Output::Logits, [_, n]) if *n != want => {
                bail!("the model outputs {n} values per item, but the data has {what}: give create_head n_out = {want}")
            }
            _ => Ok(()),
        }
    }

    /// What the loop trains and validates on: this rank's share in a data-parallel run,
    /// else all the data.
    pub fn loop_data(&self) -> Rc<dyn LearnData> {
        self.shard.clone().unwrap_or_else(|| self.data.clone())
    }

    /// The data-parallel group this learner trains in, if any.
    pub fn group(&self) -> Option<&Arc<ProcessGroup>> {
        self.out.group.as_ref()
    }

    pub fn n_groups(&self) -> usize {
        self.opt.groups.len()
    }

    /// Freezes every group before `n` (negative counts from the end), keeping BatchNorm
    /// parameters trainable when `train_bn`; resets the optimizer state as fastai does.
    pub fn freeze_to(&mut self, n: i64) {
        let g = self.n_groups() as i64;
        let n = if n < 0 { g + n } else { n }.clamp(0, g) as usize;
        for (gi, group) in self.opt.groups.iter().enumerate() {
            for p in group {
                let trains = gi >= n || (self.train_bn && self.model.is_bn(&p.name));
                let _ = p.tensor.shallow_clone().set_requires_grad(trains);
            }
        }
        self.frozen_to = n;
        self.opt.reset_state();
    }

    pub fn freeze(&mut self) {
        self.freeze_to(-1);
    }

    pub fn unfreeze(&mut self) {
        self.freeze_to(0);
    }

    pub fn metric_names(&self) -> Vec<String> {
        self.metrics.iter().map(|m| m.name()).collect()
    }

    /// The built-in metrics over validation probabilities and targets, in `metric_names` order.
    pub fn metric_values(&self, probs: &Tensor, targets: &Tensor) -> Vec<f64> {
        self.metrics.iter().map(|m| m.compute(probs, targets)).collect()
    }

    /// The built-in metrics by name, over any probabilities and targets (validation, tta).
    pub fn named_metrics(&self, probs: &Tensor, targets: &Tensor) -> Vec<(String, f64)> {
        self.metric_names().into_iter().zip(self.metric_values(probs, targets)).collect()
    }

    /// Logs one record to metrics.jsonl when the learner runs inside a run.
    pub fn record(&self, m: serde_json::Map<String, serde_json::Value>) -> Result<()> {
        match &self.out.metrics {
            Some(log) => log.write(m),
            None => Ok(()),
        }
    }

    fn checkpoint_path(&self, name: &str) -> PathBuf {
        crate::track::paths::model_file(Some(&self.out.dir), name)
    }

    /// Saves model and optimizer state (`models/<name>.safetensors` in the run folder).
    pub fn save(&self, name: &str) -> Result<PathBuf> {
        let model = self.checkpoint_path(name);
        self.save_to(&model)?;
        Ok(model)
    }

    /// Saves the weights to `model` and the optimizer state beside it, each written to a
    /// temporary file first: a process killed while saving leaves the previous checkpoint.
    pub fn save_to(&self, model: &Path) -> Result<()> {
        let opt = crate::track::paths::optimizer_file(model);
        let tmp = |p: &Path| p.with_extension("tmp.safetensors");
        self.model.save(&tmp(model))?;
        let state: Vec<(String, Tensor)> =
            self.opt.state_tensors().into_iter().map(|(k, t)| (k, t.to_device(tch::Device::Cpu).contiguous())).collect();
        Tensor::write_safetensors(&state, tmp(&opt)).with_context(|| format!("cannot save {}", opt.display()))?;
        std::fs::rename(tmp(model), model).with_context(|| format!("cannot write {}", model.display()))?;
        std::fs::rename(tmp(&opt), &opt).with_context(|| format!("cannot write {}", opt.display()))
    }

    /// Restores what `save` wrote (the optimizer state when present).
    pub fn load(&mut self, name: &str) -> Result<()> {
        self.load_from(&self.checkpoint_path(name))
    }

    /// Restores what `save_to` wrote.
    pub fn load_from(&mut self, model: &Path) -> Result<()> {
        let opt = crate::track::paths::optimizer_file(model);
        self.model.load(model)?;
        if opt.is_file() {
            let t = Tensor::read_safetensors(&opt).with_context(|| format!("cannot read {}", opt.display()))?;
            self.opt.load_state(t)?;
        } else {
            self.opt.reset_state();
        }
        Ok(())
    }

    /// Class probabilities and targets over the validation set.
    pub fn get_preds(&self) -> Result<(Tensor, Tensor)> {
        let (_, probs, targets) = self.validate()?;
        Ok((probs, targets))
    }

    /// The validation loss (the mean over items), probabilities and targets.
    pub fn validate(&self) -> Result<(f64, Tensor, Tensor)> {
        let v = self.valid_items()?;
        Ok((v.losses.mean(tch::Kind::Double).double_value(&[]), v.probs, v.targets))
    }

    /// Losses, probabilities and targets of every validation item, in order; in a
    /// data-parallel run each rank scores its share and the shares are gathered, so every
    /// rank has the whole validation set's (fastai's `to_detach` with `gather`).
    pub fn valid_items(&self) -> Result<ValidItems> {
        let (mut losses, mut probs, mut targets, mut logits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let two_class = self.is_two_class();
        let data = self.loop_data();
        tch::no_grad(|| -> Result<()> {
            for b in data.valid()? {
                let b = b?;
                let y = super::data::as_targets(&b.y, self.targets);
                let out = self.forward(&b.xs, false)?;
                losses.push(self.loss.per_item(&out, &y)?);
                probs.push(self.probs(&out));
                if let Some(l) = two_class.then(|| self.loss.same_logit(&out)).flatten() {
                    logits.push(l);
                }
                targets.push(y);
            }
            Ok(())
        })?;
        if targets.is_empty() {
            bail!("the validation set is empty");
        }
        let gather = |parts: &[Tensor]| -> Result<Tensor> {
            let local = Tensor::cat(parts, 0);
            match self.group() {
                Some(g) => crate::data::sampler::unshard(&g.allgather(&local)?, data.valid_len()),
                None => Ok(local),
            }
        };
        let same_logits = if two_class { Some(gather(&logits)?) } else { None };
        Ok(ValidItems { losses: gather(&losses)?, probs: gather(&probs)?, targets: gather(&targets)?, same_logits })
    }

    /// Class probabilities of model outputs, the decision threshold applied (two-class
    /// models; a multi-label model's threshold applies where labels are decided).
    pub fn probs(&self, out: &Tensor) -> Tensor {
        let bias = self.threshold.filter(|_| self.is_two_class()).map_or(0.0, |t| (t / (1.0 - t)).ln());
        self.loss.probs(out, bias)
    }

    /// Whether the model answers a yes/no question (pairs: same or different), so that a
    /// threshold on p(same) means something.
    pub fn is_two_class(&self) -> bool {
        self.targets == TargetKind::Classes && (self.model.output() != crate::model::Output::Logits || self.data.vocab().len() == 2)
    }

    /// The threshold when one was set (None: 0.5, the default).
    pub fn threshold_set(&self) -> Option<f64> {
        self.threshold
    }

    /// The p(same) above which a two-class model says "same" (0.5 unless set).
    pub fn threshold(&self) -> f64 {
        self.threshold.unwrap_or(0.5)
    }

    /// Moves the decision point of a two-class model: every metric, prediction and
    /// interpretation then calls an item "same" (class 1) when p(same) > `t`. For a
    /// multi-label model, predictions and the interpretation then give the labels whose
    /// probability exceeds `t` (the metrics keep their own `thresh`, as fastai's do).
    pub fn set_threshold(&mut self, t: f64) -> Result<()> {
        if !(t > 0.0 && t < 1.0) {
            bail!("threshold must be a probability strictly between 0 and 1, got {t}");
        }
        if let Loss::Custom(c) = &self.loss {
            bail!("a threshold needs probabilities, and the loss `{}` gives the model's raw outputs (as a plain function in fastai)", c.name);
        }
        if !self.is_two_class() && self.targets != TargetKind::MultiHot {
            bail!(
                "a threshold needs a two-class model (pairs: same/different) or label sets; this one has {} {}",
                self.data.vocab().len(),
                if self.targets == TargetKind::Floats { "output(s) of numbers" } else { "classes" }
            );
        }
        self.threshold = Some(t);
        Ok(())
    }

    /// Probabilities for inputs given as tensors (one batch per model input).
    pub fn predict(&self, xs: &[Tensor]) -> Result<Tensor> {
        tch::no_grad(|| Ok(self.probs(&self.forward(xs, false)?)))
    }

    /// fastai's `learn.predict` for one item given as image files (one per model input:
    /// one for a classifier, two for a Siamese model), prepared as the validation set is.
    pub fn predict_files(&self, files: &[PathBuf]) -> Result<Prediction> {
        Ok(self.predict_batch(&[files.to_vec()])?.remove(0))
    }

    /// Predictions for many items (each its files, one per model input), in batches of
    /// `PREDICT_BS` (fastai's `get_preds` over a `test_dl`).
    pub fn predict_batch(&self, items: &[Vec<PathBuf>]) -> Result<Vec<Prediction>> {
        let n = self.model.n_inputs();
        if let Some(item) = items.iter().find(|it| it.len() != n) {
            bail!("predict takes {n} file(s) for this model, got {}", item.len());
        }
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(PREDICT_BS) {
            let xs = (0..n)
                .map(|slot| self.data.encode_files(&chunk.iter().map(|it| it[slot].clone()).collect::<Vec<_>>()))
                .collect::<Result<Vec<_>>>()?;
            let probs = self.predict(&xs)?.to_kind(tch::Kind::Double).to_device(tch::Device::Cpu);
            for row in 0..chunk.len() as i64 {
                out.push(self.decode(Vec::<f64>::try_from(probs.get(row).flatten(0, -1))?));
            }
        }
        Ok(out)
    }

    /// One item's outputs decoded for the targets: a class, the labels over the threshold,
    /// or the numbers themselves.
    fn decode(&self, probs: Vec<f64>) -> Prediction {
        let vocab = self.data.vocab();
        let name = |i: usize| vocab.get(i).cloned().unwrap_or_else(|| i.to_string());
        match self.targets {
            TargetKind::Floats => Prediction::Values(probs),
            TargetKind::MultiHot => {
                let indices: Vec<usize> = (0..probs.len()).filter(|&i| probs[i] > self.threshold()).collect();
                Prediction::Labels { labels: indices.iter().map(|&i| name(i)).collect(), indices, probs }
            }
            TargetKind::Classes => {
                let best = (0..probs.len()).max_by(|&a, &b| probs[a].total_cmp(&probs[b])).unwrap_or(0);
                Prediction::Class { label: name(best), index: best, probs }
            }
        }
    }

    /// The validation loss and every metric, built-in then `extra`, as fastai's
    /// `learn.validate()` returns them: `[("valid_loss", ..), ("accuracy", ..), ...]`.
    pub fn evaluate(&self, extra: Option<&dyn ExtraMetrics>) -> Result<Vec<(String, f64)>> {
        let (loss, probs, targets) = self.validate()?;
        let mut out = vec![("valid_loss".to_string(), loss)];
        out.extend(self.named_metrics(&probs, &targets));
        if let Some(e) = extra {
            out.extend(e.names().into_iter().zip(e.compute(&probs, &targets)?));
        }
        Ok(out)
    }

    /// The model's output in float32, under bf16 autocast when `self.bf16`; in training
    /// mode of a data-parallel run, with BatchNorm synchronised over the group (`sync_bn`).
    pub fn forward(&self, xs: &[Tensor], train: bool) -> Result<Tensor> {
        let run = || crate::torch_ext::maybe_bf16(self.bf16, self.model.device(), || self.model.forward(xs, train));
        let out = match self.group().filter(|_| train && self.sync_bn) {
            Some(g) => crate::dist::sync_bn::with_sync_bn(g, run)??,
            None => run()?,
        };
        Ok(out.to_kind(tch::Kind::Float))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_learning_rates_are_refused_by_value() {
        for (lrs, want) in [
            (Lrs::One(f64::NAN), "learning rate NaN is not a finite number"),
            (Lrs::One(f64::NEG_INFINITY), "learning rate -inf is not a finite number"),
            (Lrs::PerGroup(vec![1e-3, f64::INFINITY]), "learning rate inf is not a finite number"),
            (Lrs::Slice(0.0, 1e-3), "not all finite (slice(lo, hi) needs lo > 0)"),
        ] {
            let e = lrs.for_groups(2).unwrap_err().to_string();
            assert!(e.contains(want), "{lrs:?}: {e}");
        }
        assert_eq!(Lrs::Slice(1e-4, 1e-2).for_groups(3).unwrap().len(), 3);
    }
}
