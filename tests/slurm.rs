//! Sweeps on a real one-node Slurm cluster (Debian's slurm 22.05, brought up once for this
//! file by scripts/slurm-local with MaxArraySize=3 and MinJobAge=2, stopped when the tests
//! exit): job arrays with the runner's records as the truth, failures and resubmission,
//! chunking, dry runs, a task killed with -9, and SIGTERM (scancel) then resume on the
//! cluster, the point `interrupted` in between; `scripts/slurm-local down` stopping every
//! daemon it started; srun tasks as one data-parallel group, alone and as every point of a
//! sweep (--ntasks-per-node). Without root and without Slurm installed the cluster cannot start:
//! those tests say so and pass without checking anything. A cluster that is down or not
//! configured is one clear line, fast; that needs no cluster.
mod common;
use common::Sandbox;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `SLURM_CONF` of the cluster shared by this file's tests, or None when it cannot run here.
fn cluster() -> Option<&'static Path> {
    static CONF: OnceLock<Option<PathBuf>> = OnceLock::new();
    CONF.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("slurm-test-{}", std::process::id()));
        let root = unsafe { libc::geteuid() } == 0;
        let installed = Command::new("sh")
            .args(["-c", "command -v slurmctld && command -v sbatch && command -v munged"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !root {
            eprintln!("SKIPPED: the Slurm tests start munged, slurmctld and slurmd, which needs root (installed: {installed})");
            return None;
        }
        let out = Command::new(common::project_root().join("scripts/slurm-local"))
            .args(["up", &dir.display().to_string(), "--until-exit", &std::process::id().to_string(), "MaxArraySize=3", "MinJobAge=2"])
            .output()
            .unwrap();
        assert!(out.status.success(), "cannot start the Slurm cluster:\n{}", String::from_utf8_lossy(&out.stderr));
        Some(dir.join("slurm.conf"))
    })
    .as_deref()
}

fn sandbox() -> Option<(Sandbox, &'static Path)> {
    cluster().map(|c| (Sandbox::new(), c))
}

fn run(sb: &Sandbox, conf: &Path, args: &[&str]) -> common::Ran {
    sb.command(args).env("SLURM_CONF", conf).env("RUNNER_SWEEP_POLL_SECS", "1").output().unwrap().into()
}

fn hello() -> String {
    common::project_root().join("experiments/hello.rhai").display().to_string()
}

fn sweep_id(stdout: &str) -> String {
    stdout.split_whitespace().find(|w| w.starts_with("sweep-")).expect("the sweep prints its id").trim_end_matches(':').to_string()
}

fn status(sb: &Sandbox, conf: &Path, id: &str) -> Vec<Value> {
    let r = run(sb, conf, &["sweep", "status", id, "--json"]);
    r.ok();
    serde_json::from_str::<Value>(&r.stdout).unwrap().as_array().unwrap().clone()
}

fn states(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| r["state"].as_str().unwrap().to_string()).collect()
}

fn squeue(conf: &Path, id: &str) -> String {
    let out = Command::new("squeue").args(["-h", "-r", "--states=all", "--name", &format!("runner-{id}")]).env("SLURM_CONF", conf).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_dir(sb: &Sandbox, row: &Value) -> PathBuf {
    sb.path().join("runs").join(row["run"].as_str().unwrap())
}

#[test]
fn a_three_point_sweep_is_one_array_whose_records_outlive_squeue() {
    let Some((sb, conf)) = sandbox() else { return };
    // The node has 2 CPUs: two tasks of one CPU each share it.
    let r = run(&sb, conf, &["sweep", &hello(), "--grid", "n=10,100,1000", "--on", "slurm", "--max-parallel", "2", "--cpus-per-task", "1", "--wait"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let id = sweep_id(&r.stdout);
    assert!(r.stdout.contains("3 runs submitted as Slurm job") && r.stdout.contains("(array 0-2%2), 1 CPU(s) per task"), "{}", r.stdout);
    let rows = status(&sb, conf, &id);
    assert_eq!(states(&rows), ["completed"; 3]);
    let job = rows[0]["slurm_array_job_id"].as_str().unwrap().to_string();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["slurm_job_id"].as_str().unwrap(), format!("{job}_{i}"));
        assert_eq!(row["attempts"], 1);
        let dir = run_dir(&sb, row);
        let rec = sb.record(&dir);
        assert_eq!(rec["id"].as_str(), row["run_id"].as_str());
        let slurm = rec["slurm"].as_table().expect("run.toml has the Slurm job");
        assert_eq!(slurm["array_job_id"].as_integer().unwrap().to_string(), job);
        assert_eq!(slurm["array_task_id"].as_integer(), Some(i as i64));
        assert!(slurm["job_id"].as_integer().is_some());
        assert_eq!(rec["attempt"].as_integer(), Some(1));
        assert_eq!(rec["sweep"].as_str(), Some(id.as_str()));
        assert_eq!((rec["threads"].as_integer(), rec["threads_from"].as_str()), (Some(1), Some("SLURM_CPUS_PER_TASK")), "the task uses its CPUs");
        let out = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("slurm-"))
            .expect("the task's Slurm output is in its run folder");
        assert!(std::fs::read_to_string(out.path()).unwrap().contains("hello from runner"));
    }
    // MinJobAge=2: finished jobs leave squeue; the records still say how the points ended.
    let t = Instant::now();
    while !squeue(conf, &id).trim().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(60), "squeue never forgot the jobs");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(states(&status(&sb, conf, &id)), ["completed"; 3]);
    let r = run(&sb, conf, &["sweep", "wait", &id]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&sb, conf, &["compare", &id]);
    assert!(r.stdout.contains("n=1000"), "{}", r.stdout);
}

#[test]
fn a_failing_point_fails_the_wait_and_resubmit_retries_only_it() {
    let Some((sb, conf)) = sandbox() else { return };
    sb.write("t.rhai", "let n = param(\"n\", 1);\nif n == 2 { let f = get_image_files(\"needed\"); }\nlog_metric(\"n\", n);\n");
    let r = run(&sb, conf, &["sweep", "t.rhai", "--grid", "n=1,2,3", "--on", "slurm", "--wait"]);
    assert_eq!(r.code, 1, "a failed point makes wait fail:\n{}\n{}", r.stdout, r.stderr);
    let id = sweep_id(&r.stdout);
    let rows = status(&sb, conf, &id);
    assert_eq!(states(&rows), ["completed", "failed", "completed"]);
    assert!(rows[1]["reason"].as_str().unwrap().contains("needed"), "status says why: {}", rows[1]);
    let r = run(&sb, conf, &["sweep", "status", &id]);
    assert!(r.stdout.contains("2 completed, 1 failed"), "{}", r.stdout);

    std::fs::create_dir(sb.path().join("needed")).unwrap();
    let photo = common::datasets().join("oxford-iiit-pet-sample/images").read_dir().unwrap().flatten().next().unwrap().path();
    std::fs::copy(photo, sb.path().join("needed/a.jpg")).unwrap();
    let r = run(&sb, conf, &["sweep", "resubmit", &id, "--wait"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("point 1 resubmitted as Slurm job"), "{}", r.stdout);
    let rows = status(&sb, conf, &id);
    assert_eq!(states(&rows), ["completed"; 3]);
    let attempts: Vec<u64> = rows.iter().map(|r| r["attempts"].as_u64().unwrap()).collect();
    assert_eq!(attempts, [1, 2, 1]);
    let rec = sb.record(&run_dir(&sb, &rows[1]));
    assert_eq!(rec["attempt"].as_integer(), Some(2));
    assert_eq!(rec["params"]["n"]["value"].as_integer(), Some(2), "same params");
    assert_eq!(rec["seed"].as_integer(), Some(42), "same seed");
}

#[test]
fn sweeps_larger_than_max_array_size_are_chunked() {
    let Some((sb, conf)) = sandbox() else { return };
    let r = run(&sb, conf, &["sweep", &hello(), "--grid", "n=10,20", "--grid", "scale=1,2", "--on", "slurm", "--wait"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("4 runs submitted as Slurm jobs") && r.stdout.contains("(array 0-2)") && r.stdout.contains("(array 0-0)"),
        "{}",
        r.stdout
    );
    let id = sweep_id(&r.stdout);
    let rows = status(&sb, conf, &id);
    assert_eq!(states(&rows), ["completed"; 4]);
    assert_ne!(rows[0]["slurm_array_job_id"], rows[3]["slurm_array_job_id"]);
    assert_eq!(rows[3]["slurm_array_task_id"], 0, "the second chunk starts at index 0");
    let rec = sb.record(&run_dir(&sb, &rows[3]));
    assert_eq!(rec["params"]["n"]["value"].as_integer(), Some(20));
    assert_eq!(rec["params"]["scale"]["value"].as_float(), Some(2.0));
}

#[test]
fn a_dry_run_prints_the_batch_script_and_submits_nothing() {
    let Some((sb, conf)) = sandbox() else { return };
    let r = run(
        &sb,
        conf,
        &["sweep", &hello(), "--grid", "n=10,100", "--on", "slurm", "--dry-run", "--sbatch", "--time=00:05:00 --mem=1G", "--threads", "3"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("#SBATCH --array=0-1\n") && r.stdout.contains("sweep task"), "{}", r.stdout);
    assert!(r.stdout.contains("#SBATCH --cpus-per-task=3\n"), "a task asks for what one point needs (--threads): {}", r.stdout);
    let line = r.stdout.lines().find(|l| l.starts_with("# submitted with: sbatch --parsable")).expect("the sbatch command");
    assert!(line.contains("--time=00:05:00") && line.contains("--mem=1G"), "the user's options pass through: {line}");
    let id = sweep_id(&r.stdout);
    assert!(!sb.path().join("runs").exists(), "nothing was created");
    assert!(squeue(conf, &id).trim().is_empty());
}

#[test]
fn a_task_killed_with_sigkill_is_failed_not_running_forever() {
    let Some((sb, conf)) = sandbox() else { return };
    sb.write("slow.rhai", "let n = param(\"n\", 1);\nlet s = 0;\nfor i in 0..200000000 { s += i; }\nlog_metric(\"s\", s);\n");
    let r = run(&sb, conf, &["sweep", "slow.rhai", "--grid", "n=1", "--on", "slurm", "--max-operations", "0"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let id = sweep_id(&r.stdout);
    let t = Instant::now();
    let pid = loop {
        let rows = status(&sb, conf, &id);
        if rows[0]["state"] == "running" && rows[0]["run_id"].is_string() {
            break sb.record(&run_dir(&sb, &rows[0]))["pid"].as_integer().unwrap();
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the task never ran: {rows:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let t = Instant::now();
    loop {
        let rows = status(&sb, conf, &id);
        let s = rows[0]["state"].as_str().unwrap().to_string();
        if s != "running" {
            assert!(s == "failed" || s == "missing", "{rows:?}");
            assert!(rows[0]["reason"].as_str().unwrap().contains("without closing its record"), "{rows:?}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "a killed task stays `running`: {rows:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let r = run(&sb, conf, &["sweep", "wait", &id]);
    assert_eq!(r.code, 1, "{}", r.stdout);
}

#[test]
fn sigterm_on_the_cluster_then_resubmit_resumes_byte_identical() {
    let Some((sb, conf)) = sandbox() else { return };
    let orl = common::project_root().join("experiments/orl_faces.rhai").display().to_string();
    let smoke = ["--device", "cpu", "--set", "size=48", "--set", "eval_repeats=2", "--set", "bs=16"];
    let mut args = vec!["sweep", orl.as_str(), "--grid", "epochs=6", "--on", "slurm"];
    args.extend(smoke);
    let r = run(&sb, conf, &args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let id = sweep_id(&r.stdout);
    let t = Instant::now();
    let dir = loop {
        let rows = status(&sb, conf, &id);
        let dir = run_dir(&sb, &rows[0]);
        if dir.join("metrics.jsonl").is_file() {
            break dir;
        }
        assert!(t.elapsed() < Duration::from_secs(180), "the task never started: {rows:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Mid-epoch on any machine: after the second epoch's row (index 1) and a batch of the third.
    common::wait_for_batch_after(&dir.join("metrics.jsonl"), "\"epoch\":1,", 180);
    // What Slurm does at a time limit or preemption: SIGTERM to the task (the batch shell is the runner).
    let job = status(&sb, conf, &id)[0]["slurm_job_id"].as_str().unwrap().to_string();
    let out = Command::new("scancel").args(["--full", "--signal=TERM", &job]).env("SLURM_CONF", conf).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = run(&sb, conf, &["sweep", "wait", &id]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("1 interrupted"), "{}", r.stdout);
    let rows = status(&sb, conf, &id);
    assert_eq!(rows[0]["state"], "interrupted", "{rows:?}");
    assert!(rows[0]["reason"].as_str().unwrap().contains("by SIGTERM"), "{rows:?}");

    let r = run(&sb, conf, &["sweep", "resubmit", &id, "--wait"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rows = status(&sb, conf, &id);
    assert_eq!(rows[0]["state"], "completed");
    assert_eq!(rows[0]["attempts"], 2);
    assert_eq!(run_dir(&sb, &rows[0]), dir, "the interrupted run resumed in its own folder");
    let rec = sb.record(&dir);
    assert_eq!(rec["resumed"].as_array().map(|a| a.len()), Some(1));
    let attempts = rec["attempts"].as_array().unwrap();
    let states: Vec<&str> = attempts.iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(states, ["interrupted", "completed"], "{attempts:?}");
    assert!(attempts.iter().all(|a| a["slurm_job_id"].as_str().is_some_and(|j| j.contains('_'))), "each attempt names its array task: {attempts:?}");
    let sum: f64 = attempts.iter().map(|a| a["duration_s"].as_float().unwrap()).sum();
    assert!((rec["duration_s"].as_float().unwrap() - sum).abs() < 2e-3, "duration_s sums the attempts: {rec:?}");
    let log = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("slurm-")).count();
    assert_eq!(log, 2, "both attempts' Slurm output kept");

    let mut plain = vec![orl.as_str(), "--set", "epochs=6"];
    plain.extend(smoke);
    sb.run(&plain).ok();
    let reference = sb.last_run();
    assert_ne!(reference, dir);
    common::assert_same_file(
        &dir.join("metrics.jsonl"),
        &reference.join("metrics.jsonl"),
        "preempted, resubmitted and resumed, the run's metrics.jsonl equals an uninterrupted run's",
    );
}

#[test]
fn the_readme_cluster_example_runs_on_the_cluster() {
    let Some((sb, conf)) = sandbox() else { return };
    let readme = std::fs::read_to_string(common::project_root().join("README.md")).unwrap();
    let block =
        common::readme_blocks(&readme, "sh").into_iter().find(|b| b.contains("--on slurm --max-parallel")).expect("the README's cluster example");
    let experiments = format!("{}/experiments/", common::project_root().display());
    let mut ran = 0;
    for line in block.lines() {
        let cmd = line.split(" #").next().unwrap().trim();
        let Some(rest) = cmd.strip_prefix("runner ") else { continue };
        let rest = rest.replace("experiments/", &experiments);
        let args: Vec<&str> = rest.split_whitespace().collect();
        let r = run(&sb, conf, &args);
        assert_eq!(r.code, 0, "README command `{cmd}` failed:\n{}\n{}", r.stdout, r.stderr);
        ran += 1;
    }
    assert!(ran >= 7, "{ran}");
}

/// A `--on slurm` sweep against a cluster that cannot answer: one line saying what to do,
/// fast, without Slurm's own diagnostics; nothing created.
fn refused_fast(sb: &Sandbox, conf: Option<&Path>, says: &str) {
    let mut c = sb.command(&["sweep", &hello(), "--grid", "n=1,2", "--on", "slurm"]);
    match conf {
        Some(p) => c.env("SLURM_CONF", p),
        None => c.env_remove("SLURM_CONF"),
    };
    let t = Instant::now();
    let r: common::Ran = c.output().unwrap().into();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.code, 1, "{}", r.stderr);
    // Slurm's own tools wait out MessageTimeout (10 s) before they fail; the refusal asks
    // nothing of a cluster it cannot reach (a 0.5 s probe), so it ends well before that even
    // on a loaded machine (a start-up alone took 2.0 s beside the other cluster tests).
    assert!(secs < 8.0, "took {secs:.1}s: {}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {}", r.stderr);
    assert!(r.stderr.contains(says) && r.stderr.contains("SLURM_CONF") && r.stderr.contains("scripts/slurm-local up"), "{}", r.stderr);
    for raw in ["scontrol:", "error:", "DNS SRV", "fatal"] {
        assert!(!r.stderr.contains(raw), "no raw Slurm output ({raw}): {}", r.stderr);
    }
    assert!(!sb.path().join("runs").exists(), "nothing created");
}

#[test]
fn issue_29_an_unreachable_cluster_is_one_line_with_the_fix() {
    let sb = Sandbox::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = sb.write("slurm.conf", &format!("ClusterName=gone\nSlurmctldHost=localhost\nSlurmctldPort={port}\n"));
    refused_fast(&sb, Some(&conf), &format!("does not answer at localhost:{port}"));
    refused_fast(&sb, Some(&sb.path().join("nosuch.conf")), "cannot read SLURM_CONF=");
    if !Path::new("/etc/slurm/slurm.conf").exists() {
        refused_fast(&sb, None, "Slurm is not configured here");
    }
    // A dry run needs no cluster.
    let r: common::Ran =
        sb.command(&["sweep", &hello(), "--grid", "n=1,2", "--on", "slurm", "--dry-run"]).env("SLURM_CONF", &conf).output().unwrap().into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("#SBATCH --array=0-1"), "{}", r.stdout);
}

/// The pids in a cluster folder's pid files (slurmd, slurmctld, munged).
fn daemon_pids(dir: &Path) -> Vec<(String, i32)> {
    ["run/slurmd.pid", "run/slurmctld.pid", "munge/munged.pid"]
        .iter()
        .filter_map(|f| Some((f.to_string(), std::fs::read_to_string(dir.join(f)).ok()?.trim().parse().ok()?)))
        .collect()
}

#[test]
fn issue_29_slurm_local_down_stops_every_daemon_it_started() {
    if cluster().is_none() {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("slurm-down-{}", std::process::id()));
    let script = common::project_root().join("scripts/slurm-local");
    let out = Command::new(&script).arg("up").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pids = daemon_pids(&dir);
    assert_eq!(pids.len(), 3, "slurmd, slurmctld and the cluster's own munged: {pids:?}");
    // A process is gone when /proc no longer has it, or has only its zombie (nothing reaps here).
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|st| st.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"))
    };
    assert!(pids.iter().all(|(_, p)| alive(*p)), "{pids:?}");
    let out = Command::new(&script).arg("down").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let still: Vec<_> = pids.iter().filter(|(_, p)| alive(*p)).collect();
    assert!(still.is_empty(), "still running after down: {still:?}");
    // The shared cluster of the other tests, with its own munged, still answers.
    let conf = cluster().unwrap();
    let sinfo = Command::new("sinfo").args(["-h", "-o", "%T"]).env("SLURM_CONF", conf).output().unwrap();
    assert!(sinfo.status.success(), "{}", String::from_utf8_lossy(&sinfo.stderr));
}

#[test]
fn two_srun_tasks_train_as_one_data_parallel_group() {
    let Some((sb, conf)) = sandbox() else { return };
    sb.write("dp.rhai", common::DP_SCRIPT);
    let runner = env!("CARGO_BIN_EXE_runner");
    let r: common::Ran = sb
        .command_of(Path::new("srun"), &["--ntasks-per-node=2", "--nodes=1", runner, "dp.rhai", "--set", "bs=8", "--set", "epochs=1"])
        .env("SLURM_CONF", conf)
        .env("RUNNER_DIST_TIMEOUT", "60")
        .output()
        .unwrap()
        .into();
    r.ok();
    let run = sb.last_run();
    assert_eq!(sb.runs().len(), 1, "one record for the two tasks");
    let rec = sb.record(&run);
    let dist = rec["dist"].as_table().unwrap();
    assert_eq!((dist["launcher"].as_str(), dist["world_size"].as_integer()), (Some("srun"), Some(2)));
    assert!(run.join("rank-1.log").is_file());
}

#[test]
fn a_sweep_with_two_tasks_per_node_runs_every_point_as_a_group_of_two() {
    let Some((sb, conf)) = sandbox() else { return };
    sb.write("dp.rhai", common::DP_SCRIPT);
    let args = [
        "sweep",
        "dp.rhai",
        "--grid",
        "bs=8,16",
        "--set",
        "epochs=1",
        "--on",
        "slurm",
        "--ntasks-per-node",
        "2",
        "--nodes",
        "1",
        "--cpus-per-task",
        "1",
    ];
    let dry = run(&sb, conf, &[&args[..], &["--dry-run"]].concat());
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    for line in ["#SBATCH --nodes=1\n", "#SBATCH --ntasks-per-node=2\n", "exec srun --cpus-per-task=1 "] {
        assert!(dry.stdout.contains(line), "{line:?} in:\n{}", dry.stdout);
    }
    let r: common::Ran = sb
        .command(&[&args[..], &["--wait"]].concat())
        .env("SLURM_CONF", conf)
        .env("RUNNER_SWEEP_POLL_SECS", "1")
        .env("RUNNER_DIST_TIMEOUT", "60")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("each run a group of 2 tasks"), "{}", r.stdout);
    let rows = status(&sb, conf, &sweep_id(&r.stdout));
    assert_eq!(states(&rows), ["completed", "completed"]);
    for row in &rows {
        let dir = run_dir(&sb, row);
        let dist = sb.record(&dir)["dist"].as_table().unwrap().clone();
        assert_eq!((dist["world_size"].as_integer(), dist["launcher"].as_str()), (Some(2), Some("srun")), "{}", dir.display());
        assert!(std::fs::read_to_string(dir.join("rank-1.log")).unwrap().contains("completed"), "rank 1 ran the point too");
    }
    assert_eq!(sb.runs().len(), 2, "one record per point, not per task");

    // The README's example of it, on the cluster.
    let (sb, _) = sandbox().unwrap();
    let readme = std::fs::read_to_string(common::project_root().join("README.md")).unwrap();
    let block = common::readme_blocks(&readme, "sh").into_iter().find(|b| b.contains("--ntasks-per-node 2")).expect("the README's group sweep");
    let experiments = format!("{}/experiments/", common::project_root().display());
    for line in block.lines() {
        let Some(rest) = line.split(" #").next().unwrap().trim().strip_prefix("runner ") else { continue };
        let r = run(&sb, conf, &rest.replace("experiments/", &experiments).split_whitespace().collect::<Vec<_>>());
        assert_eq!(r.code, 0, "README command `{line}` failed:\n{}\n{}", r.stdout, r.stderr);
    }
    let runs = sb.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for dir in runs {
        assert_eq!(sb.record(&dir)["dist"]["world_size"].as_integer(), Some(2), "{}", dir.display());
    }
}
