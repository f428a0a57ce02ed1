//! A small client for the MLflow tracking server's REST API, limited to the calls runner
//! needs. Every call has bounded timeouts and a few retries with backoff, so an absent or
//! slow server costs seconds, never a run. Written over `ureq` because the Rust MLflow
//! crates are unmaintained and none uploads artifacts.
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// The server refuses a `log-batch` with more metrics than this (the whole batch is lost).
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// The most params, and tags, one `log-batch` may carry.
const MAX_PARAMS_PER_BATCH: usize = 100;
const TRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(400);

/// A failed call: what was asked, and the server's error code and message when it answered.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub call: String,
    /// HTTP status, None when the server could not be reached.
    pub status: Option<u16>,
    /// MLflow's `error_code` (e.g. `RESOURCE_DOES_NOT_EXIST`), or "" when there was none.
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(
                f,
                "{}: HTTP {s} {}{}",
                self.call,
                self.code,
                if self.message.is_empty() { String::new() } else { format!(": {}", self.message) }
            ),
            None => write!(f, "{}: {}", self.call, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

/// An MLflow run status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
}

/// One metric value as MLflow stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub step: i64,
    pub timestamp: i64,
}

/// What runner reads back about a run.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub run_id: String,
    pub experiment_id: String,
    pub status: String,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Keys with at least one logged value.
    pub metric_keys: Vec<String>,
    /// Its dataset inputs, as (name, digest).
    pub datasets: Vec<(String, String)>,
}

/// A dataset input of a run, as `runs/log-inputs` takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    /// JSON describing where it is (`{"uri": ...}` for a local folder).
    pub source: String,
    /// JSON summary statistics.
    pub profile: String,
}

/// JSON has no NaN or infinities and the server stores a bare `NaN` as 0: send them as the
/// strings the server parses.
pub fn metric_value_json(v: f64) -> Value {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "Infinity".into()
    } else if v == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        v.into()
    }
}

/// A value read back: a number, or one of the strings above.
pub fn metric_value_from_json(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for an `http://` or `https://` tracking URI (the server's root).
    pub fn new(uri: &str) -> Result<Client, String> {
        let base = uri.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() <= "https://".len() {
            return Err(format!("tracking URI `{uri}` is not an http(s):// address of an MLflow tracking server"));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(3))
            .timeout_read(Duration::from_secs(10))
            .timeout_write(Duration::from_secs(10))
            .build();
        Ok(Client { base: base.to_string(), agent })
    }

    pub fn uri(&self) -> &str {
        &self.base
    }

    /// One call with retries: transport errors, 429 and 5xx are retried with doubling
    /// backoff; other HTTP errors are final at once.
    fn call(&self, method: &str, path: &str, query: &[(&str, &str)], body: Body) -> ApiResult<ureq::Response> {
        let what = format!("{method} {path}");
        let mut wait = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let mut req = self.agent.request(method, &format!("{}{path}", self.base));
            for (k, v) in query {
                req = req.query(k, v);
            }
            let res = match &body {
                Body::None => req.call(),
                Body::Json(v) => req.set("Content-Type", "application/json").send_string(&v.to_string()),
                Body::File(p) => match std::fs::File::open(p).and_then(|f| Ok((f.metadata()?.len(), f))) {
                    Ok((len, f)) => req.set("Content-Length", &len.to_string()).send(f),
                    Err(e) => {
                        return Err(ApiError { call: what, status: None, code: String::new(), message: format!("cannot read {}: {e}", p.display()) })
                    }
                },
            };
            let mut err = match res {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(code, r)) => {
                    let e = api_error(&what, code, r);
                    if code != 429 && code < 500 {
                        return Err(e);
                    }
                    e
                }
                Err(ureq::Error::Transport(t)) => {
                    // Without the URL, which the call already names.
                    let full = t.to_string();
                    let message = t.url().and_then(|u| full.strip_prefix(&format!("{u}: "))).unwrap_or(&full).to_string();
                    ApiError { call: what.clone(), status: None, code: String::new(), message }
                }
            };
            if attempt >= TRIES {
                err.message = format!("{} (after {TRIES} tries)", err.message);
                return Err(err);
            }
            std::thread::sleep(wait);
            wait *= 2;
            attempt += 1;
        }
    }

    fn json(&self, method: &str, path: &str, query: &[(&str, &str)], body: Body) -> ApiResult<Value> {
        let what = format!("{method} {path}");
        let r = self.call(method, path, query, body)?;
        serde_json::from_reader(r.into_reader()).map_err(|e| ApiError {
            call: what,
            status: None,
            code: String::new(),
            message: format!("unreadable answer: {e}"),
        })
    }

    /// The id and tags of the experiment with this name, None when there is none.
    pub fn experiment(&self, name: &str) -> ApiResult<Option<(String, BTreeMap<String, String>)>> {
        match self.json("GET", "/api/2.0/mlflow/experiments/get-by-name", &[("experiment_name", name)], Body::None) {
            Ok(v) => Ok(v["experiment"]["experiment_id"].as_str().map(|id| (id.to_string(), pairs(&v["experiment"]["tags"])))),
            Err(e) if e.code == "RESOURCE_DOES_NOT_EXIST" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The experiment's id, creating it with `tags` when missing (another client may
    /// create it first); an existing experiment gets the `tags` it lacks, never a changed one.
    pub fn get_or_create_experiment(&self, name: &str, tags: &[(String, String)]) -> ApiResult<String> {
        let (id, have) = match self.experiment(name)? {
            Some(found) => found,
            None => match self.json("POST", "/api/2.0/mlflow/experiments/create", &[], Body::Json(json!({ "name": name, "tags": key_values(tags) })))
            {
                Ok(v) => return Ok(v["experiment_id"].as_str().unwrap_or_default().to_string()),
                Err(e) if e.code == "RESOURCE_ALREADY_EXISTS" => self.experiment(name)?.ok_or(e)?,
                Err(e) => return Err(e),
            },
        };
        for (k, v) in tags.iter().filter(|(k, _)| !have.contains_key(k)) {
            let body = json!({ "experiment_id": id, "key": k, "value": v });
            self.json("POST", "/api/2.0/mlflow/experiments/set-experiment-tag", &[], Body::Json(body))?;
        }
        Ok(id)
    }

    pub fn create_run(&self, experiment_id: &str, run_name: &str, start_ms: i64, tags: &[(String, String)]) -> ApiResult<Run> {
        let body = json!({ "experiment_id": experiment_id, "run_name": run_name, "start_time": start_ms, "tags": key_values(tags) });
        let v = self.json("POST", "/api/2.0/mlflow/runs/create", &[], Body::Json(body))?;
        Ok(parse_run(&v["run"]))
    }

    /// The run with this id, None when it does not exist.
    pub fn get_run(&self, run_id: &str) -> ApiResult<Option<Run>> {
        match self.json("GET", "/api/2.0/mlflow/runs/get", &[("run_id", run_id)], Body::None) {
            Ok(v) => Ok(Some(parse_run(&v["run"]))),
            Err(e) if e.code == "RESOURCE_DOES_NOT_EXIST" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first active run of the experiment whose tag `key` equals `value`.
    pub fn find_run_by_tag(&self, experiment_id: &str, key: &str, value: &str) -> ApiResult<Option<Run>> {
        let filter = format!("tags.`{key}` = '{}'", value.replace('\'', "\\'"));
        let body = json!({ "experiment_ids": [experiment_id], "filter": filter, "max_results": 1 });
        let v = self.json("POST", "/api/2.0/mlflow/runs/search", &[], Body::Json(body))?;
        Ok(v["runs"].as_array().and_then(|r| r.first()).map(parse_run))
    }

    /// Logs metrics, params and tags, in as many requests as the server's limits need.
    pub fn log_batch(&self, run_id: &str, metrics: &[Metric], params: &[(String, String)], tags: &[(String, String)]) -> ApiResult<()> {
        for chunk in params.chunks(MAX_PARAMS_PER_BATCH) {
            self.json("POST", "/api/2.0/mlflow/runs/log-batch", &[], Body::Json(json!({ "run_id": run_id, "params": key_values(chunk) })))?;
        }
        for chunk in tags.chunks(MAX_PARAMS_PER_BATCH) {
            self.json("POST", "/api/2.0/mlflow/runs/log-batch", &[], Body::Json(json!({ "run_id": run_id, "tags": key_values(chunk) })))?;
        }
        for chunk in metrics.chunks(MAX_METRICS_PER_BATCH) {
            let ms: Vec<Value> = chunk
                .iter()
                .map(|m| json!({ "key": m.key, "value": metric_value_json(m.value), "timestamp": m.timestamp, "step": m.step }))
                .collect();
            self.json("POST", "/api/2.0/mlflow/runs/log-batch", &[], Body::Json(json!({ "run_id": run_id, "metrics": ms })))?;
        }
        Ok(())
    }

    /// Adds dataset inputs to a run (context `training`).
    pub fn log_inputs(&self, run_id: &str, datasets: &[Dataset]) -> ApiResult<()> {
        if datasets.is_empty() {
            return Ok(());
        }
        let inputs: Vec<Value> = datasets
            .iter()
            .map(|d| {
                json!({
                    "tags": [{ "key": "mlflow.data.context", "value": "training" }],
                    "dataset": { "name": d.name, "digest": d.digest, "source_type": d.source_type, "source": d.source, "profile": d.profile },
                })
            })
            .collect();
        self.json("POST", "/api/2.0/mlflow/runs/log-inputs", &[], Body::Json(json!({ "run_id": run_id, "datasets": inputs })))?;
        Ok(())
    }

    /// Every logged value of one metric, following pages.
    pub fn metric_history(&self, run_id: &str, key: &str) -> ApiResult<Vec<Metric>> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut q = vec![("run_id", run_id), ("metric_key", key), ("max_results", "25000")];
            if !token.is_empty() {
                q.push(("page_token", token.as_str()));
            }
            let v = self.json("GET", "/api/2.0/mlflow/metrics/get-history", &q, Body::None)?;
            for m in v["metrics"].as_array().into_iter().flatten() {
                out.push(Metric {
                    key: key.to_string(),
                    value: metric_value_from_json(&m["value"]).unwrap_or(f64::NAN),
                    step: int(&m["step"]).unwrap_or(0),
                    timestamp: int(&m["timestamp"]).unwrap_or(0),
                });
            }
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = t.to_string(),
                _ => return Ok(out),
            }
        }
    }

    /// Sets the run's status (and end time), then checks that the server took it: it
    /// answers 200 to a status it does not know and changes nothing.
    pub fn update_run(&self, run_id: &str, status: RunStatus, end_ms: Option<i64>) -> ApiResult<()> {
        let mut body = json!({ "run_id": run_id, "status": status.as_str() });
        if let Some(t) = end_ms {
            body["end_time"] = t.into();
        }
        let v = self.json("POST", "/api/2.0/mlflow/runs/update", &[], Body::Json(body))?;
        let got = v["run_info"]["status"].as_str().unwrap_or("");
        if got != status.as_str() {
            return Err(ApiError {
                call: "POST /api/2.0/mlflow/runs/update".into(),
                status: Some(200),
                code: String::new(),
                message: format!("asked for status {}, the run says `{got}`", status.as_str()),
            });
        }
        Ok(())
    }

    /// Uploads one file under the run's artifact root through the server's artifact proxy.
    pub fn upload_artifact(&self, run: &Run, rel: &str, file: &Path) -> ApiResult<()> {
        let root = proxied_root(run)?;
        self.call("PUT", &format!("/api/2.0/mlflow-artifacts/artifacts/{root}/{}", encode_path(rel)), &[], Body::File(file.to_path_buf()))?;
        Ok(())
    }

    /// Every artifact file of the run (relative path -> size), folders walked.
    pub fn list_artifacts(&self, run_id: &str) -> ApiResult<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        let mut dirs = vec![String::new()];
        while let Some(dir) = dirs.pop() {
            let mut q = vec![("run_id", run_id)];
            if !dir.is_empty() {
                q.push(("path", dir.as_str()));
            }
            let v = self.json("GET", "/api/2.0/mlflow/artifacts/list", &q, Body::None)?;
            for f in v["files"].as_array().into_iter().flatten() {
                let path = f["path"].as_str().unwrap_or_default().to_string();
                if f["is_dir"].as_bool() == Some(true) {
                    dirs.push(path);
                } else {
                    out.insert(path, int(&f["file_size"]).unwrap_or(0) as u64);
                }
            }
        }
        Ok(out)
    }

    /// The bytes of one artifact.
    pub fn download_artifact(&self, run: &Run, rel: &str) -> ApiResult<Vec<u8>> {
        let root = proxied_root(run)?;
        let path = format!("/api/2.0/mlflow-artifacts/artifacts/{root}/{}", encode_path(rel));
        let r = self.call("GET", &path, &[], Body::None)?;
        let mut bytes = Vec::new();
        r.into_reader().read_to_end(&mut bytes).map_err(|e| ApiError {
            call: format!("GET {path}"),
            status: None,
            code: String::new(),
            message: e.to_string(),
        })?;
        Ok(bytes)
    }
}

enum Body {
    None,
    Json(Value),
    File(std::path::PathBuf),
}

fn api_error(call: &str, status: u16, r: ureq::Response) -> ApiError {
    let text = r.into_string().unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let code = v["error_code"].as_str().unwrap_or("").to_string();
    let message = v["message"].as_str().map(String::from).unwrap_or_else(|| text.chars().take(300).collect::<String>().trim().to_string());
    ApiError { call: call.to_string(), status: Some(status), code, message }
}

/// The run's artifact root as a path of the server's artifact proxy
/// (`mlflow-artifacts:/<experiment>/<run>/artifacts` -> `<experiment>/<run>/artifacts`).
fn proxied_root(run: &Run) -> ApiResult<String> {
    let uri = &run.artifact_uri;
    match uri.strip_prefix("mlflow-artifacts:") {
        Some(rest) => {
            // The URI may name a host (mlflow-artifacts://host:port/path): keep the path only.
            let path = match rest.strip_prefix("//") {
                Some(hosted) => hosted.split_once('/').map(|(_, p)| p).unwrap_or(""),
                None => rest,
            };
            Ok(path.trim_matches('/').to_string())
        }
        None => Err(ApiError {
            call: "artifact upload".into(),
            status: None,
            code: String::new(),
            message: format!("the run's artifact store `{uri}` is not served by the tracking server (start it with --artifacts-destination)"),
        }),
    }
}

/// Percent-encodes each segment of a relative path for a URL.
fn encode_path(rel: &str) -> String {
    rel.split('/')
        .map(|seg| {
            seg.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn key_values(kv: &[(String, String)]) -> Vec<Value> {
    kv.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect()
}

/// Integers come as JSON numbers or (int64 in proto3 JSON) as strings.
fn int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// A list of `{key, value}` objects as a map.
fn pairs(list: &Value) -> BTreeMap<String, String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| Some((kv["key"].as_str()?.to_string(), kv["value"].as_str().unwrap_or_default().to_string())))
        .collect()
}

fn parse_run(v: &Value) -> Run {
    let info = &v["info"];
    let empty = Map::new();
    let data = v["data"].as_object().unwrap_or(&empty);
    Run {
        run_id: info["run_id"].as_str().unwrap_or_default().to_string(),
        experiment_id: info["experiment_id"].as_str().unwrap_or_default().to_string(),
        status: info["status"].as_str().unwrap_or_default().to_string(),
        end_time: int(&info["end_time"]),
        artifact_uri: info["artifact_uri"].as_str().unwrap_or_default().to_string(),
        lifecycle_stage: info["lifecycle_stage"].as_str().unwrap_or_default().to_string(),
        params: data.get("params").map(pairs).unwrap_or_default(),
        tags: data.get("tags").map(pairs).unwrap_or_default(),
        metric_keys: data
            .get("metrics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m["key"].as_str().map(String::from))
            .collect(),
        datasets: v["inputs"]["dataset_inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| Some((d["dataset"]["name"].as_str()?.to_string(), d["dataset"]["digest"].as_str()?.to_string())))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_travel_as_strings_and_come_back() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let j = metric_value_json(v);
            assert!(j.is_string(), "{v} -> {j}");
            let back = metric_value_from_json(&j).unwrap();
            assert!(back == v || (back.is_nan() && v.is_nan()), "{v} -> {j} -> {back}");
        }
        assert_eq!(metric_value_json(0.25), json!(0.25));
    }

    #[test]
    fn artifact_roots_of_the_proxy_and_others() {
        let run = |uri: &str| Run { artifact_uri: uri.into(), ..Run::default() };
        assert_eq!(proxied_root(&run("mlflow-artifacts:/1/abc/artifacts")).unwrap(), "1/abc/artifacts");
        assert_eq!(proxied_root(&run("mlflow-artifacts://srv:5000/1/abc/artifacts")).unwrap(), "1/abc/artifacts");
        let e = proxied_root(&run("s3://bucket/1/abc/artifacts")).unwrap_err();
        assert!(e.message.contains("s3://bucket"), "{e}");
    }

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(encode_path("script/lib/a b.rhai"), "script/lib/a%20b.rhai");
        assert_eq!(encode_path("loss_fit0.png"), "loss_fit0.png");
    }

    #[test]
    fn bad_uris_are_refused_and_a_closed_port_fails_fast() {
        assert!(Client::new("file:./mlruns").is_err());
        assert!(Client::new("databricks").is_err());
        // A port nobody listens on: refused at once, three tries with backoff, then an error.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let c = Client::new(&format!("http://127.0.0.1:{port}/")).unwrap();
        let t = std::time::Instant::now();
        let e = c.experiment("x").unwrap_err();
        assert!(e.status.is_none(), "{e}");
        assert!(e.to_string().contains("after 3 tries"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    /// A one-thread HTTP server that answers every request with `answer` and hands back
    /// the request bodies it got.
    fn fake_server(answer: &'static str) -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut r = BufReader::new(stream);
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                let _ = tx.send(String::from_utf8(body).unwrap());
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                r.into_inner().write_all(reply.as_bytes()).unwrap();
            }
        });
        (uri, rx)
    }

    #[test]
    fn metrics_go_in_batches_of_at_most_1000() {
        let (uri, bodies) = fake_server("{}");
        let c = Client::new(&uri).unwrap();
        let ms: Vec<Metric> = (0..2500).map(|i| Metric { key: "loss".into(), value: i as f64, step: i, timestamp: 1 }).collect();
        c.log_batch("r", &ms, &[("lr".into(), "0.1".into())], &[]).unwrap();
        let sizes: Vec<(usize, usize)> = bodies
            .try_iter()
            .map(|b| serde_json::from_str::<Value>(&b).unwrap())
            .map(|v| (v["params"].as_array().map_or(0, Vec::len), v["metrics"].as_array().map_or(0, Vec::len)))
            .collect();
        assert_eq!(sizes, vec![(1, 0), (0, 1000), (0, 1000), (0, 500)]);
    }

    #[test]
    fn a_status_the_server_did_not_take_is_an_error() {
        let (uri, _bodies) = fake_server(r#"{"run_info": {"status": "RUNNING"}}"#);
        let e = Client::new(&uri).unwrap().update_run("r", RunStatus::Finished, Some(5)).unwrap_err();
        assert!(e.to_string().contains("asked for status FINISHED, the run says `RUNNING`"), "{e}");
    }
}
