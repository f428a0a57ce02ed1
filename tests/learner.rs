//! The learner's fastai semantics through its Rust API: the optimizer step equals
//! PyTorch's AdamW, freezing keeps body weights but trains BatchNorm, lr_find restores
//! the weights, training on a learnable problem lowers the loss.
mod common;
use runner::learn::fit::FitOptions;
use runner::learn::learner::RunOut;
use runner::learn::lr_find::LrFindOptions;
use runner::learn::metrics::MetricName;
use runner::learn::optimizer::{OptKind, Optimizer, Param};
use runner::learn::schedule::OneCycle;
use runner::learn::{Learner, LearnerOptions, Lrs, TargetKind, TensorData};
use runner::model::convnet::{ConvNetSpec, Padding};
use runner::model::head::HeadSpec;
use runner::model::{BodySpec, Model, PairHeadSpec, Splitter};
use runner::precision::Precision;
use std::collections::HashMap;
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

#[test]
fn adam_step_equals_pytorch_adamw() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("adamw.safetensors");
    let ok = std::process::Command::new(common::project_root().join(".venv/bin/python"))
        .arg(common::project_root().join("tests/py/adamw_step.py"))
        .arg(&out)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let t: HashMap<String, Tensor> = Tensor::read_safetensors(&out).unwrap().into_iter().collect();
    let p = t["p0"].copy().set_requires_grad(true);
    let mut opt = Optimizer::new(
        OptKind::Adam { sqr_mom: 0.99, eps: 1e-5 },
        vec![vec![Param { name: "p".into(), tensor: p.shallow_clone(), decay: true }]],
        0.01,
    );
    opt.lrs = vec![1e-2];
    for (g, mom) in [("g0", 0.95), ("g1", 0.9), ("g2", 0.85)] {
        opt.mom = mom;
        opt.zero_grad();
        (&p * &t[g]).sum(Kind::Float).backward();
        opt.step().unwrap();
    }
    let diff = (&p - &t["p3"]).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "differs from torch.optim.AdamW by {diff}");
    assert!((&p - &t["p0"]).abs().max().double_value(&[]) > 1e-3, "the parameter moved");
}

/// Pairs of 24x24 images: "same" when both come from the same of two random templates.
fn toy_pairs(n: i64, seed: i64, device: Device) -> (Vec<Tensor>, Tensor) {
    tch::manual_seed(0);
    let templates = Tensor::randn([2, 3, 24, 24], (Kind::Float, device));
    tch::manual_seed(seed);
    let a_cls = Tensor::randint(2, [n], (Kind::Int64, device));
    let same = Tensor::randint(2, [n], (Kind::Int64, device));
    let b_cls = a_cls.where_self(&same.eq(1), &(1 - &a_cls));
    let noise = |c: &Tensor| templates.index_select(0, c) + Tensor::randn([n, 3, 24, 24], (Kind::Float, device)) * 0.5;
    (vec![noise(&a_cls), noise(&b_cls)], same)
}

fn toy_learner(dir: &std::path::Path, body: BodySpec, head: PairHeadSpec) -> Learner {
    let (tx, ty) = toy_pairs(256, 1, Device::Cpu);
    let (vx, vy) = toy_pairs(32, 2, Device::Cpu);
    let data = TensorData {
        train_x: tx,
        train_y: ty,
        valid_x: vx,
        valid_y: vy,
        bs: 16,
        seed: 3,
        device: Device::Cpu,
        vocab: vec!["different".into(), "same".into()],
        targets: TargetKind::Classes,
    };
    tch::manual_seed(0);
    let model = Model::siamese(&body, &head, Device::Cpu).unwrap();
    // float32 whatever the machine's default: the bf16 test compares against it.
    let opts = LearnerOptions { metrics: vec![MetricName::Accuracy], precision: Precision::Fp32, ..Default::default() };
    Learner::new(Rc::new(model), Rc::new(data), opts, RunOut::detached(dir), 3).unwrap()
}

/// Two conv blocks for 24x24 toy images; `embed` 0 pools globally.
fn small_convnet(embed: i64) -> BodySpec {
    BodySpec::ConvNet(ConvNetSpec {
        in_channels: 3,
        channels: vec![8, 16],
        kernels: vec![3, 3],
        pool: vec![true, true],
        batch_norm: true,
        embed,
        sigmoid: false,
        input: (24, 24),
        padding: Padding::Valid,
    })
}

fn snapshot(l: &Learner) -> HashMap<String, Tensor> {
    l.model.vs.variables().into_iter().map(|(k, v)| (k, v.copy())).collect()
}

fn changed(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>, name: &str) -> bool {
    !a[name].equal(&b[name])
}

#[test]
fn freeze_trains_head_and_batchnorm_only() {
    let dir = tempfile::tempdir().unwrap();
    let body = BodySpec::arch("resnet18", -2, None).unwrap();
    let mut l = toy_learner(dir.path(), body, PairHeadSpec::Concat(HeadSpec::new(1024, 2)));
    l.freeze();
    let before = snapshot(&l);
    l.fit_one_cycle(1, &Lrs::One(1e-3), OneCycle::new(1e-3), &FitOptions::default(), &mut []).unwrap();
    let after = snapshot(&l);
    assert!(!changed(&before, &after, "body.conv1.weight"), "frozen conv weights must not move");
    assert!(!changed(&before, &after, "body.layer4.1.conv2.weight"));
    assert!(changed(&before, &after, "body.bn1.weight"), "BatchNorm weights train while frozen (train_bn)");
    assert!(changed(&before, &after, "body.layer3.0.bn1.bias"));
    assert!(changed(&before, &after, "body.bn1.running_mean"), "BatchNorm statistics keep updating");
    assert!(changed(&before, &after, "head.4.weight"), "the head trains");
    let summary = l.model.summary(&[3, 24, 24]).unwrap();
    assert!(summary.contains("partly") && summary.contains("Frozen params:"), "{summary}");
    l.unfreeze();
    let before = snapshot(&l);
    l.fit(1, &Lrs::Slice(1e-5, 1e-3), &FitOptions::default(), &mut []).unwrap();
    assert!(changed(&before, &snapshot(&l), "body.conv1.weight"), "unfrozen body trains");
}

#[test]
fn lr_find_restores_weights_and_suggests() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = toy_learner(dir.path(), small_convnet(32), PairHeadSpec::L1);
    let before = snapshot(&l);
    let r = l.lr_find(&LrFindOptions { num_it: 30, ..Default::default() }).unwrap();
    let after = snapshot(&l);
    for k in before.keys() {
        assert!(!changed(&before, &after, k), "{k} not restored after lr_find");
    }
    assert!(r.lrs.len() > 10 && r.lrs.len() <= 30);
    assert!(r.lrs.windows(2).all(|w| w[1] > w[0]), "learning rates rise");
    assert!(r.valley.is_finite() && r.valley > 1e-7 && r.valley < 10.0, "valley {}", r.valley);
}

#[test]
fn training_learns_a_learnable_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = toy_learner(dir.path(), small_convnet(32), PairHeadSpec::L1);
    let (loss0, p0, y0) = l.validate().unwrap();
    l.fit_one_cycle(5, &Lrs::One(1e-2), OneCycle::new(1e-2), &FitOptions::default(), &mut []).unwrap();
    let (loss1, p1, y1) = l.validate().unwrap();
    let acc = |p: &Tensor, y: &Tensor| p.argmax(-1, false).eq_tensor(y).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
    println!("valid loss {loss0:.4} -> {loss1:.4}, accuracy {:.3} -> {:.3}", acc(&p0, &y0), acc(&p1, &y1));
    assert!(loss1 < loss0 * 0.7, "loss fell from {loss0} to {loss1}");
    assert!(acc(&p1, &y1) >= 0.9);
    // save / load round trip gives the same predictions
    l.save(dir.path().join("m").to_str().unwrap()).unwrap();
    let p_before = l.get_preds().unwrap().0;
    l.fit(1, &Lrs::One(1e-2), &FitOptions::default(), &mut []).unwrap();
    l.load(dir.path().join("m").to_str().unwrap()).unwrap();
    assert!(l.get_preds().unwrap().0.allclose(&p_before, 1e-6, 1e-6, false));
}

/// The GPU options run through the same code on CPU: bf16 autocast (matmuls in bfloat16,
/// float32 weights and loss) and channels-last weights still learn the toy problem.
#[test]
fn bf16_and_channels_last_train_with_float32_weights() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = toy_learner(dir.path(), small_convnet(32), PairHeadSpec::L1);
    let (fp32_loss, _, _) = l.validate().unwrap();
    l.bf16 = true;
    let (bf16_loss, _, _) = l.validate().unwrap();
    assert!(bf16_loss != fp32_loss && (bf16_loss - fp32_loss).abs() < 0.02 * fp32_loss, "bf16 {bf16_loss} vs fp32 {fp32_loss}");
    l.bf16 = false;
    let opts = FitOptions { bf16: true, channels_last: true, ..Default::default() };
    l.fit_one_cycle(5, &Lrs::One(1e-2), OneCycle::new(1e-2), &opts, &mut []).unwrap();
    assert!(!l.bf16, "the fit option lasts for that fit only");
    assert!(!runner::torch_ext::autocast_enabled(Device::Cpu), "autocast is off again after the fit");
    let vars = l.model.vs.variables();
    let conv = vars.values().find(|v| v.dim() == 4).expect("a conv weight");
    assert_eq!(conv.kind(), Kind::Float, "weights stay float32");
    assert!(!conv.is_contiguous(), "conv weights were moved to channels-last order");
    let (loss, p, y) = l.validate().unwrap();
    let acc = p.argmax(-1, false).eq_tensor(&y).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
    assert!(loss < fp32_loss * 0.7 && acc >= 0.9, "loss {fp32_loss} -> {loss}, accuracy {acc}");
    l.save(dir.path().join("cl").to_str().unwrap()).expect("channels-last weights save");
}

/// Classification pretraining for one-shot learning: a cosine classifier learns the
/// templates, and a Siamese cosine model over its body (weights copied) then scores
/// same-template pairs above different ones.
#[test]
fn cosine_classifier_body_carries_over_to_a_siamese_model() {
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(0);
    let templates = Tensor::randn([3, 3, 24, 24], (Kind::Float, Device::Cpu));
    let draw = |n: i64, seed: i64| {
        tch::manual_seed(seed);
        let c = Tensor::randint(3, [n], (Kind::Int64, Device::Cpu));
        (templates.index_select(0, &c) + Tensor::randn([n, 3, 24, 24], (Kind::Float, Device::Cpu)) * 0.5, c)
    };
    let ((cx, cy), (cvx, cvy)) = (draw(256, 5), draw(64, 6));
    let data = TensorData {
        train_x: vec![cx],
        train_y: cy,
        valid_x: vec![cvx.shallow_clone()],
        valid_y: cvy.shallow_clone(),
        bs: 16,
        seed: 3,
        device: Device::Cpu,
        vocab: vec!["a".into(), "b".into(), "c".into()],
        targets: TargetKind::Classes,
    };
    tch::manual_seed(0);
    let clf = Rc::new(Model::cosine_classifier(&small_convnet(0), 3, 10.0, Device::Cpu).unwrap());
    let mut l = Learner::new(
        clf.clone(),
        Rc::new(data),
        LearnerOptions { metrics: vec![MetricName::Accuracy], splitter: Splitter::None, ..Default::default() },
        RunOut::detached(dir.path()),
        3,
    )
    .unwrap();
    l.fit_one_cycle(4, &Lrs::One(1e-2), OneCycle::new(1e-2), &FitOptions::default(), &mut []).unwrap();
    let (_, p, y) = l.validate().unwrap();
    let acc = p.argmax(-1, false).eq_tensor(&y).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
    assert!(acc >= 0.9, "the cosine classifier learns the templates: {acc}");
    assert!(clf.summary(&[3, 24, 24]).unwrap().contains("scale * cos(e, class weights)"));
    let siamese = clf.siamese_from(&PairHeadSpec::Cosine).unwrap();
    let (mine, theirs) = (clf.vs.variables(), siamese.vs.variables());
    let body: Vec<&String> = mine.keys().filter(|k| k.starts_with("body.")).collect();
    assert!(!body.is_empty() && body.iter().all(|k| mine[*k].equal(&theirs[*k])), "body weights are copied");
    // Pairs: each validation image with the next one.
    let out = tch::no_grad(|| siamese.forward(&[cvx.shallow_clone(), cvx.roll([1], [0])], false)).unwrap();
    let same = cvy.eq_tensor(&cvy.roll([1], [0]));
    let mean = |m: &Tensor| out.masked_select(m).mean(Kind::Float).double_value(&[]);
    assert!(mean(&same) > mean(&same.logical_not()) + 1.0, "same pairs score higher: {} vs {}", mean(&same), mean(&same.logical_not()));
}

#[test]
fn learning_rate_specs_follow_fastai() {
    assert_eq!(Lrs::One(1e-3).for_groups(2).unwrap(), vec![1e-3, 1e-3]);
    let s = Lrs::Slice(1e-6, 1e-4).for_groups(3).unwrap();
    assert!((s[0] - 1e-6).abs() < 1e-18 && (s[1] - 1e-5).abs() < 1e-15 && (s[2] - 1e-4).abs() < 1e-15);
    assert_eq!(Lrs::SliceHi(1e-3).for_groups(3).unwrap(), vec![1e-4, 1e-4, 1e-3]);
    assert!(Lrs::PerGroup(vec![1.0]).for_groups(2).is_err());
}
