//! The shipped experiments, run as they are (the same files, at smoke settings) on the
//! real data in ../shared/datasets; determinism and Ctrl-C through a real training run.
mod common;
use common::Sandbox;
use std::time::{Duration, Instant};

fn experiment(name: &str) -> String {
    common::project_root().join("experiments").join(name).display().to_string()
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

const ORL_SMOKE: [&str; 8] = ["--set", "size=48", "--set", "epochs=2", "--set", "eval_repeats=2", "--set", "bs=16"];

#[test]
fn pets_siamese_tutorial_runs_and_leaves_every_artifact() {
    let sb = Sandbox::new();
    let args = ["--set", "size=32", "--set", "bs=16", "--set", "epochs=1", "--set", "arch=resnet18", "--set", "lr_find_iters=8"];
    let r = sb.run(&[&[experiment("pets_siamese.rhai").as_str()][..], &args[..]].concat());
    r.ok();
    assert!(last_line(&r.stdout).starts_with("valid_accuracy: 0."), "{}", r.stdout);
    assert!(r.stdout.contains("epoch") && r.stdout.contains("train_loss") && r.stdout.contains("valid_loss"), "fastai table: {}", r.stdout);
    assert!(r.stdout.contains("Splits(train 296, valid 74)"), "{}", r.stdout);
    let run = sb.last_run();
    for f in [
        "batch.png",
        "lr_find.png",
        "loss_fit1.png",
        "models/siamese_frozen.safetensors",
        "models/last.safetensors",
        "metrics.jsonl",
        "log.jsonl",
        "run.toml",
        "script/pets_siamese.rhai",
    ] {
        assert!(run.join(f).is_file(), "{f} missing in {}", run.display());
    }
    assert!(!run.join("loss_fit2.png").exists(), "lr_find takes no fit number");
    let m = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(m.contains("\"kind\":\"lr_find\"") && m.contains("\"kind\":\"epoch\"") && m.contains("\"valid_accuracy\""));
}

/// Issue 27, 6: the breed classifier with aug_transforms and presizing, as fastai's book
/// writes it, at its tiny defaults (64 px from 128 px items, resnet18 from scratch).
#[test]
fn pets_breeds_aug_trains_with_presizing() {
    let sb = Sandbox::new();
    let r = sb.run(&[experiment("pets_breeds_aug.rhai").as_str()]);
    r.ok();
    assert!(last_line(&r.stdout).starts_with("error_rate: 0."), "{}", r.stdout);
    assert!(r.stdout.contains("\"max_warp\": 0.2") && r.stdout.contains("\"min_scale\": 0.75"), "the preset printed: {}", r.stdout);
    assert!(r.stdout.contains("37 classes") && r.stdout.contains("3x64x64"), "{}", r.stdout);
    assert!(sb.last_run().join("batch.png").is_file() && sb.last_run().join("results.png").is_file());
}

/// The GPU check's script on CPU, small: bf16 autocast and channels-last through a real
/// fit, and the numbers scripts/gpu-check reads.
#[test]
fn gpu_check_script_runs_on_cpu() {
    let sb = Sandbox::new();
    let small = ["--set", "size=32", "--set", "bs=16", "--set", "arch=resnet18", "--set", "n_pairs=64", "--set", "epochs=2"];
    let r = sb.run(&[[experiment("gpu_check.rhai").as_str()].as_slice(), &small].concat());
    r.ok();
    assert!(r.stdout.contains("device: cpu, bf16: true, channels_last: true"), "{}", r.stdout);
    let value = |key: &str| -> f64 {
        let line = r.stdout.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key} in\n{}", r.stdout));
        line.split_whitespace().next().unwrap().trim_end_matches('%').parse().unwrap()
    };
    assert!(value("pairs_per_second: ") > 0.0);
    let wait = value("data_wait_share: ");
    assert!((0.0..=100.0).contains(&wait), "{wait}");
    let record = std::fs::read_to_string(sb.last_run().join("run.toml")).unwrap();
    assert!(record.contains("deterministic = true"), "{record}");
}

#[test]
fn orl_faces_learns_unseen_people_and_repeats_exactly() {
    let sb = Sandbox::new();
    let run = |extra: &[&str]| sb.run(&[&[experiment("orl_faces.rhai").as_str()][..], &ORL_SMOKE[..], extra].concat());
    let r = run(&["--set", "epochs=4"]);
    r.ok();
    let line = last_line(&r.stdout);
    let acc: f64 = line.strip_prefix("heldout_pair_accuracy: ").expect(line).parse().unwrap();
    println!("ORL smoke: {acc}");
    assert!(acc > 0.6, "pair accuracy on unseen people should beat chance clearly, got {acc}");
    // Same seed, same numbers: two identical short runs give identical metrics.jsonl.
    run(&[]).ok();
    run(&[]).ok();
    let runs = sb.runs();
    let m = |i: usize| std::fs::read_to_string(runs[i].join("metrics.jsonl")).unwrap();
    assert!(m(1).contains("\"kind\":\"batch\""));
    assert_eq!(m(1), m(2), "same seed must give identical metrics");
}

#[test]
fn omniglot_oneshot_scores_the_official_runs() {
    let sb = Sandbox::new();
    let r = sb.run(&[
        &experiment("omniglot_oneshot.rhai"),
        "--set",
        "epochs=1",
        "--set",
        "max_files=600",
        "--set",
        "bs=32",
        "--set",
        "val_alphabets=0.5",
        "--set",
        "val_way=2",
        "--set",
        "val_episodes=10",
        "--set",
        "pn_episodes=10",
        "--set",
        "pn_way=5",
    ]);
    r.ok();
    assert!(r.stdout.contains("run20: "), "{}", r.stdout);
    let line = last_line(&r.stdout);
    let acc: f64 = line.strip_prefix("oneshot_accuracy: ").expect(line).parse().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    let m = std::fs::read_to_string(sb.last_run().join("metrics.jsonl")).unwrap();
    assert!(m.contains("\"oneshot_accuracy\"") && m.contains("\"val_oneshot_accuracy\""));
}

#[test]
fn ctrl_c_leaves_an_interrupted_record_and_a_loadable_checkpoint() {
    let sb = Sandbox::new();
    let child = sb
        .command(&[&[experiment("orl_faces.rhai").as_str()][..], &ORL_SMOKE[..], &["--set", "epochs=50"]].concat())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let metrics = loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(run) = sb.runs().pop() {
            let m = run.join("metrics.jsonl");
            if std::fs::read_to_string(&m).unwrap_or_default().contains("\"kind\":\"batch\"") {
                break m;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(120), "training never started");
    };
    unsafe {
        libc_kill(child.id() as i32, 2);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let run = metrics.parent().unwrap();
    let rec = sb.record(run);
    assert_eq!(rec["status"].as_str(), Some("interrupted"));
    assert!(rec["error"].as_str().unwrap().contains("interrupted"));
    let ckpt = run.join("models/last.safetensors");
    let tensors = tch::Tensor::read_safetensors(&ckpt).expect("a loadable checkpoint");
    assert!(tensors.iter().any(|(k, _)| k == "body.conv1.weight"));
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
