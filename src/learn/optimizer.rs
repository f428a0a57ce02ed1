//! fastai's optimizers over parameter groups: Adam (beta1 = scheduled momentum, beta2 0.99,
//! eps 1e-5, decoupled weight decay `p *= 1 - lr*wd` before the step) and SGD with
//! momentum. BatchNorm and bias parameters get no weight decay unless asked.
use crate::torch_ext::{adam_step, sgd_step, StepTensors};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use tch::Tensor;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptKind {
    Adam { sqr_mom: f64, eps: f64 },
    Sgd,
}

impl OptKind {
    pub fn parse(name: &str) -> Result<OptKind> {
        Ok(match name {
            "adam" => OptKind::Adam { sqr_mom: 0.99, eps: 1e-5 },
            "sgd" => OptKind::Sgd,
            other => bail!("unknown optimizer `{other}`: use adam or sgd"),
        })
    }
}

pub struct Param {
    pub name: String,
    pub tensor: Tensor,
    pub decay: bool,
}

struct State {
    avg: Tensor,
    sqr_avg: Option<Tensor>,
    step: i64,
}

pub struct Optimizer {
    pub kind: OptKind,
    pub groups: Vec<Vec<Param>>,
    pub lrs: Vec<f64>,
    pub mom: f64,
    pub wd: f64,
    state: BTreeMap<String, State>,
}

impl Optimizer {
    pub fn new(kind: OptKind, groups: Vec<Vec<Param>>, wd: f64) -> Optimizer {
        let lrs = vec![1e-3; groups.len()];
        Optimizer { kind, groups, lrs, mom: 0.9, wd, state: BTreeMap::new() }
    }

    /// Forgets averages and step counts (fastai does this on freeze/unfreeze).
    pub fn reset_state(&mut self) {
        self.state.clear();
    }

    pub fn zero_grad(&self) {
        for p in self.groups.iter().flatten() {
            let mut g = p.tensor.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One step over every parameter that trains and has a gradient, as multi-tensor
    /// (foreach) ops per group: a few fused kernels on CUDA, and on the CPU the same ops in
    /// the same order as a loop over the parameters (same numbers).
    pub fn step(&mut self) -> Result<()> {
        let adam = matches!(self.kind, OptKind::Adam { .. });
        for (gi, group) in self.groups.iter().enumerate() {
            let lr = self.lrs[gi];
            let live: Vec<(&Param, Tensor)> =
                group.iter().filter(|p| p.tensor.requires_grad()).map(|p| (p, p.tensor.grad())).filter(|(_, g)| g.defined()).collect();
            if live.is_empty() {
                continue;
            }
            for (p, g) in &live {
                let st =
                    self.state.entry(p.name.clone()).or_insert_with(|| State { avg: g.zeros_like(), sqr_avg: adam.then(|| g.zeros_like()), step: 0 });
                st.step += 1;
            }
            let states: Vec<&State> = live.iter().map(|(p, _)| &self.state[&p.name]).collect();
            let t = StepTensors {
                weights: live.iter().map(|(p, _)| &p.tensor).collect(),
                grads: live.iter().map(|(_, g)| g).collect(),
                avgs: states.iter().map(|s| &s.avg).collect(),
                sqr_avgs: states.iter().filter_map(|s| s.sqr_avg.as_ref()).collect(),
                decayed: if self.wd != 0.0 { live.iter().filter(|(p, _)| p.decay).map(|(p, _)| &p.tensor).collect() } else { vec![] },
                decay: 1.0 - lr * self.wd,
            };
            match self.kind {
                OptKind::Adam { sqr_mom, eps } => {
                    let step_size: Vec<f64> = states.iter().map(|s| -lr / (1.0 - self.mom.powi(s.step as i32))).collect();
                    let debias2: Vec<f64> = states.iter().map(|s| (1.0 - sqr_mom.powi(s.step as i32)).sqrt()).collect();
                    adam_step(&t, &step_size, &debias2, self.mom, sqr_mom, eps)?;
                }
                OptKind::Sgd => sgd_step(&t, lr, self.mom)?,
            }
        }
        Ok(())
    }

    /// Optimizer state as named tensors (for checkpoints).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, st) in &self.state {
            out.push((format!("{name}.avg"), st.avg.shallow_clone()));
            if let Some(s) = &st.sqr_avg {
                out.push((format!("{name}.sqr_avg"), s.shallow_clone()));
            }
            out.push((format!("{name}.step"), Tensor::from(st.step)));
        }
        out
    }

    /// Restores state written by `state_tensors`.
    pub fn load_state(&mut self, tensors: Vec<(String, Tensor)>) -> Result<()> {
        let map: BTreeMap<String, Tensor> = tensors.into_iter().collect();
        let mut state = BTreeMap::new();
        for p in self.groups.iter().flatten() {
            let (Some(avg), Some(step)) = (map.get(&format!("{}.avg", p.name)), map.get(&format!("{}.step", p.name))) else {
                continue;
            };
            if avg.size() != p.tensor.size() {
                bail!("optimizer state for {} has shape {:?}, the parameter {:?}", p.name, avg.size(), p.tensor.size());
            }
            let dev = p.tensor.device();
            state.insert(
                p.name.clone(),
                State {
                    avg: avg.to_device(dev),
                    sqr_avg: map.get(&format!("{}.sqr_avg", p.name)).map(|t| t.to_device(dev)),
                    step: step.int64_value(&[]),
                },
            );
        }
        self.state = state;
        Ok(())
    }

    /// A deep copy of the state (lr_find restores it afterwards).
    pub fn snapshot(&self) -> Vec<(String, Tensor)> {
        self.state_tensors().into_iter().map(|(k, t)| (k, t.copy())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// The per-parameter loop the foreach step replaced, op for op: the reference.
    fn reference_step(kind: OptKind, ws: &[Tensor], states: &mut [(Tensor, Tensor, i64)], decay: &[bool], lr: f64, wd: f64, mom: f64) {
        tch::no_grad(|| {
            for ((w, st), &d) in ws.iter().zip(states.iter_mut()).zip(decay) {
                let (g, mut w) = (w.grad(), w.shallow_clone());
                if d && wd != 0.0 {
                    let _ = w.g_mul_scalar_(1.0 - lr * wd);
                }
                st.2 += 1;
                match kind {
                    OptKind::Adam { sqr_mom, eps } => {
                        let _ = st.0.lerp_(&g, 1.0 - mom);
                        let _ = st.1.g_mul_scalar_(sqr_mom);
                        let _ = st.1.addcmul_(&g, &(&g * (1.0 - sqr_mom)));
                        let (debias1, debias2) = (1.0 - mom.powi(st.2 as i32), 1.0 - sqr_mom.powi(st.2 as i32));
                        let mut denom = st.1.sqrt();
                        let _ = denom.g_div_scalar_(debias2.sqrt());
                        let _ = denom.g_add_scalar_(eps);
                        let _ = w.addcdiv_(&(&st.0 * (-lr / debias1)), &denom);
                    }
                    OptKind::Sgd => {
                        let _ = st.0.g_mul_scalar_(mom);
                        let _ = st.0.g_add_(&g);
                        let _ = w.g_sub_(&(&st.0 * lr));
                    }
                }
            }
        });
    }

    #[test]
    fn foreach_step_gives_the_per_parameter_loops_bits() {
        for kind in [OptKind::Adam { sqr_mom: 0.99, eps: 1e-5 }, OptKind::Sgd] {
            tch::manual_seed(7);
            let shapes: [&[i64]; 3] = [&[8, 3, 3, 3], &[8], &[5, 8]];
            let init: Vec<Tensor> = shapes.iter().map(|s| Tensor::randn(*s, (Kind::Float, Device::Cpu))).collect();
            let grads: Vec<Vec<Tensor>> = (0..3).map(|_| shapes.iter().map(|s| Tensor::randn(*s, (Kind::Float, Device::Cpu))).collect()).collect();
            let decay = [true, false, true];
            let mine: Vec<Tensor> = init.iter().map(|t| t.copy().set_requires_grad(true)).collect();
            let theirs: Vec<Tensor> = init.iter().map(|t| t.copy().set_requires_grad(true)).collect();
            let params =
                mine.iter().zip(decay).enumerate().map(|(i, (t, d))| Param { name: format!("p{i}"), tensor: t.shallow_clone(), decay: d }).collect();
            let mut opt = Optimizer::new(kind, vec![params], 0.01);
            opt.lrs = vec![3e-2];
            let mut states: Vec<(Tensor, Tensor, i64)> = init.iter().map(|t| (t.zeros_like(), t.zeros_like(), 0)).collect();
            for (step, gs) in grads.iter().enumerate() {
                opt.mom = 0.95 - 0.05 * step as f64;
                for (ws, g) in [(&mine, gs), (&theirs, gs)] {
                    for (w, g) in ws.iter().zip(g) {
                        let mut grad = w.grad();
                        if grad.defined() {
                            let _ = grad.zero_();
                        }
                        (w * g).sum(Kind::Float).backward();
                    }
                }
                opt.step().unwrap();
                reference_step(kind, &theirs, &mut states, &decay, 3e-2, 0.01, opt.mom);
            }
            for (a, b) in mine.iter().zip(&theirs) {
                assert!(a.equal(b), "{kind:?}: the foreach step changed the numbers");
            }
            assert!(!mine[0].equal(&init[0]), "the weights moved");
        }
    }
}
