//! Each callback of the training loop on a toy learner, without Rhai: the scheduler gives
//! fastai's closed forms, early stopping stops at the right epoch, the LR finder restores
//! every weight, cancelling a batch skips its step, interruption keeps a checkpoint, every
//! batch loss is read back once, one batch late.
use anyhow::Result;
use runner::learn::callback::{Callback, Cancel, Event};
use runner::learn::callbacks::{EarlyStopping, LrFinder, Recorder};
use runner::learn::fit::{EarlyStop, FitOptions};
use runner::learn::learner::RunOut;
use runner::learn::lr_find::LrFindOptions;
use runner::learn::metrics::MetricName;
use runner::learn::schedule::OneCycle;
use runner::learn::{Learner, LearnerOptions, Lrs, TargetKind, TensorData};
use runner::model::convnet::{ConvNetSpec, Padding};
use runner::model::{BodySpec, Model, Splitter};
use std::collections::HashMap;
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

/// A 3-class toy classifier on 8x8 images: 96 training items (6 batches of 16), 32 valid.
fn toy(dir: &std::path::Path) -> Learner {
    tch::manual_seed(0);
    let templates = Tensor::randn([3, 3, 8, 8], (Kind::Float, Device::Cpu));
    let draw = |n: i64, seed: i64| {
        tch::manual_seed(seed);
        let c = Tensor::randint(3, [n], (Kind::Int64, Device::Cpu));
        (templates.index_select(0, &c) + Tensor::randn([n, 3, 8, 8], (Kind::Float, Device::Cpu)) * 0.5, c)
    };
    let ((x, y), (vx, vy)) = (draw(96, 1), draw(32, 2));
    let data = TensorData {
        train_x: vec![x],
        train_y: y,
        valid_x: vec![vx],
        valid_y: vy,
        bs: 16,
        seed: 3,
        device: Device::Cpu,
        vocab: vec!["a".into(), "b".into(), "c".into()],
        targets: TargetKind::Classes,
    };
    let body = BodySpec::ConvNet(ConvNetSpec {
        in_channels: 3,
        channels: vec![8],
        kernels: vec![3],
        pool: vec![true],
        batch_norm: true,
        embed: 16,
        sigmoid: false,
        input: (8, 8),
        padding: Padding::Same,
    });
    tch::manual_seed(0);
    let model = Model::cosine_classifier(&body, 3, 10.0, Device::Cpu).unwrap();
    let opts = LearnerOptions { metrics: vec![MetricName::Accuracy], splitter: Splitter::None, ..Default::default() };
    Learner::new(Rc::new(model), Rc::new(data), opts, RunOut::detached(dir), 3).unwrap()
}

fn weights(l: &Learner) -> HashMap<String, Tensor> {
    l.model.vs.variables().into_iter().map(|(k, v)| (k, v.copy())).collect()
}

/// Records what it sees at each event, to check the loop from outside.
#[derive(Default)]
struct Spy {
    lrs: Vec<f64>,
    moms: Vec<f64>,
    epochs: Vec<usize>,
    after_batches: usize,
    stepped: usize,
    losses_read: usize,
    events: Vec<Event>,
}

impl Callback for Spy {
    fn before_fit(&mut self, _: &mut Learner) -> Result<()> {
        self.events.push(Event::BeforeFit);
        Ok(())
    }
    fn before_epoch(&mut self, l: &mut Learner) -> Result<()> {
        self.epochs.push(l.state.epoch);
        Ok(())
    }
    fn before_batch(&mut self, l: &mut Learner) -> Result<()> {
        self.lrs.push(l.opt.lrs[0]);
        self.moms.push(l.opt.mom);
        Ok(())
    }
    fn after_batch(&mut self, l: &mut Learner) -> Result<()> {
        self.after_batches += 1;
        self.stepped += l.state.stepped as usize;
        Ok(())
    }
    fn after_loss_read(&mut self, _: &mut Learner) -> Result<()> {
        self.losses_read += 1;
        Ok(())
    }
    fn after_fit(&mut self, _: &mut Learner) -> Result<()> {
        self.events.push(Event::AfterFit);
        Ok(())
    }
}

#[test]
fn scheduler_gives_one_cycle_closed_forms_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = toy(dir.path());
    let mut spy = Spy::default();
    let cycle = OneCycle::new(1e-2);
    l.fit_one_cycle(2, &Lrs::One(1e-2), cycle, &FitOptions::default(), &mut [&mut spy]).unwrap();
    let total = 2 * 6;
    assert_eq!(spy.lrs.len(), total, "one schedule step per training batch");
    for (i, (lr, mom)) in spy.lrs.iter().zip(&spy.moms).enumerate() {
        let pos = i as f64 / total as f64;
        assert!((lr - cycle.lr(pos)).abs() < 1e-15, "batch {i}: lr {lr} vs {}", cycle.lr(pos));
        assert!((mom - cycle.mom(pos)).abs() < 1e-15, "batch {i}: mom {mom} vs {}", cycle.mom(pos));
    }
    assert_eq!(spy.events, [Event::BeforeFit, Event::AfterFit]);
}

/// Overwrites `valid_loss` with a scripted sequence before the trackers read it.
struct Losses(Vec<f64>);

impl Callback for Losses {
    fn order(&self) -> i32 {
        60
    }
    fn after_validate(&mut self, l: &mut Learner) -> Result<()> {
        l.state.values[1] = self.0[l.state.epoch];
        Ok(())
    }
}

#[test]
fn early_stopping_stops_after_patience_epochs_without_improvement() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = toy(dir.path());
    let (mut spy, mut losses) = (Spy::default(), Losses(vec![1.0, 0.5, 0.6, 0.7, 0.4, 0.3, 0.2, 0.1]));
    let opts = FitOptions { early_stopping: Some(EarlyStop { monitor: "valid_loss".into(), patience: 2 }), ..Default::default() };
    l.fit(8, &Lrs::One(1e-3), &opts, &mut [&mut spy, &mut losses]).unwrap();
    assert_eq!(spy.epochs, [0, 1, 2, 3], "best at epoch 1, no better at 2 and 3: stop after epoch 3");
    assert_eq!(l.epochs_done, 4);
    assert_eq!(spy.events.last(), Some(&Event::AfterFit), "after_fit still runs after the cancel");

    // The callback on its own: patience counts epochs since the best.
    let mut e = EarlyStopping::new("valid_loss", 1);
    let mut l = toy(dir.path());
    l.state.columns = vec!["train_loss".into(), "valid_loss".into()];
    l.state.goals = vec![Some(runner::track::Goal::Min); 2];
    l.state.values = vec![0.0, 1.0];
    assert!(e.after_epoch(&mut l).is_ok());
    l.state.values = vec![0.0, 1.5];
    assert_eq!(Cancel::of(&e.after_epoch(&mut l).unwrap_err()), Some(Cancel::Fit));
}

/// Cancels every batch at one event.
struct CancelAt(Event);

impl Callback for CancelAt {
    fn before_batch(&mut self, _: &mut Learner) -> Result<()> {
        if self.0 == Event::BeforeBatch {
            return Err(Cancel::Batch.into());
        }
        Ok(())
    }
    fn after_loss(&mut self, _: &mut Learner) -> Result<()> {
        if self.0 == Event::AfterLoss {
            return Err(Cancel::Batch.into());
        }
        Ok(())
    }
}

#[test]
fn cancelling_a_batch_skips_its_step() {
    for at in [Event::BeforeBatch, Event::AfterLoss] {
        let dir = tempfile::tempdir().unwrap();
        let mut l = toy(dir.path());
        let before = weights(&l);
        let (mut spy, mut cancel) = (Spy::default(), CancelAt(at));
        l.fit(1, &Lrs::One(1e-2), &FitOptions::default(), &mut [&mut spy, &mut cancel]).unwrap();
        let after = weights(&l);
        for (k, w) in &before {
            if !k.contains("running_") && !k.contains("num_batches") {
                assert!(w.equal(&after[k]), "{k} changed although every batch was cancelled at {at:?}");
            }
        }
        assert_eq!((spy.after_batches, spy.stepped), (6, 0), "after_batch still fires, with no step ({at:?})");
    }
    // Without the cancel the same fit moves the weights.
    let dir = tempfile::tempdir().unwrap();
    let mut l = toy(dir.path());
    let before = weights(&l);
    l.fit(1, &Lrs::One(1e-2), &FitOptions::default(), &mut []).unwrap();
    assert!(!before["head.weight"].equal(&weights(&l)["head.weight"]));
}

#[test]
fn lr_finder_restores_every_weight_and_the_data_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = toy(dir.path());
    l.fit(1, &Lrs::One(1e-3), &FitOptions::default(), &mut []).unwrap();
    let (before, opt_before, epochs_before) = (weights(&l), l.opt.snapshot(), l.epochs_done);
    // 15 iterations over 6 batches per epoch: the sweep spans three epochs.
    let mut finder = LrFinder::new(LrFindOptions { num_it: 15, stop_div: false, ..Default::default() });
    let mut recorder = Recorder::new(false);
    let r = l.run_fit(0, 3, &FitOptions::default(), &mut [&mut finder, &mut recorder]);
    assert!(r.is_ok());
    assert_eq!(finder.lrs.len(), 15);
    assert!(l.epochs_done > epochs_before, "the sweep trained through epochs");
    finder.restore(&mut l).unwrap();
    let after = weights(&l);
    for (k, w) in &before {
        assert!(w.equal(&after[k]), "{k} not restored");
    }
    let opt_after: HashMap<String, Tensor> = l.opt.snapshot().into_iter().collect();
    for (k, t) in &opt_before {
        assert!(t.equal(&opt_after[k]), "optimizer state {k} not restored");
    }
    assert_eq!(l.epochs_done, epochs_before, "the next fit sees the data order it would have seen");
    assert!(finder.lrs.windows(2).all(|w| w[1] > w[0]));
}

#[test]
fn interruption_stops_at_a_batch_boundary_with_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = toy(dir.path());
    l.out.interrupted = || Some("SIGTERM");
    let err = l.fit(1, &Lrs::One(1e-3), &FitOptions::default(), &mut []).unwrap_err().to_string();
    assert!(err.starts_with("interrupted by SIGTERM at epoch 0, batch 0; weights saved to "), "{err}");
    assert!(dir.path().join("models/last.safetensors").is_file());
}

/// Makes the third batch's loss NaN (and so its gradients and weights), as a diverging step would.
struct NanAtThirdBatch;

impl Callback for NanAtThirdBatch {
    fn after_loss(&mut self, l: &mut Learner) -> Result<()> {
        if l.state.iter == 2 {
            l.state.loss_t = l.state.loss_t.as_ref().map(|t| t * f64::NAN);
        }
        Ok(())
    }
}

#[test]
fn nan_loss_stops_the_fit_naming_where() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = toy(dir.path());
    let mut spy = Spy::default();
    let err = l.fit(2, &Lrs::One(1e-3), &FitOptions::default(), &mut [&mut NanAtThirdBatch, &mut spy]).unwrap_err().to_string();
    assert!(err.starts_with("loss is NaN at epoch 0, batch 2 (lr 1.000e-3); training stopped"), "{err}");
    assert_eq!(spy.losses_read, 2, "the guard runs before later callbacks see the bad loss");
    assert_eq!(spy.after_batches, 3, "the bad loss is read while the next batch steps");
}

/// Reads every batch's loss at once (as the loop did before it read them late) and keeps
/// what `after_loss_read` later gets; cancels the fit at `cancel_after` batches, if set.
#[derive(Default)]
struct LateLossSpy {
    at_once: Vec<(usize, usize, f64, f64)>,
    read: Vec<(usize, usize, f64, f64)>,
    /// How many batches had finished (`after_batch`) when each loss was read.
    finished_at_read: Vec<usize>,
    finished: usize,
    cancel_after: Option<usize>,
}

impl Callback for LateLossSpy {
    fn after_step(&mut self, l: &mut Learner) -> Result<()> {
        let loss = l.state.loss_t.as_ref().unwrap().double_value(&[]);
        self.at_once.push((l.state.epoch, l.state.iter, l.opt.lrs[0], loss));
        Ok(())
    }
    fn after_batch(&mut self, _: &mut Learner) -> Result<()> {
        self.finished += 1;
        match self.cancel_after {
            Some(n) if self.at_once.len() == n => Err(Cancel::Fit.into()),
            _ => Ok(()),
        }
    }
    fn after_loss_read(&mut self, l: &mut Learner) -> Result<()> {
        let b = l.state.loss.unwrap();
        self.read.push((b.epoch, b.iter, b.lr, b.loss));
        self.finished_at_read.push(self.finished);
        Ok(())
    }
}

#[test]
fn every_batch_loss_is_read_once_one_batch_late_with_its_own_lr() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = toy(dir.path());
    let mut spy = LateLossSpy::default();
    l.fit_one_cycle(2, &Lrs::One(1e-2), OneCycle::new(1e-2), &FitOptions::default(), &mut [&mut spy]).unwrap();
    assert_eq!(spy.at_once.len(), 12);
    assert_eq!(spy.read, spy.at_once, "same batches, positions, learning rates and losses, the last of each epoch included");
    let late: Vec<usize> = (1..=12).collect();
    assert_eq!(spy.finished_at_read, late, "batch j's loss is read after batch j is over: while batch j + 1 steps, or at the epoch's end");
    // A fit cancelled after a batch still reads that batch's loss.
    let mut spy = LateLossSpy { cancel_after: Some(4), ..Default::default() };
    l.fit(1, &Lrs::One(1e-3), &FitOptions::default(), &mut [&mut spy]).unwrap();
    assert_eq!((spy.at_once.len(), spy.read), (4, spy.at_once.clone()));
}
