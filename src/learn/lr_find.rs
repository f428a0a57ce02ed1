//! `lr_find`: a fit with the `LrFinder` callback (fastai's design: no second loop), then
//! fastai's suggestions from the recorded curve, a metrics.jsonl row and `lr_find.png`.
use super::callback::Callback;
use super::callbacks::{DataParallel, Interrupt, LrFinder, ProgressCb, Recorder};
use super::fit::FitOptions;
use super::learner::Learner;
use super::suggest;
use crate::track::metrics::json_f64;
use anyhow::{bail, Result};
use serde_json::Map;
use std::path::PathBuf;

pub use super::callbacks::lr_finder::LrFindOptions;

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
        let n_iter = self.loop_data().train_len();
        if n_iter == 0 {
            bail!("lr_find: no training batches (the training set is smaller than one batch)");
        }
        super::learner::check_lr(o.start_lr, "lr_find start_lr")?;
        super::learner::check_lr(o.end_lr, "lr_find end_lr")?;
        let mut finder = LrFinder::new(o.clone());
        let (mut recorder, mut progress, mut interrupt) = (Recorder::new(false), ProgressCb::whole("lr_find", o.num_it), Interrupt { save: false });
        let mut parallel = self.group().cloned().map(DataParallel::new);
        let mut cbs: Vec<&mut dyn Callback> = vec![&mut finder, &mut recorder, &mut progress, &mut interrupt];
        if let Some(p) = parallel.as_mut() {
            cbs.push(p);
        }
        let result = self.run_fit(0, o.num_it.div_ceil(n_iter), &FitOptions::default(), &mut cbs);
        drop(cbs);
        finder.restore(self)?;
        result?;
        let (lrs, losses) = (finder.lrs, finder.losses);
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
            // Cut before the blow-up (fastai's plot), so the useful part is not flattened.
            let shown = suggest::plot_end(&losses);
            let points = lrs.iter().copied().zip(losses.iter().copied()).take(shown).collect();
            let series = vec![crate::plot::Series { name: "smoothed loss".into(), points }];
            crate::plot::line_chart(&path, "lr_find", "learning rate (log)", "loss", series, marks, true)?;
            Some(path)
        } else {
            None
        };
        Ok(LrFindResult { lrs, losses, valley, minimum, steep, plot })
    }
}
