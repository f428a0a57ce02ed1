//! Sweeps on this machine and resuming stopped runs, through the real binary: points run
//! side by side (`--jobs 2`), status from the records, resubmit, and a run stopped by
//! SIGTERM mid-epoch that `runner resume` finishes with metrics.jsonl equal to an
//! uninterrupted run's, byte for byte.
mod common;
use common::Sandbox;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub fn orl() -> String {
    common::project_root().join("experiments/orl_faces.rhai").display().to_string()
}

/// ORL at smoke settings, long enough (6 epochs) to stop in the middle.
pub const ORL_SMOKE: [&str; 10] = ["--device", "cpu", "--set", "size=48", "--set", "eval_repeats=2", "--set", "bs=16", "--seed", "42"];

fn status_json(sb: &Sandbox, id: &str) -> Vec<Value> {
    let r = sb.run(&["sweep", "status", id, "--json"]);
    r.ok();
    serde_json::from_str::<Value>(&r.stdout).unwrap().as_array().unwrap().clone()
}

fn sweep_id(stdout: &str) -> String {
    stdout.split_whitespace().find(|w| w.starts_with("sweep-")).expect("the sweep prints its id").trim_end_matches(':').to_string()
}

/// The newest run folder other than `not`, once it exists.
fn new_run(sb: &Sandbox, not: &[PathBuf]) -> PathBuf {
    let t = Instant::now();
    loop {
        if let Some(r) = sb.runs().into_iter().find(|r| !not.contains(r)) {
            return r;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no new run folder");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn local_sweep_runs_points_side_by_side_and_resubmits_failures() {
    let sb = Sandbox::new();
    // Point n=2 fails until the folder `needed` exists (it lists images there).
    sb.write("t.rhai", "let n = param(\"n\", 1);\nif n == 2 { let f = get_image_files(\"needed\"); }\nlog_metric(\"n\", n);\n");
    let r = sb.run(&["sweep", "t.rhai", "--grid", "n=1,2,3", "--jobs", "2"]);
    assert_eq!(r.code, 1, "a failed point fails the sweep:\n{}\n{}", r.stdout, r.stderr);
    let id = sweep_id(&r.stdout);
    assert!(r.stdout.contains("3 runs on this machine, 2 at a time"), "{}", r.stdout);
    let rows = status_json(&sb, &id);
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["completed", "failed", "completed"]);
    assert!(rows[1]["reason"].as_str().unwrap().contains("needed"), "the error's first line says why: {}", rows[1]);
    for row in &rows {
        let run = sb.path().join("runs").join(row["run"].as_str().unwrap());
        assert!(run.join("output.log").is_file(), "side-by-side points keep their console output");
        assert_eq!(sb.record(&run)["sweep"].as_str(), Some(id.as_str()));
    }
    let failed_run = rows[1]["run"].as_str().unwrap().to_string();

    std::fs::create_dir(sb.path().join("needed")).unwrap();
    std::fs::copy(
        common::datasets().join("oxford-iiit-pet-sample/images").read_dir().unwrap().flatten().next().unwrap().path(),
        sb.path().join("needed/a.jpg"),
    )
    .unwrap();
    let r = sb.run(&["sweep", "resubmit", &id]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("running point 1 again"), "{}", r.stdout);
    let rows = status_json(&sb, &id);
    assert!(rows.iter().all(|r| r["state"] == "completed"), "{rows:?}");
    let attempts: Vec<u64> = rows.iter().map(|r| r["attempts"].as_u64().unwrap()).collect();
    assert_eq!(attempts, [1, 2, 1], "only the failed point ran again");
    assert_ne!(rows[1]["run"].as_str().unwrap(), failed_run, "a failed attempt keeps its own folder and record");
    let old = sb.path().join("runs").join(&failed_run);
    assert_eq!(sb.record(&old)["status"].as_str(), Some("failed"));
    assert_eq!(sb.record(&sb.path().join("runs").join(rows[1]["run"].as_str().unwrap()))["attempt"].as_integer(), Some(2));
    let r = sb.run(&["sweep", "resubmit", &id]);
    assert!(r.stdout.contains("nothing to resubmit"), "{}", r.stdout);
    let r = sb.run(&["compare", &id]);
    r.ok();
}

#[test]
fn sigterm_mid_epoch_then_resume_equals_the_uninterrupted_run() {
    let sb = Sandbox::new();
    let args = |extra: &[&str]| -> Vec<String> {
        [orl()].into_iter().chain(ORL_SMOKE.iter().map(|s| s.to_string())).chain(extra.iter().map(|s| s.to_string())).collect()
    };
    let whole = args(&["--set", "epochs=6"]);
    sb.run(&whole.iter().map(String::as_str).collect::<Vec<_>>()).ok();
    let reference = sb.last_run();

    let child = sb
        .command(&whole.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = new_run(&sb, std::slice::from_ref(&reference));
    // Mid-epoch: after the second epoch's row (index 1) and a batch of the third.
    common::wait_for_batch_after(&run.join("metrics.jsonl"), "\"epoch\":1,", 120);
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "SIGTERM exits 128+15:\n{}", String::from_utf8_lossy(&out.stderr));
    let rec = sb.record(&run);
    assert_eq!(rec["status"].as_str(), Some("interrupted"));
    assert_eq!(rec["signal"].as_str(), Some("SIGTERM"));
    assert!(run.join("models/resume/fit1.json").is_file(), "the fit checkpointed its epochs");
    let partial = std::fs::read(run.join("metrics.jsonl")).unwrap();
    assert!(partial.len() < std::fs::read(reference.join("metrics.jsonl")).unwrap().len(), "stopped part-way");

    let r = sb.run(&["resume", &run.display().to_string()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("resumed from its checkpoint at epoch"), "it skipped the done epochs:\n{}", r.stderr);
    let rec = sb.record(&run);
    assert_eq!(rec["status"].as_str(), Some("completed"));
    assert_eq!(rec["resumed"].as_array().map(|a| a.len()), Some(1));
    assert_attempts(&rec, &["interrupted", "completed"]);
    common::assert_same_file(
        &run.join("metrics.jsonl"),
        &reference.join("metrics.jsonl"),
        "the resumed run's metrics.jsonl equals the uninterrupted run's",
    );
    assert!(!run.join("models/resume").exists(), "a completed run drops its resume state");
    assert!(run.join("models/last.safetensors").is_file());
    let r = sb.run(&["resume", &run.display().to_string()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("nothing to resume"), "{}", r.stderr);
}

/// run.toml lists one attempt per process with these statuses, and `duration_s` is their sum.
fn assert_attempts(rec: &toml::Table, statuses: &[&str]) {
    let attempts = rec["attempts"].as_array().unwrap_or_else(|| panic!("no attempts in {rec:?}"));
    let got: Vec<&str> = attempts.iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(got, statuses, "{attempts:?}");
    assert_eq!(attempts[0].get("signal").and_then(|s| s.as_str()), Some("SIGTERM"), "{attempts:?}");
    let sum: f64 = attempts.iter().map(|a| a["duration_s"].as_float().unwrap()).sum();
    let total = rec["duration_s"].as_float().unwrap();
    assert!((total - sum).abs() < 2e-3 && attempts.iter().all(|a| a["duration_s"].as_float().unwrap() > 0.0), "{total} vs {attempts:?}");
}

#[test]
fn issue_29_a_point_stopped_by_sigterm_is_interrupted_and_its_attempts_add_up() {
    let sb = Sandbox::new();
    // Logs, then waits until the folder `go` holds an image (listing it fails until then).
    sb.write(
        "w.rhai",
        "let n = param(\"n\", 1);\nlog_metric(\"n\", n);\nlet ready = false;\nwhile !ready { try { get_image_files(\"go\"); ready = true; } catch {} }\nlog_metric(\"done\", 1.0);\n",
    );
    let child = sb
        .command(&["sweep", "w.rhai", "--grid", "n=1", "--max-operations", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = new_run(&sb, &[]);
    common::wait_for_text(&run.join("metrics.jsonl"), "\"n\"", 60);
    let pid = sb.record(&run)["pid"].as_integer().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // What scancel, a time limit or preemption does to a task: SIGTERM.
    // SAFETY: signalling the sweep's own task process.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(143), "the sweep exits as its point did:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let id = sweep_id(&stdout);
    let rows = status_json(&sb, &id);
    assert_eq!(rows[0]["state"], "interrupted", "interrupted, not failed: {rows:?}");
    assert!(rows[0]["reason"].as_str().unwrap().contains("SIGTERM"), "{rows:?}");
    let r = sb.run(&["sweep", "status", &id]);
    assert!(r.stdout.contains("1 interrupted") && !r.stdout.contains("failed"), "{}", r.stdout);
    let r = sb.run(&["runs"]);
    assert!(r.stdout.lines().nth(1).unwrap().starts_with("interrupted"), "{}", r.stdout);
    assert_eq!(sb.run(&["sweep", "wait", &id]).code, 1, "an interrupted point has not completed");

    std::fs::create_dir(sb.path().join("go")).unwrap();
    std::fs::copy(
        common::datasets().join("oxford-iiit-pet-sample/images").read_dir().unwrap().flatten().next().unwrap().path(),
        sb.path().join("go/a.jpg"),
    )
    .unwrap();
    let r = sb.run(&["sweep", "resubmit", &id]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rows = status_json(&sb, &id);
    assert_eq!((rows[0]["state"].as_str(), rows[0]["attempts"].as_u64()), (Some("completed"), Some(2)), "{rows:?}");
    assert_eq!(sb.path().join("runs").join(rows[0]["run"].as_str().unwrap()), run, "resumed in its own folder");
    assert_attempts(&sb.record(&run), &["interrupted", "completed"]);
    let r = sb.run(&["show", &run.display().to_string()]);
    assert!(r.stdout.contains("over 2 attempts") && r.stdout.contains("attempt 1     interrupted (SIGTERM) after "), "{}", r.stdout);
    let r = sb.run(&["compare", &id]);
    assert!(r.stdout.lines().any(|l| l.starts_with("attempts ") && l.trim_end().ends_with('2')), "{}", r.stdout);
}
