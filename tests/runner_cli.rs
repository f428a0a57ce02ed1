//! The foundation through the real binary: errors at the right line, params, seeds,
//! records, listing, the API reference.
mod common;
use common::Sandbox;

#[test]
fn version_shows_libtorch_and_cuda_flag() {
    let sb = Sandbox::new();
    let r = sb.run(&["--version"]);
    r.ok();
    assert!(r.stdout.contains("libtorch 2.11"), "{}", r.stdout);
    assert!(r.stdout.contains("cuda: "), "{}", r.stdout);
    assert!(r.stdout.contains("data-parallel backends: gloo"), "{}", r.stdout);
}

#[test]
fn syntax_error_points_at_its_line() {
    let sb = Sandbox::new();
    sb.write("bad.rhai", "let x = 1;\nlet y = ;\n");
    let r = sb.run(&["bad.rhai"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad.rhai:2:"), "{}", r.stderr);
    assert!(r.stderr.contains("let y = ;"), "source line shown: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn unknown_function_and_wrong_type_point_at_their_lines() {
    let sb = Sandbox::new();
    sb.write("a.rhai", "let a = 1;\n\n  foo(a);\n");
    let r = sb.run(&["a.rhai"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("a.rhai:3:3: Function not found: foo"), "{}", r.stderr);
    sb.write("b.rhai", "log_metric(\"x\", 1);\nlog_metric(\"y\", \"high\");\n");
    let r = sb.run(&["b.rhai"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("b.rhai:2:1: log_metric value must be a number"), "{}", r.stderr);
}

#[test]
fn thrown_error_fails_the_run_and_keeps_the_record() {
    let sb = Sandbox::new();
    sb.write("t.rhai", "print(\"before\");\nlog_metric(\"loss\", 0.5);\nthrow \"boom at three\";\n");
    let r = sb.run(&["t.rhai"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("t.rhai:3:1: boom at three"), "{}", r.stderr);
    let run = sb.last_run();
    let rec = sb.record(&run);
    assert_eq!(rec["status"].as_str(), Some("failed"));
    assert!(rec["error"].as_str().unwrap().contains("boom at three"));
    assert!(rec.contains_key("ended") && rec.contains_key("duration_s"));
    assert!(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().contains("\"loss\""));
    let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
    assert!(log.contains("before") && log.contains("boom at three"), "{log}");
}

#[test]
fn errors_inside_modules_and_functions_name_the_module_file() {
    let sb = Sandbox::new();
    sb.write("lib/helpers.rhai", "fn twice(x) {\n    x * 2\n}\nfn broken() {\n    nope();\n}\n");
    sb.write("main.rhai", "import \"lib/helpers\" as h;\nprint(h::twice(21));\nh::broken();\n");
    let r = sb.run(&["main.rhai"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("42"), "{}", r.stdout);
    assert!(r.stderr.contains("lib/helpers.rhai:5:5: Function not found: nope"), "{}", r.stderr);
    assert!(r.stderr.contains("main.rhai:3"), "call site shown: {}", r.stderr);
    let run = sb.last_run();
    assert!(run.join("script/main.rhai").is_file());
    assert!(run.join("script/lib/helpers.rhai").is_file(), "imported module copied into the run");
}

#[test]
fn runaway_script_is_stopped() {
    let sb = Sandbox::new();
    sb.write("loop.rhai", "let i = 0;\nloop { i += 1; }\n");
    let r = sb.run(&["loop.rhai", "--max-operations", "100000"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("loop.rhai:2") && r.stderr.to_lowercase().contains("operations"), "{}", r.stderr);
}

#[test]
fn set_overrides_params_and_typos_are_refused() {
    let sb = Sandbox::new();
    sb.write("p.rhai", "let lr = param(\"lr\", 1e-3);\nlet arch = param(\"arch\", \"resnet34\");\nprint(`lr=${lr} arch=${arch}`);\n");
    let r = sb.run(&["p.rhai", "--set", "lr=3", "--set", "arch=resnet18"]);
    r.ok();
    assert!(r.stdout.contains("lr=3.0 arch=resnet18"), "{}", r.stdout);
    let rec = sb.record(&sb.last_run());
    assert_eq!(rec["params"]["lr"]["value"].as_float(), Some(3.0));
    assert_eq!(rec["params"]["lr"]["source"].as_str(), Some("cli"));
    assert_eq!(rec["params"]["arch"]["value"].as_str(), Some("resnet18"));

    let before = sb.runs().len();
    let r = sb.run(&["p.rhai", "--set", "lrr=3"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("`lrr`") && r.stderr.contains("arch, lr"), "{}", r.stderr);
    assert_eq!(sb.runs().len(), before, "a usage error starts no run");

    sb.write("params.toml", "lr = 0.5\n");
    let r = sb.run(&["p.rhai", "--config", "params.toml"]);
    r.ok();
    assert!(r.stdout.contains("lr=0.5"), "{}", r.stdout);
    // A value that does not fit the literal default is refused before a run starts.
    let before = sb.runs().len();
    let r = sb.run(&["p.rhai", "--set", "lr=fast"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("param `lr` expects a number") && r.stderr.contains("fast"), "{}", r.stderr);
    assert_eq!(sb.runs().len(), before);
}

#[test]
fn same_seed_same_metrics() {
    let sb = Sandbox::new();
    let hello = common::project_root().join("experiments/hello.rhai");
    let hello = hello.to_str().unwrap();
    sb.run(&[hello, "--seed", "7"]).ok();
    sb.run(&[hello, "--seed", "7"]).ok();
    sb.run(&[hello, "--seed", "8"]).ok();
    let runs = sb.runs();
    let m: Vec<String> = runs.iter().map(|r| std::fs::read_to_string(r.join("metrics.jsonl")).unwrap()).collect();
    assert!(m[0].contains("\"mean\""));
    assert_eq!(m[0], m[1]);
    assert_ne!(m[0], m[2]);
    let names: std::collections::BTreeSet<_> = runs.iter().map(|r| r.file_name().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 3, "run folders never collide");
}

#[test]
fn record_describes_the_run() {
    let sb = Sandbox::new();
    let hello = common::project_root().join("experiments/hello.rhai");
    let r = sb.run(&[hello.to_str().unwrap(), "--set", "n=10"]);
    r.ok();
    let run = sb.last_run();
    let rec = sb.record(&run);
    for key in ["script", "script_sha256", "seed", "command", "runner_version", "runner_commit", "libtorch", "device", "host", "started", "ended"] {
        assert!(rec.contains_key(key), "run.toml lacks {key}");
    }
    assert_eq!(rec["status"].as_str(), Some("completed"));
    assert_eq!(rec["seed"].as_integer(), Some(42));
    assert_eq!(rec["params"]["n"]["value"].as_integer(), Some(10));
    assert_eq!(rec["params"]["scale"]["source"].as_str(), Some("default"));
    assert!(rec["git_commit"].as_str().is_some(), "the project is a git checkout");
    assert!(rec["user"].as_str().is_some_and(|u| !u.is_empty()), "who ran it");
    let attempts = rec["attempts"].as_array().expect("run.toml lists its attempt");
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0]["status"].as_str(), attempts[0]["duration_s"].as_float()), (Some("completed"), rec["duration_s"].as_float()));
    assert_eq!(std::fs::read(run.join("script/hello.rhai")).unwrap(), std::fs::read(&hello).unwrap());
    assert!(std::fs::read_to_string(run.join("log.jsonl")).unwrap().lines().count() >= 2);
}

#[test]
fn runs_lists_and_filters_what_was_run() {
    let sb = Sandbox::new();
    sb.write("good.rhai", "log_metric(\"acc\", 0.75);\n");
    sb.write("bad.rhai", "throw \"no\";\n");
    sb.run(&["good.rhai"]).ok();
    sb.run(&["bad.rhai"]);
    let r = sb.run(&["runs"]);
    r.ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines[1].starts_with("failed") && lines[1].contains("bad"), "newest first: {}", r.stdout);
    assert!(lines[2].contains("completed") && lines[2].contains("acc=0.7500"), "{}", r.stdout);
    let r = sb.run(&["runs", "--status", "completed", "--json"]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["metrics"]["acc"]["last"], 0.75);
    let r = sb.run(&["show", "last"]);
    r.ok();
    assert!(r.stdout.contains("status        failed") && r.stdout.contains("no"), "{}", r.stdout);
    let r = sb.run(&["show", "last~1"]);
    r.ok();
    let row = r.stdout.lines().find(|l| l.starts_with("acc")).unwrap_or_default();
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["acc", "1", "0.750000", "-"], "a name nothing defines has no best: {}", r.stdout);
    let r = sb.run(&["show", "zzzz"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no run named `zzzz`"), "{}", r.stderr);
}

#[test]
fn api_reference_is_fresh() {
    let sb = Sandbox::new();
    let r = sb.run(&["api", "--markdown"]);
    r.ok();
    assert!(r.stdout.contains("param(name: String, default: Dynamic) -> Dynamic"));
    let doc = std::fs::read_to_string(common::project_root().join("docs/API.md")).unwrap_or_default();
    assert!(doc == r.stdout, "docs/API.md is stale: run `runner api --markdown > docs/API.md`");
}

#[test]
fn issue_29_one_exit_code_table_honoured_everywhere() {
    let sb = Sandbox::new();
    let readme = std::fs::read_to_string(common::project_root().join("README.md")).unwrap();
    let table: Vec<&str> = readme.lines().skip_while(|l| !l.starts_with("| exit code |")).take_while(|l| l.starts_with('|')).collect();
    let codes: Vec<&str> = table.iter().skip(2).filter_map(|l| l.split('|').nth(1)).map(str::trim).collect();
    assert_eq!(codes, ["0", "1", "2", "130", "143"], "the README's exit-code table: {table:?}");
    let hello = common::project_root().join("experiments/hello.rhai").display().to_string();
    sb.write("bad.rhai", "throw \"no\";\n");
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec![&hello, "--set", "n=1"], 0, ""),
        (vec!["bad.rhai"], 1, "no"),
        (vec!["show", "nosuchrun"], 1, "no run named"),
        (vec!["--no-such-flag"], 2, "--no-such-flag"),
        (vec![&hello, "--set", "n=abc"], 2, "from --set"),
        (vec![&hello, "--set", "nn=1"], 2, "--set names `nn`"),
        (vec!["sweep", &hello, "--grid", "n"], 2, "--grid `n`: expected name=v1,v2"),
        (vec!["sweep", &hello, "--grid", "n="], 2, "--grid `n=` has no values"),
        (vec!["sweep", &hello, "--grid", "n=abc"], 2, "from --grid"),
        (vec!["sweep", &hello, "--grid", "nn=1,2"], 2, "--grid names `nn`"),
        (vec!["sweep", &hello, "--grid", "n=1", "--jobs", "0"], 2, "--jobs must be at least 1"),
        (vec!["sweep", &hello, "--grid", "n=1", "--sbatch", "--mem=1G"], 2, "--sbatch applies to --on slurm"),
        (vec!["runs", "--status", "finished"], 2, "--status `finished`"),
        (vec!["compare"], 2, "name the runs to compare"),
        (vec!["report"], 2, "name the runs to report on"),
        (vec!["sync", "last"], 2, "no tracking server"),
    ];
    for (args, code, says) in cases {
        let r = sb.run(&args);
        assert_eq!(r.code, code, "runner {args:?}:\n{}", r.stderr);
        assert!(r.stderr.contains(says), "runner {args:?} says `{says}`:\n{}", r.stderr);
        if args.contains(&"--grid") {
            assert!(!r.stderr.contains("--set"), "a --grid error names --grid: {}", r.stderr);
        }
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    assert!(!sb.path().join("runs/sweeps").exists(), "no refused sweep left a manifest");
}
