//! Times forward + backward + optimizer step of the runner's Siamese models, for
//! `scripts/bench step` (which runs benches/step.py beside it and prints the ratios).
//! Usage: bench_step <threads> <steps>; prints `case ms_per_step` lines.
use runner::learn::learner::RunOut;
use runner::learn::{Learner, LearnerOptions, TensorData};
use runner::model::convnet::ConvNetSpec;
use runner::model::head::HeadSpec;
use runner::model::{BodySpec, Model, PairHeadSpec};
use std::rc::Rc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn time_case(name: &str, body: BodySpec, head: PairHeadSpec, bs: i64, input: [i64; 3], steps: usize) {
    tch::manual_seed(0);
    let x = |n| Tensor::randn([n, input[0], input[1], input[2]], (Kind::Float, Device::Cpu));
    let n = bs * (steps as i64 + 2);
    let data = TensorData {
        train_x: vec![x(n), x(n)],
        train_y: Tensor::randint(2, [n], (Kind::Int64, Device::Cpu)),
        valid_x: vec![x(bs), x(bs)],
        valid_y: Tensor::randint(2, [bs], (Kind::Int64, Device::Cpu)),
        bs: bs as usize,
        seed: 0,
        device: Device::Cpu,
        vocab: vec!["different".into(), "same".into()],
        targets: runner::learn::TargetKind::Classes,
    };
    let model = Rc::new(Model::siamese(&body, &head, Device::Cpu).unwrap());
    let mut learn = Learner::new(model, Rc::new(data), LearnerOptions::default(), RunOut::detached("."), 0).unwrap();
    learn.opt.lrs = vec![1e-4; learn.n_groups()];
    let batches: Vec<_> = learn.data.train(0).unwrap().map(|b| b.unwrap()).collect();
    let mut times = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        let t = Instant::now();
        learn.train_step(&b.xs, &b.y, None).unwrap();
        if i >= 2 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    println!("{name} {:.1}", times[times.len() / 2] * 1000.0);
}

fn main() {
    runner::device::keep_freed_memory(); // as the runner binary does at start
    let args: Vec<String> = std::env::args().collect();
    let threads: i32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let steps: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    tch::set_num_threads(threads);
    let r34 = BodySpec::arch("resnet34", -2, None).unwrap();
    time_case("siamese_resnet34_224_bs16", r34, PairHeadSpec::Concat(HeadSpec::new(1024, 2)), 16, [3, 224, 224], steps);
    // Koch et al.'s conv stack with BatchNorm and global pooling (as benches/step.py builds it).
    let small = ConvNetSpec { input: (105, 105), batch_norm: true, embed: 0, sigmoid: false, ..ConvNetSpec::default() };
    time_case("siamese_convnet_105_bs64", BodySpec::ConvNet(small), PairHeadSpec::L1, 64, [1, 105, 105], steps);
}
