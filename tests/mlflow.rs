//! Runs mirrored to a real MLflow tracking server (mlflow 3.17.2 in its own venv, started
//! once for this file by scripts/mlflow-server and stopped when the tests exit), read back
//! through its REST API: the tags that identify a run (MLflow's standard ones, the
//! experiment repo's commit apart from the runner's, machine, user, goals), dataset inputs,
//! params, metric histories equal to metrics.jsonl, statuses (interrupted apart from
//! failed), artifacts byte for byte; the run page as MLflow's UI shows it in Chromium; a
//! server that is down, then `runner sync`, twice.
mod common;
use common::Sandbox;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The tracking URI of the server shared by this file's tests.
fn server() -> &'static str {
    static URI: OnceLock<String> = OnceLock::new();
    URI.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mlflow-test-{}", std::process::id()));
        let out = std::process::Command::new(common::project_root().join("scripts/mlflow-server"))
            .args(["up", &dir.display().to_string(), "--until-exit", &std::process::id().to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "cannot start the MLflow server:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

fn get(path: &str, query: &[(&str, &str)]) -> Value {
    let mut r = ureq::get(&format!("{}{path}", server()));
    for (k, v) in query {
        r = r.query(k, v);
    }
    serde_json::from_reader(r.call().unwrap_or_else(|e| panic!("GET {path} {query:?}: {e}")).into_reader()).unwrap()
}

fn post(path: &str, body: Value) -> Value {
    let r = ureq::post(&format!("{}{path}", server())).set("Content-Type", "application/json").send_string(&body.to_string());
    serde_json::from_reader(r.unwrap_or_else(|e| panic!("POST {path}: {e}")).into_reader()).unwrap()
}

/// The MLflow run tagged with this runner run's id (exactly one).
fn mlflow_run(runner_id: &str) -> Value {
    let exps = post("/api/2.0/mlflow/experiments/search", json!({ "max_results": 1000 }));
    let ids: Vec<Value> = exps["experiments"].as_array().unwrap().iter().map(|e| e["experiment_id"].clone()).collect();
    let found = post("/api/2.0/mlflow/runs/search", json!({ "experiment_ids": ids, "filter": format!("tags.`runner.run_id` = '{runner_id}'") }));
    let runs = found["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 1, "one MLflow run for {runner_id}: {found}");
    let id = runs[0]["info"]["run_id"].as_str().unwrap().to_string();
    get("/api/2.0/mlflow/runs/get", &[("run_id", &id)])["run"].clone()
}

fn pairs(list: &Value) -> BTreeMap<String, String> {
    list.as_array().into_iter().flatten().map(|kv| (kv["key"].as_str().unwrap().into(), kv["value"].as_str().unwrap().into())).collect()
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        v => v.as_f64().unwrap(),
    }
}

/// What metrics.jsonl says each MLflow metric must hold, as (step, value) in file order,
/// following the README's mapping.
fn expected_metrics(run: &Path) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut out: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let (mut epochs, mut batches) = (0, 0);
    for line in std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines() {
        let row: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
        match row["kind"].as_str().unwrap() {
            "epoch" => {
                for (k, v) in &row {
                    if !["kind", "fit", "epoch"].contains(&k.as_str()) {
                        out.entry(k.clone()).or_default().push((epochs, num(v)));
                    }
                }
                epochs += 1;
            }
            "batch" => {
                for k in ["loss", "smooth_loss", "lr", "mom"] {
                    out.entry(format!("batch/{k}")).or_default().push((batches, num(&row[k])));
                }
                batches += 1;
            }
            "metric" => out.entry(row["name"].as_str().unwrap().into()).or_default().push((row["step"].as_i64().unwrap(), num(&row["value"]))),
            other => panic!("unexpected row kind {other}"),
        }
    }
    out
}

fn history(run_id: &str, key: &str) -> Vec<(i64, f64)> {
    let h = get("/api/2.0/mlflow/metrics/get-history", &[("run_id", run_id), ("metric_key", key), ("max_results", "25000")]);
    let mut v: Vec<(i64, f64)> = h["metrics"].as_array().unwrap().iter().map(|m| (m["step"].as_i64().unwrap(), num(&m["value"]))).collect();
    v.sort_by_key(|a| a.0);
    v
}

fn artifacts(run_id: &str, path: &str, out: &mut BTreeMap<String, u64>) {
    let l = get("/api/2.0/mlflow/artifacts/list", &[("run_id", run_id), ("path", path)]);
    for f in l["files"].as_array().into_iter().flatten() {
        let p = f["path"].as_str().unwrap();
        if f["is_dir"].as_bool().unwrap() {
            artifacts(run_id, p, out);
        } else {
            out.insert(p.into(), f["file_size"].as_u64().unwrap());
        }
    }
}

fn artifact_bytes(mlflow: &Value, rel: &str) -> Vec<u8> {
    let root = mlflow["info"]["artifact_uri"].as_str().unwrap().strip_prefix("mlflow-artifacts:/").unwrap().to_string();
    let mut bytes = Vec::new();
    let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{root}/{rel}", server());
    std::io::Read::read_to_end(&mut ureq::get(&url).call().unwrap().into_reader(), &mut bytes).unwrap();
    bytes
}

/// Everything the run folder holds is on the server: tags, params, metric histories,
/// status with end time, artifacts byte for byte.
fn assert_mirrored(sb: &Sandbox, run: &Path, status: &str, with_models: bool) -> Value {
    let rec = sb.record(run);
    let m = mlflow_run(rec["id"].as_str().unwrap());
    let run_id = m["info"]["run_id"].as_str().unwrap().to_string();
    assert_eq!(m["info"]["status"], status, "{m}");
    assert!(m["info"]["end_time"].as_i64().is_some(), "end time set: {m}");
    let s = |k: &str| rec[k].as_str().unwrap().to_string();
    let stem = Path::new(&s("script")).file_stem().unwrap().to_string_lossy().into_owned();
    let name = format!("{stem}-{}", s("id"));
    assert_eq!(m["info"]["run_name"].as_str().unwrap(), name, "short names tell runs apart in MLflow's list");
    let tags = pairs(&m["data"]["tags"]);
    assert_eq!(tags["mlflow.runName"], name);
    assert_eq!(tags["runner.folder"], run.file_name().unwrap().to_str().unwrap());
    assert_eq!(tags["runner.script_sha256"], s("script_sha256"));
    assert_eq!(tags["runner.seed"], rec["seed"].as_integer().unwrap().to_string());
    assert_eq!(tags["mlflow.source.name"], s("script"));
    assert_eq!(tags["mlflow.user"], s("user"));
    for (tag, key) in
        [("runner.version", "runner_version"), ("runner.commit", "runner_commit"), ("libtorch", "libtorch"), ("device", "device"), ("host", "host")]
    {
        assert_eq!(tags[tag], s(key), "tag {tag}");
    }
    // The experiment repo's commit is MLflow's source commit; the runner's own is runner.commit.
    assert_eq!(tags.get("mlflow.source.git.commit").map(String::as_str), rec.get("git_commit").and_then(|c| c.as_str()), "{tags:?}");
    assert_eq!(tags.get("git_dirty").cloned(), rec.get("git_dirty").map(|d| d.to_string()), "{tags:?}");
    let shown = match status {
        "FINISHED" => "completed",
        "KILLED" => "interrupted",
        _ => "failed",
    };
    assert_eq!(tags["runner.status"], shown);
    let goals: BTreeMap<String, String> = rec
        .get("goals")
        .and_then(|g| g.as_table())
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect())
        .unwrap_or_default();
    let goal_tags: BTreeMap<String, String> =
        tags.iter().filter_map(|(k, v)| Some((k.strip_prefix("runner.goal.")?.to_string(), v.clone()))).collect();
    assert_eq!(goal_tags, goals, "each ranked metric's goal is a tag");
    // The data sets of run.toml are the run's dataset inputs.
    let inputs: Vec<(String, String, String)> = m["inputs"]["dataset_inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["dataset"]["name"].as_str().unwrap().into(),
                d["dataset"]["digest"].as_str().unwrap().into(),
                d["dataset"]["source"].as_str().unwrap().into(),
            )
        })
        .collect();
    let data: Vec<(String, String, String)> = rec
        .get("data")
        .and_then(|d| d.as_array())
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["name"].as_str().unwrap().into(),
                d["fingerprint"].as_str().unwrap()[..32].into(),
                json!({ "uri": d["folder"].as_str().unwrap() }).to_string(),
            )
        })
        .collect();
    assert_eq!(inputs, data, "dataset inputs");
    let exp = get("/api/2.0/mlflow/experiments/get", &[("experiment_id", m["info"]["experiment_id"].as_str().unwrap())]);
    assert_eq!(pairs(&exp["experiment"]["tags"]).get("mlflow.experimentKind").map(String::as_str), Some("custom_model_development"), "{exp}");
    let mut want: BTreeMap<String, String> = rec
        .get("params")
        .and_then(|p| p.as_table())
        .map(|t| t.iter().map(|(k, p)| (k.clone(), p["value"].to_string().trim_matches('"').to_string())).collect())
        .unwrap_or_default();
    want.insert("seed".into(), rec["seed"].as_integer().unwrap().to_string());
    want.insert("runner.threads".into(), rec["threads"].as_integer().unwrap().to_string());
    want.insert("runner.precision".into(), rec["precision"].as_str().unwrap().to_string());
    assert_eq!(pairs(&m["data"]["params"]), want);
    let expected = expected_metrics(run);
    let keys: Vec<String> = m["data"]["metrics"].as_array().into_iter().flatten().map(|x| x["key"].as_str().unwrap().to_string()).collect();
    assert_eq!(keys.len(), expected.len(), "metric keys {keys:?} vs {:?}", expected.keys());
    for (key, values) in &expected {
        let got = history(&run_id, key);
        let same = got.len() == values.len() && got.iter().zip(values).all(|(a, b)| a.0 == b.0 && (a.1 == b.1 || (a.1.is_nan() && b.1.is_nan())));
        assert!(same, "metric {key}: server {got:?}\nmetrics.jsonl {values:?}");
    }
    let mut files = BTreeMap::new();
    artifacts(&run_id, "", &mut files);
    let mut local = vec!["run.toml".to_string(), "metrics.jsonl".into(), "log.jsonl".into()];
    local.extend(rec["sources"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()));
    for e in std::fs::read_dir(run).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".png") {
            local.push(name);
        }
    }
    if with_models {
        for e in std::fs::read_dir(run.join("models")).unwrap().flatten() {
            local.push(format!("models/{}", e.file_name().to_string_lossy()));
        }
    }
    local.sort();
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), local, "artifacts");
    for rel in &local {
        assert!(artifact_bytes(&m, rel) == std::fs::read(run.join(rel)).unwrap(), "{rel} differs on the server");
    }
    let state = rec["mlflow"].as_table().unwrap_or_else(|| panic!("run.toml notes the mirror: {rec:?}"));
    assert_eq!(state["mirror_incomplete"].as_bool(), Some(false), "{state:?}");
    assert_eq!(state["run_id"].as_str(), Some(run_id.as_str()));
    m
}

/// A Siamese convnet on 80 ORL faces, two epochs, plus log_metric values (one NaN).
const LEARNER: &str = r#"
let epochs = param("epochs", 2);
let files  = get_image_files(untar_data("orl_faces")).extract(0, 80);
let splits = group_splitter(files, parent_label(), #{ valid_pct: 0.25, seed: seed });
let pairs  = siamese_pairs(files, splits, parent_label(), #{ p_same: 0.5 });
let dls    = pair_loaders(pairs, #{ size: 32, channels: 1, bs: 8, normalize: "stats", cache: true });
let body   = convnet(#{ input: [32, 32], channels: [8, 16], kernels: [3, 3], pool: [true, true], embed: 16, bn: false });
let learn  = learner(dls, siamese_model(body, "l1"), #{ metrics: ["accuracy"], loss: "bce" });
learn.fit_one_cycle(epochs, 1e-3);
log_metric("acc", 0.5);
log_metric("acc", 0.75);
log_metric("nan_metric", 0.0 / 0.0);
"#;

/// The experiment's repository: the sandbox as a git checkout with the script committed.
fn git_repo(sb: &Sandbox) -> String {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).current_dir(sb.path()).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "add", "faces.rhai"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "experiment"]);
    git(&["rev-parse", "HEAD"])
}

#[test]
fn a_learner_run_is_mirrored_live_and_sync_finds_nothing_to_send() {
    let sb = Sandbox::new();
    sb.write("faces.rhai", LEARNER);
    let head = git_repo(&sb);
    let r = sb.command(&["faces.rhai", "--set", "epochs=2", "--track-models"]).env("MLFLOW_TRACKING_URI", server()).output().unwrap();
    let r: common::Ran = r.into();
    r.ok();
    let run = sb.last_run();
    let page = r.stderr.lines().find_map(|l| l.strip_prefix("mlflow: ")).unwrap_or_else(|| panic!("the run's MLflow page is printed: {}", r.stderr));
    assert!(page.starts_with("http://127.0.0.1:") && page.ends_with("?workflowType=machine_learning"), "{page}");
    let m = assert_mirrored(&sb, &run, "FINISHED", true);
    let tags = pairs(&m["data"]["tags"]);
    assert_eq!(tags["mlflow.source.git.commit"], head, "the experiment repo's commit");
    assert_eq!(tags["git_dirty"], "false");
    assert_ne!(tags["runner.commit"], head, "the runner's own commit, told apart");
    assert_eq!((tags["runner.goal.valid_loss"].as_str(), tags["runner.goal.accuracy"].as_str()), ("min", "max"));
    assert!(!tags.contains_key("runner.goal.acc") && !tags.contains_key("runner.goal.nan_metric"), "log_metric names nothing defines are not ranked");
    assert_eq!(history(m["info"]["run_id"].as_str().unwrap(), "valid_loss").len(), 2);

    // The run page as MLflow's UI shows it: the training view, with what identifies the run.
    let keep = std::env::var("RUNNER_KEEP_PNG").ok().map(PathBuf::from);
    let shot = keep.as_ref().map(|k| {
        std::fs::create_dir_all(k).unwrap();
        k.join("mlflow-run.png")
    });
    let text = common::dom_text(&common::rendered_dom(page, shot.as_deref()));
    let name = m["info"]["run_name"].as_str().unwrap();
    let by = format!("Created by {}", tags["mlflow.user"]);
    for want in [name, &by, "Source faces.rhai", "orl_faces (", "runner.version", "runner.commit", "Model training", "Runs"] {
        assert!(text.contains(want), "the run page shows `{want}`: {text:.3000}");
    }
    assert!(!text.contains("Evaluations"), "not shown as a GenAI evaluation: {text:.3000}");
    let runs = sb.command(&["runs"]).output().unwrap();
    let out = String::from_utf8_lossy(&runs.stdout);
    assert!(out.lines().next().unwrap().contains("mlflow") && out.lines().nth(1).unwrap().trim_end().ends_with("yes"), "{out}");

    let again = sb.command(&["sync", "last", "--track-models"]).env("MLFLOW_TRACKING_URI", server()).output().unwrap();
    let again: common::Ran = again.into();
    again.ok();
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
}

#[test]
fn failed_and_interrupted_runs_end_failed_and_killed() {
    let sb = Sandbox::new();
    sb.write("fails.rhai", "log_metric(\"x\", 1.0);\nlet a = [1, 2];\nlet b = a[7];\n");
    let r: common::Ran = sb.command(&["fails.rhai", "--track", server()]).output().unwrap().into();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_mirrored(&sb, &sb.last_run(), "FAILED", false);

    sb.write("spins.rhai", "log_metric(\"x\", 1.0);\nlet i = 0;\nloop { i += 1; }\n");
    let child =
        sb.command(&["spins.rhai", "--track", server()]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let t = Instant::now();
    loop {
        let spinning = sb.runs().into_iter().find(|run| run.to_string_lossy().contains("-spins-"));
        let started = spinning.is_some_and(|run| std::fs::read_to_string(run.join("metrics.jsonl")).is_ok_and(|m| m.contains("\"x\"")));
        if started {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the spinning run never logged");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let r: common::Ran = child.wait_with_output().unwrap().into();
    assert_eq!(r.code, 130, "{}", r.stderr);
    let m = assert_mirrored(&sb, &sb.last_run(), "KILLED", false);
    let tags = pairs(&m["data"]["tags"]);
    assert!(!tags.contains_key("mlflow.source.git.commit") && !tags.contains_key("git_dirty"), "no repository, no source commit: {tags:?}");

    // The threads and precision the run computed with, as recorded.
    let rec = sb.record(&sb.last_run());
    let threads = rec["threads"].as_integer().unwrap().to_string();
    assert_eq!((tags["threads"].as_str(), Some(tags["precision"].as_str())), (threads.as_str(), rec["precision"].as_str()), "{tags:?}");
}

#[test]
fn a_run_with_the_server_down_completes_and_sync_sends_it_once() {
    let sb = Sandbox::new();
    sb.write("faces.rhai", LEARNER);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t = Instant::now();
    let r: common::Ran =
        sb.command(&["faces.rhai", "--set", "epochs=1"]).env("MLFLOW_TRACKING_URI", format!("http://127.0.0.1:{closed}")).output().unwrap().into();
    r.ok();
    let secs = t.elapsed().as_secs_f64();
    assert!(r.stderr.contains("mlflow:") && r.stderr.contains("runner sync"), "a warning says what to do: {}", r.stderr);
    let run = sb.last_run();
    let rec = sb.record(&run);
    let state = rec["mlflow"].as_table().unwrap();
    assert_eq!(state["mirror_incomplete"].as_bool(), Some(true), "{state:?}");
    assert!(state["reason"].as_str().unwrap().contains(&closed.to_string()) || state["reason"].as_str().unwrap().contains("refused"), "{state:?}");
    let duration = rec["duration_s"].as_float().unwrap();
    assert!(secs < duration + 10.0, "the dead server cost {:.1}s on top of a {duration:.1}s run", secs - duration);
    let runs = sb.run(&["runs"]);
    assert!(runs.stdout.lines().nth(1).unwrap().trim_end().ends_with("incomplete"), "{}", runs.stdout);

    // MLFLOW_EXPERIMENT_NAME names the experiment the sync creates.
    let sync = |args: &[&str]| -> common::Ran {
        sb.command(args).env("MLFLOW_TRACKING_URI", server()).env("MLFLOW_EXPERIMENT_NAME", "runner-sync-test").output().unwrap().into()
    };
    let first = sync(&["sync", "--all"]);
    first.ok();
    assert!(first.stdout.contains("created the MLflow run") && first.stdout.contains("metric values"), "{}", first.stdout);
    let m = assert_mirrored(&sb, &run, "FINISHED", false);
    let exp = get("/api/2.0/mlflow/experiments/get-by-name", &[("experiment_name", "runner-sync-test")]);
    assert_eq!(exp["experiment"]["experiment_id"], m["info"]["experiment_id"]);
    let run_id = m["info"]["run_id"].as_str().unwrap().to_string();
    let snapshot = |run_id: &str| {
        let mut files = BTreeMap::new();
        artifacts(run_id, "", &mut files);
        let hist: Vec<usize> = expected_metrics(&run).keys().map(|k| history(run_id, k).len()).collect();
        (files, hist, mlflow_run(rec["id"].as_str().unwrap())["info"].clone())
    };
    let before = snapshot(&run_id);
    let toml_before = std::fs::read(run.join("run.toml")).unwrap();
    let second = sync(&["sync", "last"]);
    second.ok();
    assert!(second.stdout.contains("up to date"), "{}", second.stdout);
    assert_eq!(snapshot(&run_id), before, "a second sync changes nothing on the server");
    assert_eq!(std::fs::read(run.join("run.toml")).unwrap(), toml_before, "nor in run.toml");
}
