//! The training loop: per-batch hyper-parameter schedule, forward/backward/step, fastai's
//! smoothed train loss, validation and metrics per epoch, a table row, records in
//! metrics.jsonl, a checkpoint after every epoch, and a loss-curve PNG at the end.
//! Stops cleanly on NaN/inf loss or Ctrl-C, keeping the last good checkpoint.
use super::learner::{Learner, Lrs};
use super::progress::{EpochTable, Progress, TerminalBar};
use super::schedule::OneCycle;
use crate::track::metrics::json_f64;
use anyhow::{bail, Result};
use serde_json::Map;
use std::time::Instant;
use tch::Tensor;

/// fastai's `AvgSmoothLoss`: exponential moving average (beta 0.98), debiased.
#[derive(Default)]
pub struct SmoothLoss {
    val: f64,
    count: i32,
}

impl SmoothLoss {
    pub const BETA: f64 = 0.98;
    pub fn add(&mut self, loss: f64) -> f64 {
        self.count += 1;
        self.val = Self::BETA * self.val + (1.0 - Self::BETA) * loss;
        self.value()
    }
    pub fn value(&self) -> f64 {
        self.val / (1.0 - Self::BETA.powi(self.count))
    }
}

/// Metrics computed outside Rust (script closures), given the validation predictions.
pub trait ExtraMetrics {
    fn names(&self) -> Vec<String>;
    fn compute(&self, probs: &Tensor, targets: &Tensor) -> Result<Vec<f64>>;
}

pub struct NoExtra;

impl ExtraMetrics for NoExtra {
    fn names(&self) -> Vec<String> {
        vec![]
    }
    fn compute(&self, _: &Tensor, _: &Tensor) -> Result<Vec<f64>> {
        Ok(vec![])
    }
}

/// Options of one fit.
#[derive(Debug, Clone, Default)]
pub struct FitOptions {
    pub wd: Option<f64>,
    pub grad_clip: Option<f64>,
    /// Stop when `monitor` has not improved for `patience` epochs.
    pub early_stopping: Option<(String, usize)>,
    /// Save `models/best` whenever this column improves; reload it at the end.
    pub save_best: Option<String>,
    /// Inputs and conv weights in NHWC memory order (faster convolutions on GPU).
    pub channels_last: bool,
    /// bf16 mixed precision for this fit (see `Learner::bf16`).
    pub bf16: bool,
}

impl Learner {
    /// `fit_one_cycle(n_epoch, lr_max)`: fastai's one-cycle schedule, per batch.
    pub fn fit_one_cycle(&mut self, epochs: usize, lrs: &Lrs, cycle: OneCycle, opts: &FitOptions, extra: &dyn ExtraMetrics) -> Result<()> {
        let maxes = lrs.for_groups(self.n_groups())?;
        let cycles: Vec<OneCycle> = maxes.iter().map(|&m| OneCycle { lr_max: m, ..cycle }).collect();
        self.fit_with(epochs, &|pos| (cycles.iter().map(|c| c.lr(pos)).collect(), cycles[0].mom(pos)), opts, extra)
    }

    /// `fit(n_epoch, lr)`: constant learning rates, momentum 0.9.
    pub fn fit(&mut self, epochs: usize, lrs: &Lrs, opts: &FitOptions, extra: &dyn ExtraMetrics) -> Result<()> {
        let v = lrs.for_groups(self.n_groups())?;
        self.fit_with(epochs, &|_| (v.clone(), 0.9), opts, extra)
    }

    /// fastai's `fine_tune`: one frozen one-cycle epoch (pct_start 0.99), then unfrozen
    /// one-cycle epochs at `slice(base_lr/2/lr_mult, base_lr/2)`.
    pub fn fine_tune(&mut self, epochs: usize, base_lr: f64, freeze_epochs: usize, opts: &FitOptions, extra: &dyn ExtraMetrics) -> Result<()> {
        self.freeze();
        let frozen = OneCycle { pct_start: 0.99, ..OneCycle::new(base_lr) };
        self.fit_one_cycle(freeze_epochs, &Lrs::SliceHi(base_lr), frozen, opts, extra)?;
        let base_lr = base_lr / 2.0;
        self.unfreeze();
        let cycle = OneCycle { pct_start: 0.3, div: 5.0, ..OneCycle::new(base_lr) };
        self.fit_one_cycle(epochs, &Lrs::Slice(base_lr / 100.0, base_lr), cycle, opts, extra)
    }

    /// One training step; returns the batch loss.
    pub fn train_step(&mut self, xs: &[Tensor], y: &Tensor, grad_clip: Option<f64>) -> Result<f64> {
        let out = self.forward(xs, true)?;
        let loss = self.loss.compute(&out, y);
        self.opt.zero_grad();
        loss.f_backward().map_err(|e| anyhow::anyhow!("backward failed: {e}"))?;
        if let Some(max) = grad_clip {
            clip_grad_norm(&self.opt, max);
        }
        self.opt.step();
        Ok(loss.double_value(&[]))
    }

    /// The loop every fit shares; `sched(pos)` gives per-group lrs and momentum at
    /// training position `pos` in [0, 1).
    pub fn fit_with(&mut self, epochs: usize, sched: &dyn Fn(f64) -> (Vec<f64>, f64), opts: &FitOptions, extra: &dyn ExtraMetrics) -> Result<()> {
        if opts.channels_last {
            self.model.to_channels_last();
        }
        let saved = self.bf16;
        self.bf16 |= opts.bf16;
        let result = self.fit_loop(epochs, sched, opts, extra);
        self.bf16 = saved;
        result
    }

    fn fit_loop(&mut self, epochs: usize, sched: &dyn Fn(f64) -> (Vec<f64>, f64), opts: &FitOptions, extra: &dyn ExtraMetrics) -> Result<()> {
        let n_iter = self.data.train_len();
        if n_iter == 0 {
            bail!("no training batches: the training set is smaller than one batch (drop_last)");
        }
        if let Some(wd) = opts.wd {
            self.opt.wd = wd;
        }
        self.fits += 1;
        let fit = self.fits;
        let total = (epochs * n_iter) as f64;
        let mut names = self.metric_names();
        names.extend(extra.names());
        let table = EpochTable::new(&names);
        let mut bar = TerminalBar::default();
        let mut smooth = SmoothLoss::default();
        let mut save_best = opts.save_best.as_ref().map(|c| Watch { column: c.clone(), best: None });
        let mut early = opts.early_stopping.as_ref().map(|(c, p)| (Watch { column: c.clone(), best: None }, *p));
        let mut since_best = 0;
        let mut curve: Vec<(f64, f64)> = Vec::new();
        let mut valid_curve: Vec<(f64, f64)> = Vec::new();
        for epoch in 0..epochs {
            let t0 = Instant::now();
            bar.start(n_iter, &format!("epoch {}/{epochs}", epoch + 1));
            let data = self.data.clone();
            for (b, batch) in data.train(self.epochs_done)?.enumerate() {
                if crate::session::interrupted() {
                    bar.finish();
                    let at = self.save("last")?;
                    bail!("interrupted by Ctrl-C at epoch {epoch}, batch {b}; weights saved to {}", at.display());
                }
                let pos = (epoch * n_iter + b) as f64 / total;
                let (lrs, mom) = sched(pos);
                self.opt.lrs = lrs;
                self.opt.mom = mom;
                let batch = batch?;
                let y = super::data::as_targets(&batch.y);
                let xs: Vec<Tensor> = if opts.channels_last { batch.xs.iter().map(crate::model::channels_last).collect() } else { batch.xs };
                let loss = self.train_step(&xs, &y, opts.grad_clip)?;
                if !loss.is_finite() {
                    bar.finish();
                    bail!(
                        "loss is {loss} at epoch {epoch}, batch {b} (lr {:.3e}); training stopped{}",
                        self.opt.lrs.last().unwrap_or(&0.0),
                        if self.epochs_done > 0 { "; the last good weights are in models/last.safetensors" } else { "" }
                    );
                }
                let s = smooth.add(loss);
                bar.tick(s);
                let it = epoch * n_iter + b;
                curve.push((it as f64, s));
                let mut rec = Map::new();
                rec.insert("kind".into(), "batch".into());
                rec.insert("fit".into(), fit.into());
                rec.insert("iter".into(), it.into());
                rec.insert("lr".into(), json_f64(*self.opt.lrs.last().unwrap_or(&0.0)));
                rec.insert("mom".into(), json_f64(mom));
                rec.insert("loss".into(), json_f64(loss));
                rec.insert("smooth_loss".into(), json_f64(s));
                self.record(rec)?;
            }
            bar.finish();
            self.epochs_done += 1;
            let (valid_loss, probs, targets) = self.validate()?;
            let mut values = vec![smooth.value(), valid_loss];
            values.extend(self.metrics.iter().map(|m| m.compute(&probs, &targets)));
            values.extend(extra.compute(&probs, &targets)?);
            let secs = t0.elapsed().as_secs_f64();
            table.row(epoch, &values, secs);
            valid_curve.push((((epoch + 1) * n_iter) as f64 - 1.0, valid_loss));
            let mut rec = Map::new();
            rec.insert("kind".into(), "epoch".into());
            rec.insert("fit".into(), fit.into());
            rec.insert("epoch".into(), epoch.into());
            let columns: Vec<String> = ["train_loss".to_string(), "valid_loss".into()].into_iter().chain(names.iter().cloned()).collect();
            for (c, v) in columns.iter().zip(&values) {
                rec.insert(c.clone(), json_f64(*v));
            }
            self.record(rec)?;
            tracing::info!(fit, epoch, seconds = secs, "epoch done");
            if self.out.metrics.is_some() {
                self.save("last")?;
            }
            if let Some(t) = save_best.as_mut() {
                if t.improved(&columns, &values)? {
                    self.save("best")?;
                }
            }
            if let Some((t, patience)) = early.as_mut() {
                if t.improved(&columns, &values)? {
                    since_best = 0;
                } else {
                    since_best += 1;
                }
                if since_best >= *patience {
                    println!("No improvement in {} for {patience} epochs: stopping at epoch {epoch}.", t.column);
                    break;
                }
            }
        }
        if save_best.is_some_and(|t| t.best.is_some()) {
            self.load("best")?;
        }
        if self.out.metrics.is_some() {
            let path = self.out.dir.join(format!("loss_fit{fit}.png"));
            let series = vec![
                crate::plot::Series { name: "train (smoothed)".into(), points: curve },
                crate::plot::Series { name: "valid".into(), points: valid_curve },
            ];
            crate::plot::line_chart(&path, &format!("losses, fit {fit}"), "iteration", "loss", series, vec![], false)?;
        }
        Ok(())
    }
}

/// The best value so far of one column of the epoch table.
struct Watch {
    column: String,
    best: Option<f64>,
}

impl Watch {
    /// Whether this epoch's value beats the best so far (lower for losses and error rates).
    fn improved(&mut self, columns: &[String], values: &[f64]) -> Result<bool> {
        let Some(i) = columns.iter().position(|c| *c == self.column) else {
            bail!("cannot monitor `{}`: the columns are {}", self.column, columns.join(", "));
        };
        let v = values[i];
        let better = match self.best {
            None => true,
            Some(b) if crate::track::compare::lower_is_better(&self.column) => v < b,
            Some(b) => v > b,
        };
        if better {
            self.best = Some(v);
        }
        Ok(better)
    }
}

fn clip_grad_norm(opt: &super::optimizer::Optimizer, max: f64) {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = opt.groups.iter().flatten().map(|p| p.tensor.grad()).filter(|g| g.defined()).collect();
        let total: f64 = grads.iter().map(|g| g.square().sum(tch::Kind::Double).double_value(&[])).sum::<f64>().sqrt();
        if total > max {
            let scale = max / (total + 1e-6);
            for mut g in grads {
                let _ = g.g_mul_scalar_(scale);
            }
        }
    });
}
