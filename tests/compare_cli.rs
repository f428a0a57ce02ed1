//! Comparing and repeating runs through the real binary, including damaged records.
mod common;
use common::Sandbox;

fn hello() -> String {
    common::project_root().join("experiments/hello.rhai").display().to_string()
}

#[test]
fn compare_shows_differing_params_and_metrics() {
    let sb = Sandbox::new();
    sb.run(&[&hello(), "--set", "n=10"]).ok();
    sb.run(&[&hello(), "--set", "n=20"]).ok();
    let r = sb.run(&["compare", "last~1", "last"]);
    r.ok();
    assert!(
        r.stdout.contains("param n ") && r.stdout.contains("\nmean ") && r.stdout.contains("\nstd ") && !r.stdout.contains("(final)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("param scale"), "equal params hidden without --all: {}", r.stdout);
    let r = sb.run(&["compare", "last~1", "last", "--all", "--json"]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert!(v["rows"].as_array().unwrap().iter().any(|r| r["name"] == "param scale"));
    let r = sb.run(&["compare", "last", "--markdown"]);
    assert!(r.stdout.starts_with("| |"), "{}", r.stdout);
}

#[test]
fn compare_names_bad_runs_and_survives_damage() {
    let sb = Sandbox::new();
    sb.run(&[&hello()]).ok();
    sb.run(&[&hello()]).ok();
    let r = sb.run(&["compare", "last", "nosuchrun"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no run named `nosuchrun`"), "{}", r.stderr);
    // two ids that share no prefix are fine; an empty prefix matches both: ambiguous
    let runs = sb.runs();
    let r = sb.run(&["compare", ""]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("ambiguous"), "{}", r.stderr);
    // a damaged metrics line is skipped and reported, the rest still shown
    let m = runs[0].join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&m).unwrap();
    text.insert_str(0, "{\"kind\": \"metric\", \"na\n");
    std::fs::write(&m, text).unwrap();
    // a crashed run: status running, with a pid that no longer exists
    let rec = runs[1].join("run.toml");
    let t = std::fs::read_to_string(&rec).unwrap().replace("status = \"completed\"", "status = \"running\"");
    let t = t.lines().map(|l| if l.starts_with("pid = ") { "pid = 999999999".to_string() } else { l.to_string() }).collect::<Vec<_>>().join("\n");
    std::fs::write(&rec, t).unwrap();
    let r = sb.run(&["compare", "last~1", "last"]);
    r.ok();
    assert!(r.stderr.contains("line 1 is damaged"), "{}", r.stderr);
    assert!(r.stdout.contains("crashed") && r.stdout.contains("\nmean "), "{}", r.stdout);
    let r = sb.run(&["runs"]);
    assert!(r.stdout.contains("crashed"), "{}", r.stdout);
}

#[test]
fn rerun_repeats_exactly_and_sweep_groups_runs() {
    let sb = Sandbox::new();
    sb.run(&[&hello(), "--set", "n=50", "--seed", "9"]).ok();
    let r = sb.run(&["rerun", "last"]);
    r.ok();
    assert!(r.stdout.contains("metrics.jsonl identical to the original run"), "{}", r.stdout);
    let runs = sb.runs();
    let rec = sb.record(&runs[1]);
    assert_eq!(rec["seed"].as_integer(), Some(9));
    assert_eq!(rec["params"]["n"]["value"].as_integer(), Some(50));
    assert!(rec["rerun_of"].as_str().unwrap().contains("hello"));

    let r = sb.run(&["sweep", &hello(), "--grid", "n=5,6", "--grid", "scale=1,2"]);
    r.ok();
    let runs = sb.runs();
    assert_eq!(runs.len(), 6);
    let sweeps: Vec<String> = runs[2..].iter().map(|r| sb.record(r)["sweep"].as_str().unwrap().to_string()).collect();
    assert!(sweeps.iter().all(|s| s == &sweeps[0] && s.starts_with("sweep-")));
    assert!(r.stdout.contains("param n") && r.stdout.contains("param scale"), "{}", r.stdout);
    let r = sb.run(&["sweep", &hello(), "--grid", "nn=5"]);
    assert_eq!(r.code, 2, "typo in a grid name is a usage error: {}", r.stderr);
}

#[test]
fn rerun_of_a_script_whose_data_is_gone_says_so() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path().join("data")).unwrap();
    std::fs::write(sb.path().join("data/x.txt"), "1").unwrap();
    sb.write("d.rhai", "let dir = param(\"dir\", \"data\");\nlet files = get_image_files(dir);\n");
    std::fs::write(sb.path().join("data/a.png"), image_png()).unwrap();
    sb.run(&["d.rhai"]).ok();
    std::fs::remove_dir_all(sb.path().join("data")).unwrap();
    let r = sb.run(&["rerun", "last"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("d.rhai:2:") && r.stderr.contains("data"), "{}", r.stderr);
}

fn image_png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(4, 4, image::Rgb([10, 20, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

// Issue #25, 9 and 11: what a record holds is shown, never obeyed: ESC and BEL in a param
// value or a metric name, and a newline, are printed as escapes by `runs`, `show`,
// `compare` and `compare --markdown`; a huge value is cut to one bounded cell.
#[test]
fn terminal_escapes_in_records_are_shown_not_obeyed() {
    let sb = Sandbox::new();
    sb.write(
        "e.rhai",
        "let note = param(\"note\", \"plain\");\nlet big = param(\"zbig\", \"\");\nlog_metric(\"m\\x1b]0;owned\\x07\", 1.0);\nthrow \"bad\\x1b[2J\";\n",
    );
    let evil = "clear\x1b[2J\x1b]0;title\x07two\nlines";
    let big = "x".repeat(100_000);
    assert_eq!(sb.run(&["e.rhai", "--set", &format!("note={evil}"), "--set", &format!("zbig={big}")]).code, 1);
    let toml_len = std::fs::metadata(sb.last_run().join("run.toml")).unwrap().len();
    assert!(toml_len < 140_000, "the record keeps 64 KiB of the 100 kB value in the params and in the command line, not all: {toml_len}");
    assert!(sb.record(&sb.last_run())["params"]["zbig"]["value"]
        .as_str()
        .unwrap()
        .ends_with("[cut by the runner: 100000 bytes in all; RUNNER_MAX_RECORD_VALUE keeps more]"));
    assert_eq!(sb.run(&["e.rhai"]).code, 1);
    for args in [vec!["runs"], vec!["show", "last~1"], vec!["compare", "last~1", "last"], vec!["compare", "last~1", "last", "--markdown"]] {
        let r = sb.run(&args);
        r.ok();
        assert!(!r.stdout.contains(['\x1b', '\x07']), "{args:?} prints raw escapes: {:?}", r.stdout);
        assert!(r.stdout.contains("clear\\u{1b}[2J\\u{1b}]0;title\\u{7}two\\nlines"), "{args:?}: {}", r.stdout);
        assert!(r.stdout.len() < 20_000, "{args:?}: a 100 kB value is cut: {} bytes", r.stdout.len());
    }
    let r = sb.run(&["runs"]);
    assert_eq!(r.stdout.lines().count(), 3, "a header and one line per run: {}", r.stdout);
    let r = sb.run(&["show", "last~1"]);
    assert!(r.stdout.contains("m\\u{1b}]0;owned\\u{7}") && r.stdout.contains("bad\\u{1b}[2J"), "{}", r.stdout);
    let r = sb.run(&["runs", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let notes: Vec<&serde_json::Value> = v.as_array().unwrap().iter().map(|r| &r["record"]["params"]["note"]["value"]).collect();
    assert!(notes.contains(&&serde_json::json!(evil)), "--json keeps the value as it was: {notes:?}");
}
