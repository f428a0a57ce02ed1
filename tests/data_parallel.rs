//! Data-parallel training through the real binary, on real processes (CPU, Gloo,
//! 127.0.0.1): a group of 2 with batches of 8 against one process with batches of 16 (every
//! step's loss, the validation metrics and the final weights), a rerun of the group
//! (identical metrics.jsonl), a rank killed mid-fit, a group stopped and resumed, and ranks
//! that cannot or must not start.
mod common;
use common::Sandbox;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rows(run: &Path, kind: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap().as_object().unwrap().clone())
        .filter(|r| r["kind"] == kind)
        .collect()
}

fn f(r: &serde_json::Map<String, serde_json::Value>, k: &str) -> f64 {
    r[k].as_f64().unwrap()
}

fn weights(run: &Path) -> Vec<(String, tch::Tensor)> {
    let mut w = tch::Tensor::read_safetensors(run.join("models/last.safetensors")).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

fn launch(s: &Sandbox, n: &str, sets: &[&str]) -> common::Ran {
    let mut args = vec!["launch", "--nproc-per-node", n, "--timeout", "30", "dp.rhai"];
    for set in sets {
        args.extend(["--set", set]);
    }
    s.run(&args)
}

#[test]
fn two_ranks_of_8_train_as_one_process_of_16_and_a_rerun_repeats_them() {
    let s = Sandbox::new();
    s.write("dp.rhai", common::DP_SCRIPT);
    s.run(&["dp.rhai", "--set", "bs=16"]).ok();
    let one = s.last_run();
    let ran = launch(&s, "2", &["bs=8"]);
    ran.ok();
    let group = s.last_run();
    assert_ne!(one, group);
    assert_eq!(s.runs().len(), 2, "the group leaves one run folder");
    let (a, b) = (rows(&one, "batch"), rows(&group, "batch"));
    assert_eq!((a.len(), b.len()), (40, 40), "same steps: 2 epochs of 20");
    let worst = a.iter().zip(&b).map(|(x, y)| (f(x, "loss") - f(y, "loss")).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-5, "every step's loss agrees within 1e-5; worst {worst}");
    for (x, y) in rows(&one, "epoch").iter().zip(&rows(&group, "epoch")) {
        assert_eq!(x["accuracy"], y["accuracy"], "validation over the whole set, padding trimmed: {x:?} {y:?}");
        assert!((f(x, "valid_loss") - f(y, "valid_loss")).abs() < 1e-5, "{x:?} {y:?}");
    }
    let (wa, wb) = (weights(&one), weights(&group));
    assert_eq!(wa.len(), wb.len());
    for ((na, ta), (nb, tb)) in wa.iter().zip(&wb) {
        assert_eq!(na, nb);
        let d = (ta - tb).abs().max().double_value(&[]);
        assert!(d < 1e-5, "{na}: final weights differ by {d}");
    }
    let rec = s.record(&group);
    let dist = rec["dist"].as_table().unwrap();
    assert_eq!((dist["world_size"].as_integer(), dist["backend"].as_str()), (Some(2), Some("gloo")));
    assert_eq!(dist["hosts"].as_array().unwrap().len(), 2);
    let log = std::fs::read_to_string(group.join("rank-1.log")).unwrap();
    assert!(log.contains("rank 1") && log.contains("completed"), "{log}");
    assert!(!ran.stderr.contains("rank 1 (pid"), "rank 1 writes to its log, not the console");

    // The same seed and world size again: the same bytes.
    launch(&s, "2", &["bs=8"]).ok();
    common::assert_same_file(&group.join("metrics.jsonl"), &s.last_run().join("metrics.jsonl"), "two runs of one group");
}

#[test]
fn local_batchnorm_statistics_and_a_model_without_batchnorm_train_in_a_group() {
    let s = Sandbox::new();
    s.write("dp.rhai", common::DP_SCRIPT);
    s.run(&["dp.rhai", "--set", "bs=16", "--set", "bn=false", "--set", "epochs=1"]).ok();
    let one = s.last_run();
    launch(&s, "2", &["bs=8", "bn=false", "epochs=1"]).ok();
    let worst = rows(&one, "batch").iter().zip(&rows(&s.last_run(), "batch")).map(|(x, y)| (f(x, "loss") - f(y, "loss")).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-5, "without BatchNorm too; worst {worst}");
    // Each rank's own statistics: a different fit from the synchronised one, but a fit.
    launch(&s, "2", &["bs=8", "sync_bn=false", "epochs=1"]).ok();
    assert_eq!(rows(&s.last_run(), "batch").len(), 20);
}

/// The pid rank `rank` wrote in its log, once it has.
fn rank_pid(run: &Path, rank: usize) -> Option<i32> {
    let log = std::fs::read_to_string(run.join(format!("rank-{rank}.log"))).ok()?;
    log.split("(pid ").nth(1)?.split(')').next()?.parse().ok()
}

fn newest_run(runs: &Path) -> Option<PathBuf> {
    std::fs::read_dir(runs).ok()?.flatten().map(|e| e.path()).filter(|p| p.join("run.toml").is_file()).max()
}

/// A 2-rank group started on a fit long enough to be stopped part-way (30 epochs).
fn long_group() -> (Sandbox, std::process::Child) {
    let s = Sandbox::new();
    s.write("dp.rhai", common::DP_SCRIPT);
    let child = s
        .command(&["launch", "--nproc-per-node", "2", "--timeout", "20", "dp.rhai", "--set", "bs=8", "--set", "epochs=30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (s, child)
}

#[test]
fn a_rank_killed_mid_fit_stops_the_group_with_its_name() {
    let (s, child) = long_group();
    let start = Instant::now();
    let (run, pid) = loop {
        assert!(start.elapsed() < Duration::from_secs(120), "the group never got going");
        std::thread::sleep(Duration::from_millis(100));
        let Some(run) = newest_run(&s.path().join("runs")) else { continue };
        let steps = std::fs::read_to_string(run.join("metrics.jsonl")).map(|t| t.matches("\"batch\"").count()).unwrap_or(0);
        if let Some(pid) = rank_pid(&run, 1).filter(|_| steps >= 5) {
            break (run, pid);
        }
    };
    Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    let killed = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(killed.elapsed() < Duration::from_secs(30), "stopped within the timeout: {:?}", killed.elapsed());
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("rank 1 was killed by signal 9"), "{stderr}");
    let rec = s.record(&run);
    assert_eq!(rec["status"].as_str(), Some("failed"));
    let error = rec["error"].as_str().unwrap();
    assert!(error.contains("rank 1 died or hung"), "{error}");
}

#[test]
fn a_group_stopped_by_sigterm_resumes_as_if_never_stopped_and_only_with_its_world_size() {
    let s = Sandbox::new();
    s.write("dp.rhai", common::DP_SCRIPT);
    let sets = ["bs=8", "epochs=3"];
    launch(&s, "2", &sets).ok();
    let whole = s.last_run();
    let child = s
        .command(&["launch", "--nproc-per-node", "2", "--timeout", "30", "dp.rhai", "--set", sets[0], "--set", sets[1]])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let run = loop {
        assert!(start.elapsed() < Duration::from_secs(120), "the group never got going");
        std::thread::sleep(Duration::from_millis(20));
        if let Some(run) = newest_run(&s.path().join("runs")).filter(|r| *r != whole) {
            break run;
        }
    };
    // Mid-epoch: after the first epoch's row (index 0) and a batch of the second.
    common::wait_for_batch_after(&run.join("metrics.jsonl"), "\"epoch\":0,", 120);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.record(&run)["status"].as_str(), Some("interrupted"));
    let partial = rows(&run, "batch").len();
    assert!((20..60).contains(&partial), "stopped part-way: {partial} of 60 steps");
    let name = run.display().to_string();

    // Another world size is refused before any rank joins, naming both.
    let port = runner::dist::launch::free_port().unwrap().to_string();
    let env = [("RANK", "0"), ("WORLD_SIZE", "3"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", port.as_str())];
    let o = s.command(&["resume", &name]).envs(env).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("was a run of 2 processes, but this resume is a group of 3 processes"), "{e}");
    assert_eq!(s.record(&run)["status"].as_str(), Some("interrupted"), "a refused resume leaves the record alone");

    // `runner resume` starts the group again as `runner launch` did; both ranks restore rank 0's checkpoint.
    let r = s.run(&["resume", &name]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("starting 2 again") && r.stderr.contains("resumed from its checkpoint at epoch 1 of 3"), "{}", r.stderr);
    let log = std::fs::read_to_string(run.join("rank-1.log")).unwrap();
    assert!(log.contains("resumed from its checkpoint at epoch 1 of 3"), "rank 1 restored it too:\n{log}");
    common::assert_same_file(&run.join("metrics.jsonl"), &whole.join("metrics.jsonl"), "the resumed group against the uninterrupted one");
    let rec = s.record(&run);
    assert_eq!(rec["status"].as_str(), Some("completed"));
    assert_eq!(rec["resumed"].as_array().map(Vec::len), Some(1));
    let attempts: Vec<_> = rec["attempts"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap().to_string()).collect();
    assert_eq!(attempts, ["interrupted", "completed"]);
    assert_eq!(rec["dist"]["world_size"].as_integer(), Some(2));
    let (wa, wb) = (weights(&whole), weights(&run));
    assert!(wa.iter().zip(&wb).all(|((na, ta), (nb, tb))| na == nb && ta.equal(tb)), "the same final weights, bit for bit");
}

/// One rank started by hand, as torchrun or srun would start it.
fn rank(s: &Sandbox, rank: usize, port: u16, addr: &str, sets: &[&str]) -> Command {
    let mut args = vec!["dp.rhai"];
    for set in sets {
        args.extend(["--set", set]);
    }
    let mut c = s.command(&args);
    c.env("RANK", rank.to_string())
        .env("WORLD_SIZE", "2")
        .env("MASTER_ADDR", addr)
        .env("MASTER_PORT", port.to_string())
        .env("RUNNER_DIST_TIMEOUT", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn ranks_that_disagree_or_cannot_reach_the_store_fail_at_start_up_naming_why() {
    let s = Sandbox::new();
    s.write("dp.rhai", common::DP_SCRIPT);
    let port = runner::dist::launch::free_port().unwrap();
    let r0 = rank(&s, 0, port, "127.0.0.1", &["bs=8"]).spawn().unwrap();
    let r1 = rank(&s, 1, port, "127.0.0.1", &["bs=4"]).spawn().unwrap();
    let (o0, o1) = (r0.wait_with_output().unwrap(), r1.wait_with_output().unwrap());
    let e1 = String::from_utf8_lossy(&o1.stderr);
    assert_eq!((o0.status.code(), o1.status.code()), (Some(1), Some(1)), "{e1}");
    assert!(e1.contains("disagree on params"), "{e1}");
    let rec = s.record(&s.last_run());
    assert_eq!(rec["status"].as_str(), Some("failed"));
    assert!(rec["error"].as_str().unwrap().contains("rank 1"), "{rec:?}");

    // Nobody serves the store at this port: rank 1 names the address it tried.
    let lonely = runner::dist::launch::free_port().unwrap();
    let o = rank(&s, 1, lonely, "127.0.0.1", &["bs=8"]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains(&format!("cannot reach the group's store at 127.0.0.1:{lonely}")), "{e}");
}

#[test]
fn torchrun_starts_a_group_through_its_own_store() {
    let torchrun = common::project_root().join(".venv/bin/torchrun");
    if !torchrun.is_file() {
        eprintln!("SKIPPED: no torchrun in the venv");
        return;
    }
    let s = Sandbox::new();
    s.write("dp.rhai", common::DP_SCRIPT);
    let runner = env!("CARGO_BIN_EXE_runner");
    let o = s
        .command_of(&torchrun, &["--nproc-per-node", "2", "--no-python", runner, "dp.rhai", "--set", "bs=8", "--set", "epochs=1"])
        .env("RUNNER_DIST_TIMEOUT", "30")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = s.last_run();
    let dist = s.record(&run)["dist"].as_table().unwrap().clone();
    assert_eq!((dist["launcher"].as_str(), dist["world_size"].as_integer()), (Some("torchrun"), Some(2)));
    assert_eq!(rows(&run, "batch").len(), 20);
}

#[test]
fn lr_find_fine_tune_tta_and_interpretation_see_what_one_process_sees() {
    let s = Sandbox::new();
    let script = common::DP_SCRIPT.replace(
        "learn.fit_one_cycle(param(\"epochs\", 2), 3e-3);",
        r#"learn.lr_find(#{ num_it: 10 });
learn.fine_tune(1, 3e-3);
print(`tta ${learn.tta(#{ n: 2 }).accuracy}`);
let interp = learn.interpretation();
print(`confused ${interp.most_confused(#{ min_val: 2 })}`);
interp.plot_top_losses(4, "top.png");"#,
    );
    assert_ne!(script, common::DP_SCRIPT);
    s.write("dp.rhai", &script);
    let one = s.run(&["dp.rhai", "--set", "bs=16"]);
    one.ok();
    let group = launch(&s, "2", &["bs=8"]);
    group.ok();
    let said = |r: &common::Ran| r.stdout.lines().filter(|l| l.starts_with("tta") || l.starts_with("confused")).map(String::from).collect::<Vec<_>>();
    assert_eq!(said(&one).len(), 2, "{}", one.stdout);
    assert_eq!(said(&one), said(&group));
    assert!(s.last_run().join("top.png").is_file());
}

#[test]
fn sigterm_to_the_launcher_stops_every_rank_at_one_batch() {
    let (s, child) = long_group();
    let start = Instant::now();
    let run = loop {
        assert!(start.elapsed() < Duration::from_secs(120), "the group never got going");
        std::thread::sleep(Duration::from_millis(100));
        let Some(run) = newest_run(&s.path().join("runs")) else { continue };
        if std::fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|t| t.matches("\"batch\"").count() >= 5) {
            break run;
        }
    };
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", String::from_utf8_lossy(&out.stderr));
    let rec = s.record(&run);
    assert_eq!((rec["status"].as_str(), rec["signal"].as_str()), (Some("interrupted"), Some("SIGTERM")));
    let at = |text: &str| text.split("interrupted by SIGTERM at ").nth(1).and_then(|t| t.split(';').next()).map(String::from);
    let (leader, other) = (at(rec["error"].as_str().unwrap()), at(&std::fs::read_to_string(run.join("rank-1.log")).unwrap()));
    assert!(leader.is_some(), "{rec:?}");
    assert_eq!(leader, other, "both ranks stop at the same batch");
}
