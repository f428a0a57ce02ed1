//! How a run folder maps onto MLflow: experiment, run name, tags (MLflow's standard ones
//! and what identifies the run's code and machine), params, dataset inputs, metric points
//! and artifacts. The live mirror and `runner sync` both use it, so they send the same
//! things and a sync after a mirror finds nothing missing.
use super::client::{Dataset, RunStatus};
use crate::track::provenance::provenance;
use crate::track::record::{value_string, RunRecord, Status};
use crate::track::runs::RunEntry;
use serde_json::{Map, Value};
use std::path::Path;

/// The tag that ties an MLflow run to its runner run.
pub const RUN_ID_TAG: &str = "runner.run_id";

/// `MLFLOW_EXPERIMENT_NAME` when set, else the script's file stem.
pub fn experiment_name(record: &RunRecord) -> String {
    match std::env::var("MLFLOW_EXPERIMENT_NAME") {
        Ok(n) if !n.trim().is_empty() => n,
        _ => Path::new(&record.script).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "runner".into()),
    }
}

/// The experiment tag that makes MLflow 3's UI open an experiment on its training runs
/// (rather than on the GenAI overview of traces), with the value the UI's own
/// "Machine learning" choice sets.
pub const EXPERIMENT_KIND: (&str, &str) = ("mlflow.experimentKind", "custom_model_development");

/// The MLflow run's name: the script's stem and the run id (`faces-fd5f81`), short enough
/// for the UI's run list to show whole (the folder's timestamp prefix made every name
/// there look alike), and what `runner show` accepts; the folder is the `runner.folder` tag.
pub fn run_name(entry: &RunEntry) -> String {
    let stem = Path::new(&entry.record.script).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{stem}-{}", entry.record.id)
}

/// The prefix of the tags that say which way a metric is better (`runner.goal.accuracy = max`).
pub const GOAL_TAG: &str = "runner.goal.";

/// The run's tags: MLflow's standard ones (run name in full, source script and git
/// commit, user), what identifies the run's code and machine (`runner.version`,
/// `runner.commit`, `libtorch`, `device`, `threads`, `precision`, `host`, `git_dirty`,
/// `world_size`, where the record has them), its status in runner's words
/// (`interrupted` apart from `failed`), attempts, sweep, Slurm job, and each metric's goal.
/// `slurm_job_id` is the job the run ran in, when it ran under Slurm.
pub fn run_tags(entry: &RunEntry, slurm_job_id: Option<&str>) -> Vec<(String, String)> {
    let record = &entry.record;
    let mut tags = vec![
        (RUN_ID_TAG.to_string(), record.id.clone()),
        ("mlflow.runName".into(), run_name(entry)),
        ("runner.folder".into(), entry.folder()),
        ("runner.script_sha256".into(), record.script_sha256.clone()),
        ("runner.seed".into(), record.seed.to_string()),
        ("runner.status".into(), entry.shown_status()),
        ("mlflow.source.type".into(), "LOCAL".into()),
    ];
    tags.extend(provenance(record).into_iter().map(|f| (f.tag.to_string(), f.value)));
    if record.attempts.len() > 1 {
        tags.push(("runner.attempts".into(), record.attempts.len().to_string()));
    }
    if let Some(s) = &record.sweep {
        tags.push(("runner.sweep".into(), s.clone()));
    }
    if let Some(j) = slurm_job_id {
        tags.push(("runner.slurm_job_id".into(), j.to_string()));
    }
    tags.extend(record.goals.iter().map(|(name, g)| (format!("{GOAL_TAG}{name}"), g.to_string())));
    tags
}

/// The data sets the run resolved (`[[data]]` of run.toml) as MLflow dataset inputs: the
/// data set's name, the first 32 hex digits of its fingerprint as digest (the server keeps
/// 36 characters), its folder as a local source, and its file count and variant (full,
/// sample) as profile.
pub fn run_datasets(record: &RunRecord) -> Vec<Dataset> {
    record
        .data
        .iter()
        .map(|d| Dataset {
            name: d.name.clone(),
            digest: d.fingerprint.chars().take(32).collect(),
            source_type: "local".into(),
            source: serde_json::json!({ "uri": d.folder }).to_string(),
            profile: serde_json::json!({ "num_files": d.files, "variant": d.source }).to_string(),
        })
        .collect()
}

/// Every script param with its value as written in `run.toml`, plus the seed, the weights
/// each body started from (`weights.<i>.arch`, `.source`, `.tag`, `.sha256`, `.file`,
/// `.reason`, as recorded), and the threads and precision the run computed with (they
/// change the numbers too) as `runner.threads` and `runner.precision`, apart from any
/// script param.
pub fn run_params(record: &RunRecord) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = record.params.iter().map(|(k, p)| (k.clone(), value_string(&p.value))).collect();
    if !record.params.contains_key("seed") {
        out.push(("seed".into(), record.seed.to_string()));
    }
    for (i, w) in record.weights.iter().enumerate() {
        let file = w.file.as_deref().map(|f| Path::new(f).file_name().map_or(f.to_string(), |n| n.to_string_lossy().into_owned()));
        let fields = [
            ("arch", Some(w.arch.clone())),
            ("source", Some(w.source.clone())),
            ("tag", w.tag.clone()),
            ("sha256", w.sha256.clone()),
            ("file", file),
            ("reason", w.reason.clone()),
        ];
        // MLflow keeps a param value to 6000 characters.
        out.extend(fields.into_iter().filter_map(|(k, v)| Some((format!("weights.{i}.{k}"), v?.chars().take(6000).collect()))));
    }
    for key in ["threads", "precision"] {
        if let Some(v) = record.extra.get(key) {
            out.push((format!("runner.{key}"), value_string(v)));
        }
    }
    out
}

/// One metric value to send: (key, value, step).
pub type Point = (String, f64, i64);

/// Turns `metrics.jsonl` records, in file order, into metric points:
/// - `epoch` rows: every numeric column under its own name, step = the epoch's index in
///   the run (counting on across fits);
/// - `metric` rows (`log_metric`): their name and step;
/// - `batch` rows: `batch/loss`, `batch/smooth_loss`, `batch/lr`, `batch/mom`, step = the
///   running batch index in the run;
/// - `lr_find` rows: `lr_find/valley`, `lr_find/minimum`, `lr_find/steep`, step = the
///   lr_find's index in the run.
///
/// Other kinds are not metrics and are skipped.
#[derive(Debug, Default)]
pub struct MetricRows {
    epochs: i64,
    batches: i64,
    lr_finds: i64,
}

impl MetricRows {
    pub fn points(&mut self, row: &Map<String, Value>) -> Vec<Point> {
        let num = |v: &Value| super::client::metric_value_from_json(v);
        let columns = |skip: &[&str], prefix: &str, step: i64| -> Vec<Point> {
            row.iter().filter(|(k, _)| !skip.contains(&k.as_str())).filter_map(|(k, v)| Some((format!("{prefix}{k}"), num(v)?, step))).collect()
        };
        match row.get("kind").and_then(Value::as_str) {
            Some("epoch") => {
                self.epochs += 1;
                columns(&["kind", "fit", "epoch"], "", self.epochs - 1)
            }
            Some("batch") => {
                self.batches += 1;
                columns(&["kind", "fit", "iter"], "batch/", self.batches - 1)
            }
            Some("lr_find") => {
                self.lr_finds += 1;
                columns(&["kind"], "lr_find/", self.lr_finds - 1)
            }
            Some("metric") => {
                match (row.get("name").and_then(Value::as_str), row.get("value").and_then(num), row.get("step").and_then(Value::as_i64)) {
                    (Some(n), Some(v), Some(s)) => vec![(n.to_string(), v, s)],
                    _ => vec![],
                }
            }
            _ => vec![],
        }
    }
}

/// Every metric point of a whole `metrics.jsonl`.
pub fn all_points(records: &[Map<String, Value>]) -> Vec<Point> {
    let mut rows = MetricRows::default();
    records.iter().flat_map(|r| rows.points(r)).collect()
}

/// The files to upload, relative to the run folder: `run.toml` (always last, so it is the
/// final word), `metrics.jsonl`, `log.jsonl`, the script copies, every PNG, and the
/// checkpoints in `models/` when asked.
pub fn artifact_files(dir: &Path, with_models: bool) -> Vec<String> {
    let mut found = Vec::new();
    walk(dir, dir, &mut found);
    found.sort();
    let mut out: Vec<String> = ["metrics.jsonl", "log.jsonl"].iter().filter(|f| dir.join(f).is_file()).map(|f| f.to_string()).collect();
    out.extend(found.into_iter().filter(|rel| {
        let ext = Path::new(rel).extension().and_then(|e| e.to_str()).unwrap_or("");
        rel.starts_with("script/") || (with_models && rel.starts_with("models/")) || (ext.eq_ignore_ascii_case("png") && !rel.starts_with("models/"))
    }));
    out.push(crate::track::record::RECORD_FILE.to_string());
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The MLflow status of a finished runner status: interrupted runs are KILLED.
pub fn mlflow_status(status: Status) -> RunStatus {
    match status {
        Status::Running => RunStatus::Running,
        Status::Completed => RunStatus::Finished,
        Status::Failed => RunStatus::Failed,
        Status::Interrupted => RunStatus::Killed,
    }
}

/// The status and end time (ms) a run should have on the server: a record still saying
/// `running` whose process is gone crashed, and ended when its files were last written.
pub fn final_status(entry: &RunEntry) -> (RunStatus, Option<i64>) {
    let rec = &entry.record;
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp_millis());
    if rec.status == Status::Running {
        let last_write = ["log.jsonl", "metrics.jsonl", crate::track::record::RECORD_FILE]
            .iter()
            .filter_map(|f| std::fs::metadata(entry.dir.join(f)).and_then(|m| m.modified()).ok())
            .max()
            .map(|t| chrono::DateTime::<chrono::Utc>::from(t).timestamp_millis());
        return (RunStatus::Failed, last_write);
    }
    (mlflow_status(rec.status), rec.ended.as_deref().and_then(parse))
}

/// The run's start time in ms.
pub fn start_ms(record: &RunRecord) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&record.started).map(|d| d.timestamp_millis()).unwrap_or_else(|_| super::client::now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(v: Value) -> Vec<Map<String, Value>> {
        v.as_array().unwrap().iter().map(|r| r.as_object().unwrap().clone()).collect()
    }

    #[test]
    fn epochs_count_on_across_fits_and_batches_run_on() {
        let recs = rows(json!([
            { "kind": "batch", "fit": 0, "iter": 0, "lr": 0.1, "mom": 0.9, "loss": 2.0, "smooth_loss": 2.0 },
            { "kind": "epoch", "fit": 0, "epoch": 0, "train_loss": 2.0, "valid_loss": "NaN", "accuracy": 0.5 },
            { "kind": "lr_find", "valley": 1e-3, "minimum": 1e-2, "steep": 1e-4 },
            { "kind": "batch", "fit": 1, "iter": 0, "lr": 0.2, "mom": 0.9, "loss": 1.0, "smooth_loss": 1.5 },
            { "kind": "epoch", "fit": 1, "epoch": 0, "train_loss": 1.5, "valid_loss": 1.0, "accuracy": 0.75 },
            { "kind": "metric", "name": "acc", "step": 0, "value": 0.8 },
            { "kind": "note", "text": "not a metric" }
        ]));
        let pts = all_points(&recs);
        let of = |k: &str| pts.iter().filter(|p| p.0 == k).map(|p| (p.1, p.2)).collect::<Vec<_>>();
        assert_eq!(of("accuracy"), vec![(0.5, 0), (0.75, 1)]);
        assert_eq!(of("batch/loss"), vec![(2.0, 0), (1.0, 1)]);
        assert_eq!(of("batch/lr"), vec![(0.1, 0), (0.2, 1)]);
        assert_eq!(of("lr_find/valley"), vec![(1e-3, 0)]);
        assert_eq!(of("acc"), vec![(0.8, 0)]);
        let vl = of("valid_loss");
        assert!(vl[0].0.is_nan() && vl[0].1 == 0 && vl[1] == (1.0, 1), "{vl:?}");
        assert!(pts.iter().all(|p| !["fit", "epoch", "iter", "kind", "batch/iter", "batch/fit"].contains(&p.0.as_str())), "{pts:?}");
        assert_eq!(pts.len(), 3 + 4 + 3 + 4 + 3 + 1);
    }

    #[test]
    fn artifacts_are_the_logs_scripts_pictures_and_record_last() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "run.toml",
            "metrics.jsonl",
            "log.jsonl",
            "script/a.rhai",
            "script/lib/h.rhai",
            "batch.png",
            "models/last.safetensors",
            "models/x.png",
            ".run.toml.tmp",
            "other.txt",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        assert_eq!(artifact_files(d.path(), false), ["metrics.jsonl", "log.jsonl", "batch.png", "script/a.rhai", "script/lib/h.rhai", "run.toml"]);
        let with = artifact_files(d.path(), true);
        assert!(with.contains(&"models/last.safetensors".to_string()) && with.contains(&"models/x.png".to_string()), "{with:?}");
        assert_eq!(with.last().unwrap(), "run.toml");
    }

    #[test]
    fn each_bodys_weights_are_params() {
        let rec: RunRecord = toml::from_str(
            r#"format_version = 1
id = "a"
name = "n"
script = "s.rhai"
script_sha256 = "00"
status = "completed"
seed = 42
command = []
runner_version = "0"
runner_commit = "c"
libtorch = "2.11.0"
device = "cpu"
host = "h"
started = "t"
[[weights]]
arch = "resnet34"
tag = "IMAGENET1K_V1"
source = "torch hub cache"
file = "/hub/resnet34-b627a593.pth"
sha256 = "b627a593ff"
[[weights]]
arch = "resnet18"
source = "random"
reason = "pretrained: false"
"#,
        )
        .unwrap();
        let params: std::collections::BTreeMap<String, String> = run_params(&rec).into_iter().collect();
        let want = [
            ("seed", "42"),
            ("weights.0.arch", "resnet34"),
            ("weights.0.file", "resnet34-b627a593.pth"),
            ("weights.0.sha256", "b627a593ff"),
            ("weights.0.source", "torch hub cache"),
            ("weights.0.tag", "IMAGENET1K_V1"),
            ("weights.1.arch", "resnet18"),
            ("weights.1.reason", "pretrained: false"),
            ("weights.1.source", "random"),
        ];
        assert_eq!(params, want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    }

    #[test]
    fn params_add_the_seed_threads_and_precision_beside_the_scripts() {
        let text = "format_version = 1\nid = \"a\"\nname = \"n\"\nscript = \"s.rhai\"\nscript_sha256 = \"x\"\nstatus = \"completed\"\n\
                    seed = 7\ncommand = []\nrunner_version = \"0\"\nrunner_commit = \"c\"\nlibtorch = \"2\"\ndevice = \"cpu\"\nhost = \"h\"\n\
                    started = \"t\"\nthreads = 1\nprecision = \"bf16\"\n[params.precision]\nvalue = \"mine\"\nsource = \"cli\"\n";
        let rec: RunRecord = toml::from_str(text).unwrap();
        let p: std::collections::BTreeMap<_, _> = run_params(&rec).into_iter().collect();
        let want = [("precision", "mine"), ("runner.precision", "bf16"), ("runner.threads", "1"), ("seed", "7")];
        assert_eq!(p, want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), "a script's own `precision` param is kept apart");
    }
}
