//! Data-parallel training (fastai's `DistributedTrainer`, PyTorch's DDP) as a callback on
//! the one loop: before a fit every rank takes rank 0's parameters and buffers; after each
//! backward the gradients are averaged over the group, together with the batch loss (so
//! every rank records the group's loss) and whether any rank was asked to stop (so all stop
//! at the same batch); with local BatchNorm statistics (`sync_bn: false`) every rank
//! validates with rank 0's. Each rank then clips and steps with the same numbers. The
//! time spent reducing gradients goes to log.jsonl per epoch (`allreduce_seconds`); it
//! does not overlap backward (the gradients are reduced, in flat buckets, once it ends).
use crate::dist::{ProcessGroup, Reduce};
use crate::learn::callback::Callback;
use crate::learn::Learner;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

pub struct DataParallel {
    group: Arc<ProcessGroup>,
    /// Whether some rank was asked to stop, as the last step's allreduce said (read one
    /// batch later, so the step never waits for it).
    stop: Option<Tensor>,
    /// This epoch's time in the gradients' allreduce, and its steps.
    reducing: Duration,
    steps: usize,
}

impl DataParallel {
    pub fn new(group: Arc<ProcessGroup>) -> DataParallel {
        DataParallel { group, stop: None, reducing: Duration::ZERO, steps: 0 }
    }

    /// The model's variables whose gradients do not train them (BatchNorm statistics,
    /// frozen weights), or all of them, in name order (the same on every rank).
    fn variables(l: &Learner, all: bool) -> Vec<Tensor> {
        let mut vars: Vec<(String, Tensor)> = l.model.vs.variables().into_iter().filter(|(_, t)| all || !t.requires_grad()).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.into_iter().map(|(_, t)| t).collect()
    }
}

impl Callback for DataParallel {
    /// Before `Interrupt` (-20), which acts on what this one learnt.
    fn order(&self) -> i32 {
        -30
    }

    fn before_fit(&mut self, l: &mut Learner) -> Result<()> {
        let vars = Self::variables(l, true);
        self.group.broadcast(&vars.iter().collect::<Vec<_>>(), 0)
    }

    fn before_batch(&mut self, l: &mut Learner) -> Result<()> {
        if let Some(flag) = self.stop.take() {
            if flag.double_value(&[]) > 0.0 {
                l.state.group_stop = Some((l.out.interrupted)().unwrap_or("a stop signal to another rank"));
            }
        }
        Ok(())
    }

    fn after_backward(&mut self, l: &mut Learner) -> Result<()> {
        let grads: Vec<Tensor> =
            l.opt.groups.iter().flatten().filter(|p| p.tensor.requires_grad()).map(|p| p.tensor.grad()).filter(|g| g.defined()).collect();
        let loss = l.state.loss_t.as_ref().context("no loss to average")?.detach().to_kind(Kind::Float);
        let asked = if (l.out.interrupted)().is_some() { 1.0 } else { 0.0 };
        let extras = Tensor::stack(&[loss.reshape([]), Tensor::from(asked as f32).to_device(loss.device())], 0);
        let mut all: Vec<&Tensor> = grads.iter().collect();
        all.push(&extras);
        let start = Instant::now();
        self.group.allreduce(&all, Reduce::Avg)?;
        (self.reducing, self.steps) = (self.reducing + start.elapsed(), self.steps + 1);
        l.state.loss_t = Some(extras.get(0));
        self.stop = Some(extras.get(1));
        Ok(())
    }

    fn before_train(&mut self, _: &mut Learner) -> Result<()> {
        (self.reducing, self.steps) = (Duration::ZERO, 0);
        Ok(())
    }

    fn after_train(&mut self, l: &mut Learner) -> Result<()> {
        let s = &l.state;
        tracing::info!(fit = s.fit, epoch = s.epoch, allreduce_seconds = self.reducing.as_secs_f64(), steps = self.steps, "gradients reduced");
        Ok(())
    }

    fn before_validate(&mut self, l: &mut Learner) -> Result<()> {
        if l.sync_bn {
            return Ok(());
        }
        let buffers = Self::variables(l, false);
        self.group.broadcast(&buffers.iter().collect::<Vec<_>>(), 0)
    }
}
