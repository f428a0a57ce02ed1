//! fastai's optimizers over parameter groups: Adam (beta1 = scheduled momentum, beta2 0.99,
//! eps 1e-5, decoupled weight decay `p *= 1 - lr*wd` before the step) and SGD with
//! momentum. BatchNorm and bias parameters get no weight decay unless asked.
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

    /// One step over every parameter that trains and has a gradient.
    pub fn step(&mut self) {
        tch::no_grad(|| {
            for (gi, group) in self.groups.iter().enumerate() {
                let lr = self.lrs[gi];
                for p in group {
                    if !p.tensor.requires_grad() {
                        continue;
                    }
                    let g = p.tensor.grad();
                    if !g.defined() {
                        continue;
                    }
                    let mut w = p.tensor.shallow_clone();
                    if p.decay && self.wd != 0.0 {
                        let _ = w.g_mul_scalar_(1.0 - lr * self.wd);
                    }
                    let st = self.state.entry(p.name.clone()).or_insert_with(|| State {
                        avg: g.zeros_like(),
                        sqr_avg: matches!(self.kind, OptKind::Adam { .. }).then(|| g.zeros_like()),
                        step: 0,
                    });
                    st.step += 1;
                    match self.kind {
                        OptKind::Adam { sqr_mom, eps } => {
                            let _ = st.avg.lerp_(&g, 1.0 - self.mom);
                            let sq = st.sqr_avg.as_mut().unwrap();
                            let _ = sq.g_mul_scalar_(sqr_mom);
                            let _ = sq.addcmul_(&g, &(&g * (1.0 - sqr_mom)));
                            let debias1 = 1.0 - self.mom.powi(st.step as i32);
                            let debias2 = 1.0 - sqr_mom.powi(st.step as i32);
                            let mut denom = sq.sqrt();
                            let _ = denom.g_div_scalar_(debias2.sqrt());
                            let _ = denom.g_add_scalar_(eps);
                            let _ = w.addcdiv_(&(&st.avg * (-lr / debias1)), &denom);
                        }
                        OptKind::Sgd => {
                            let _ = st.avg.g_mul_scalar_(self.mom);
                            let _ = st.avg.g_add_(&g);
                            let _ = w.g_sub_(&(&st.avg * lr));
                        }
                    }
                }
            }
        });
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
