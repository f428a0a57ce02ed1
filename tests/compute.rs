//! What a run computes with, through the real binary: the thread count from each source in
//! order (`--threads`, RUNNER_THREADS, OMP_NUM_THREADS, SLURM_CPUS_PER_TASK, the affinity
//! mask, all cores) as run.toml records it, reruns that keep the recorded count, sweep
//! points that share the threads, and `--precision`: recorded, followed by learners
//! unless their options say otherwise, and deterministic in bf16.
mod common;
use common::Sandbox;
use std::process::Command;

const THREAD_VARS: [&str; 3] = ["RUNNER_THREADS", "OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"];

/// `args` run with only `env` of the thread variables set.
fn command(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = sb.command(args);
    for v in THREAD_VARS {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c
}

/// The newest run's recorded threads and their source.
fn recorded_threads(sb: &Sandbox) -> (i64, String) {
    let rec = sb.record(&sb.last_run());
    (rec["threads"].as_integer().unwrap(), rec["threads_from"].as_str().unwrap().to_string())
}

fn cpus() -> (usize, usize) {
    // SAFETY: the kernel fills the set; sysconf reads a value.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
        (libc::CPU_COUNT(&set) as usize, libc::sysconf(libc::_SC_NPROCESSORS_ONLN) as usize)
    }
}

#[test]
fn the_thread_count_comes_from_the_first_source_given_and_is_recorded() {
    let sb = Sandbox::new();
    sb.write("t.rhai", "log_metric(\"x\", 1);\n");
    let all = [("RUNNER_THREADS", "2"), ("OMP_NUM_THREADS", "3,1"), ("SLURM_CPUS_PER_TASK", "4")];
    let check = |flags: &[&str], env: &[(&str, &str)], count: i64, from: &str| {
        let r: common::Ran = command(&sb, &[&["t.rhai"][..], flags].concat(), env).output().unwrap().into();
        r.ok();
        assert_eq!(recorded_threads(&sb), (count, from.to_string()), "{flags:?} {env:?}");
        let line = format!("device: cpu ({count} threads from {from};");
        assert!(r.stderr.contains(&line), "libtorch's pool is sized to it: {line} in\n{}", r.stderr);
    };
    check(&["--threads", "5"], &all, 5, "--threads");
    check(&[], &all, 2, "RUNNER_THREADS");
    check(&[], &all[1..], 3, "OMP_NUM_THREADS");
    check(&[], &all[2..], 4, "SLURM_CPUS_PER_TASK");
    let (mask, online) = cpus();
    command(&sb, &["t.rhai"], &[]).output().unwrap();
    let from = if mask < online { "the affinity mask" } else { "all cores" };
    assert_eq!(recorded_threads(&sb), (mask as i64, from.to_string()));
    if online > 1 && Command::new("taskset").arg("-V").output().is_ok() {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", env!("CARGO_BIN_EXE_runner"), "t.rhai"]).current_dir(sb.path());
        c.env("RUNNER_RUNS_DIR", sb.path().join("runs")).env("RUNNER_DEVICE", "cpu");
        for v in THREAD_VARS {
            c.env_remove(v);
        }
        let r: common::Ran = c.output().unwrap().into();
        r.ok();
        assert_eq!(recorded_threads(&sb), (1, "the affinity mask".to_string()), "taskset -c 0 leaves one CPU");
    } else {
        eprintln!("NOTE: one CPU (or no taskset): the affinity mask case is not checked");
    }
    let before = sb.runs().len();
    let r: common::Ran = command(&sb, &["t.rhai"], &[("OMP_NUM_THREADS", "lots")]).output().unwrap().into();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("OMP_NUM_THREADS=`lots` is not a thread count"), "{}", r.stderr);
    assert_eq!(sb.runs().len(), before, "refused before any run folder");
}

#[test]
fn a_rerun_keeps_the_recorded_count_and_says_when_the_machine_has_fewer_cpus() {
    let sb = Sandbox::new();
    sb.write("t.rhai", "log_metric(\"x\", 1);\n");
    command(&sb, &["t.rhai", "--threads", "1"], &[]).output().unwrap();
    let r: common::Ran = command(&sb, &["rerun", "last"], &[("RUNNER_THREADS", "2")]).output().unwrap().into();
    r.ok();
    assert_eq!(recorded_threads(&sb), (1, "the recorded run".to_string()), "the record wins over the environment");
    // A record from a bigger machine.
    let more = cpus().0 + 1;
    let record = sb.last_run().join("run.toml");
    let text = std::fs::read_to_string(&record).unwrap().replace("threads = 1\n", &format!("threads = {more}\n"));
    std::fs::write(&record, text).unwrap();
    let r: common::Ran = command(&sb, &["rerun", "last"], &[]).output().unwrap().into();
    r.ok();
    assert_eq!(recorded_threads(&sb).0, more as i64);
    assert!(r.stderr.contains(&format!("warning: {more} threads from the recorded run, but this process has")), "{}", r.stderr);
}

#[test]
fn sweep_points_side_by_side_share_the_threads() {
    let sb = Sandbox::new();
    sb.write("t.rhai", "let n = param(\"n\", 1);\nlog_metric(\"n\", n);\n");
    // As on a 2-core machine: two points at a time get one thread each.
    let r: common::Ran = command(&sb, &["sweep", "t.rhai", "--grid", "n=1,2", "--jobs", "2"], &[("RUNNER_THREADS", "2")]).output().unwrap().into();
    r.ok();
    assert!(r.stdout.contains("2 runs on this machine, 2 at a time, 1 thread each"), "{}", r.stdout);
    for run in sb.runs() {
        let rec = sb.record(&run);
        assert_eq!((rec["threads"].as_integer(), rec["threads_from"].as_str()), (Some(1), Some("sweep --jobs")), "{}", run.display());
    }
    let r: common::Ran = command(&sb, &["sweep", "t.rhai", "--grid", "n=1,2", "--cpus-per-task", "2"], &[]).output().unwrap().into();
    assert!(r.code == 2 && r.stderr.contains("--cpus-per-task applies to --on slurm"), "{}", r.stderr);
}

/// A small classifier on the ORL faces, 2 epochs; `learner_precision` other than "run"
/// gives the learner its own precision option.
const SMALL: &str = r#"
let lp = param("learner_precision", "run");
let files = get_image_files(untar_data("orl_faces"));
let splits = random_splitter(files, #{ valid_pct: 0.2, seed: seed });
let dls = image_loaders(image_table(files, parent_label(), splits), #{ size: 32, bs: 32, channels: 1, method: "squish", flip: true });
let body = convnet(#{ input: [32, 32], in_channels: 1, channels: [8, 16], kernels: [3, 3], pool: [true, true], embed: 16, bn: true });
let opts = #{ metrics: ["accuracy"], splitter: "none" };
if lp != "run" { opts.precision = lp; }
let learn = learner(dls, classifier_model(body, "cosine", 40), opts);
learn.fit_one_cycle(2, 1e-2);
"#;

fn native_bf16() -> bool {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    flags.split_whitespace().any(|f| f == "amx_bf16" || f == "avx512_bf16")
}

#[test]
fn precision_is_recorded_followed_by_learners_and_deterministic_in_bf16() {
    let sb = Sandbox::new();
    sb.write("s.rhai", SMALL);
    let metrics = |args: &[&str]| {
        let r: common::Ran = command(&sb, &[&["s.rhai", "--threads", "2"][..], args].concat(), &[]).output().unwrap().into();
        r.ok();
        let run = sb.last_run();
        (std::fs::read_to_string(run.join("metrics.jsonl")).unwrap(), sb.record(&run), r.stderr)
    };
    // Each fit's own record says what it computed in (a learner may differ from the run).
    let fit_used = |rec: &toml::Table| {
        let f = &rec["fits"].as_array().expect("[[fits]]")[0];
        (f["bf16"].as_bool().unwrap(), f["channels_last"].as_bool().unwrap())
    };
    let (fp32, rec, _) = metrics(&["--precision", "fp32"]);
    assert_eq!((rec["precision"].as_str(), rec["channels_last"].as_bool()), (Some("fp32"), Some(false)));
    assert_eq!(fit_used(&rec), (false, false), "{rec}");
    let (auto, rec, _) = metrics(&["--precision", "auto"]);
    assert!(rec["precision_from"].as_str().unwrap().starts_with("auto: the CPU has"), "{rec}");
    assert_eq!(rec["precision"].as_str(), Some(if native_bf16() { "bf16" } else { "fp32" }), "{rec}");
    if !native_bf16() {
        eprintln!("NOTE: this CPU has neither amx_bf16 nor avx512_bf16: bf16 runs are emulated, the bf16 determinism check is skipped");
        assert_eq!(auto, fp32);
        return;
    }
    let (bf16, rec, stderr) = metrics(&["--precision", "bf16"]);
    assert_eq!((rec["precision"].as_str(), rec["channels_last"].as_bool()), (Some("bf16"), Some(true)));
    assert_eq!(fit_used(&rec), (true, true), "{rec}");
    assert!(stderr.contains("precision: bf16 mixed precision"), "{stderr}");
    assert_ne!(bf16, fp32, "bf16 changes the numbers, so it is in effect");
    assert_eq!(auto, bf16, "auto is bf16 on this CPU");
    let (again, _, _) = metrics(&["--precision", "bf16"]);
    assert!(again == bf16, "same machine, precision and seed: the same metrics.jsonl");
    let (own, _, _) = metrics(&["--precision", "bf16", "--set", "learner_precision=fp32"]);
    assert_eq!(own, fp32, "a learner's own precision wins over the run's");
    let r = sb.run(&["s.rhai", "--precision", "fp16"]);
    assert!(r.code == 2 && r.stderr.contains("unknown precision `fp16`"), "{}", r.stderr);
}
