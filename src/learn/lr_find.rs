//! `lr_find`: train with exponentially rising learning rates (1e-7 -> 10 over 100
//! batches), stop when the smoothed loss passes 4x its best, then put the weights and
//! optimizer state back as they were. Returns fastai's suggestions; saves the curve.
use super::fit::SmoothLoss;
use super::learner::Learner;
use super::schedule;
use super::suggest;
use crate::track::metrics::json_f64;
use anyhow::{bail, Result};
use serde_json::Map;
use std::path::PathBuf;
use tch::Tensor;

#[derive(Debug, Clone)]
pub struct LrFindOptions {
    pub start_lr: f64,
    pub end_lr: f64,
    pub num_it: usize,
    pub stop_div: bool,
}

impl Default for LrFindOptions {
    fn default() -> Self {
        LrFindOptions { start_lr: 1e-7, end_lr: 10.0, num_it: 100, stop_div: true }
    }
}

#[derive(Debug, Clone)]
pub struct LrFindResult {
    pub lrs: Vec<f64>,
    pub losses: Vec<f64>,
    pub valley: f64,
    pub minimum: f64,
    pub steep: f64,
    pub plot: Option<PathBuf>,
}

impl Learner {
    pub fn lr_find(&mut self, o: &LrFindOptions) -> Result<LrFindResult> {
        if self.data.train_len() == 0 {
            bail!("lr_find: no training batches (the training set is smaller than one batch)");
        }
        let weights: Vec<(String, Tensor)> = self.model.vs.variables().into_iter().map(|(k, v)| (k, v.copy())).collect();
        let opt_state = self.opt.snapshot();
        let saved_mom = self.opt.mom;
        let result = self.sweep(o);
        tch::no_grad(|| {
            let vars = self.model.vs.variables();
            for (k, w) in &weights {
                vars[k].shallow_clone().copy_(w);
            }
        });
        self.opt.load_state(opt_state)?;
        self.opt.mom = saved_mom;
        let (lrs, losses) = result?;
        let (tl, tloss) = suggest::trim(&lrs, &losses, o.num_it);
        let pick = |r: Option<(f64, usize)>| r.map(|(lr, _)| lr).unwrap_or(f64::NAN);
        let valley = pick(suggest::valley(&tl, &tloss));
        let minimum = pick(suggest::minimum(&tl, &tloss));
        let steep = pick(suggest::steep(&tl, &tloss));
        let mut rec = Map::new();
        rec.insert("kind".into(), "lr_find".into());
        rec.insert("valley".into(), json_f64(valley));
        rec.insert("minimum".into(), json_f64(minimum));
        rec.insert("steep".into(), json_f64(steep));
        self.record(rec)?;
        let plot = if self.out.metrics.is_some() {
            let path = self.out.dir.join("lr_find.png");
            let at = |lr: f64| {
                let i = tl.iter().position(|x| *x >= lr).unwrap_or(tl.len().saturating_sub(1));
                (lr, tloss.get(i).copied().unwrap_or(f64::NAN))
            };
            let marks: Vec<crate::plot::Mark> = [("valley", valley), ("minimum/10", minimum), ("steep", steep)]
                .into_iter()
                .filter(|(_, lr)| lr.is_finite())
                .map(|(n, lr)| crate::plot::Mark { label: format!("{n} {lr:.2e}"), at: at(lr) })
                .collect();
            let series =
                vec![crate::plot::Series { name: "smoothed loss".into(), points: lrs.iter().copied().zip(losses.iter().copied()).collect() }];
            crate::plot::line_chart(&path, "lr_find", "learning rate (log)", "loss", series, marks, true)?;
            Some(path)
        } else {
            None
        };
        Ok(LrFindResult { lrs, losses, valley, minimum, steep, plot })
    }

    fn sweep(&mut self, o: &LrFindOptions) -> Result<(Vec<f64>, Vec<f64>)> {
        self.fits += 1;
        let n_iter = self.data.train_len();
        let mut smooth = SmoothLoss::default();
        let mut best = f64::INFINITY;
        let (mut lrs, mut losses) = (Vec::new(), Vec::new());
        let mut it = 0;
        let mut epoch = self.epochs_done;
        let data = self.data.clone();
        'outer: loop {
            for batch in data.train(epoch)? {
                if crate::session::interrupted() {
                    bail!("interrupted by Ctrl-C during lr_find");
                }
                let lr = schedule::exp(o.start_lr, o.end_lr, it as f64 / o.num_it as f64);
                self.opt.lrs = vec![lr; self.n_groups()];
                self.opt.mom = 0.9;
                let batch = batch?;
                let y = super::data::as_targets(&batch.y);
                let loss = self.train_step(&batch.xs, &y, None)?;
                let s = smooth.add(loss);
                lrs.push(lr);
                losses.push(s);
                it += 1;
                if s < best {
                    best = s;
                }
                if o.stop_div && (s > 4.0 * best || !s.is_finite()) {
                    break 'outer;
                }
                if it >= o.num_it {
                    break 'outer;
                }
            }
            epoch += 1;
            if n_iter == 0 {
                break;
            }
        }
        Ok((lrs, losses))
    }
}
