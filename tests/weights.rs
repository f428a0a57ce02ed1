//! Pretrained weights through the real binary, with real files and no internet: `.pth`
//! files written by the venv's torchvision (random weights, torchvision's format) served
//! from a server on 127.0.0.1, found in the folders, checked, recorded, rerun; bad files.
mod common;
use common::{Ran, Sandbox};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How the server sends a file.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Whole,
    /// Announces the whole length, sends half, and closes.
    Half,
    /// Only once two requests have come (30 s at most), then in 1 MiB pieces 20 ms apart:
    /// two downloads that surely overlap.
    Together,
}

/// What the server sends, by path.
type Routes = Arc<Mutex<HashMap<String, (Vec<u8>, Mode)>>>;

struct Server {
    base: String,
    files: Routes,
    hits: Arc<AtomicUsize>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let files: Routes = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let (f, h) = (files.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (f, h) = (f.clone(), h.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap_or(0);
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                            break;
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let mut stream = stream;
                    let Some((body, mode)) = f.lock().unwrap().get(&path).cloned() else {
                        let _ = write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        return;
                    };
                    let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    match mode {
                        Mode::Whole => drop(stream.write_all(&body)),
                        Mode::Half => drop(stream.write_all(&body[..body.len() / 2])),
                        Mode::Together => {
                            let t0 = std::time::Instant::now();
                            while h.load(Ordering::SeqCst) < 2 && t0.elapsed() < Duration::from_secs(30) {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            for piece in body.chunks(1 << 20) {
                                if stream.write_all(piece).is_err() {
                                    return;
                                }
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                });
            }
        });
        Server { base, files, hits }
    }

    /// Serves `bytes` at `/<name>`; returns its URL.
    fn put(&self, name: &str, bytes: &[u8], mode: Mode) -> String {
        self.files.lock().unwrap().insert(format!("/{name}"), (bytes.to_vec(), mode));
        format!("{}/{name}", self.base)
    }
}

/// Two random resnet18 state_dicts as torch.save writes them (seeds 1 and 2), and an arch's
/// other weights, written once per test binary by the venv's torchvision.
struct Files {
    _dir: tempfile::TempDir,
    r18: Vec<u8>,
    r18_other: Vec<u8>,
    r34: PathBuf,
    dir: PathBuf,
}

fn files() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let script = "import sys, torch, torchvision\n\
                      for seed, arch, name in [(1, 'resnet18', 'a'), (2, 'resnet18', 'b'), (1, 'resnet34', 'r34')]:\n    \
                          torch.manual_seed(seed)\n    \
                          torch.save(getattr(torchvision.models, arch)().state_dict(), f'{sys.argv[1]}/{name}.pth')\n";
        let ok = std::process::Command::new(common::project_root().join(".venv/bin/python"))
            .args(["-c", script])
            .arg(dir.path())
            .status()
            .expect("the .venv python (scripts/bootstrap creates it)")
            .success();
        assert!(ok);
        let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap();
        Files { r18: read("a.pth"), r18_other: read("b.pth"), r34: dir.path().join("r34.pth"), dir: dir.path().to_path_buf(), _dir: dir }
    })
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The name torch.hub would give `bytes`: `resnet18-<first 8 hex of its sha256>.pth`.
fn hub_name(bytes: &[u8]) -> String {
    format!("resnet18-{}.pth", &sha(bytes)[..8])
}

/// A sandbox whose runner cache and torch home are its own.
fn sandbox() -> Sandbox {
    Sandbox::new()
}

fn cache(sb: &Sandbox) -> PathBuf {
    sb.path().join("cache/weights")
}

fn run(sb: &Sandbox, script: &str, env: &[(&str, &str)]) -> Ran {
    sb.write("w.rhai", script);
    let mut c = sb.command(&["w.rhai"]);
    c.env("RUNNER_CACHE", sb.path().join("cache"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap().into()
}

/// A script that makes a Siamese model over a body made with `options` and saves it.
fn body_script(options: &str) -> String {
    format!("let b = create_body(\"resnet18\"{options});\nlet m = siamese_model(b, \"l1\");\nm.save(\"m\");\nprint(\"built\");\n")
}

fn weights_of(sb: &Sandbox) -> toml::Table {
    sb.record(&sb.last_run())["weights"].as_array().unwrap()[0].as_table().unwrap().clone()
}

/// Every file under the runner's weights cache (partial files included).
fn cached(sb: &Sandbox) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(d: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), root, out);
            } else {
                out.push(e.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    walk(&cache(sb), &cache(sb), &mut out);
    out.sort();
    out
}

/// A failed run or command: exit 1, the message, no C++ or Rust internals.
fn fails_with(r: &Ran, want: &[&str]) {
    assert_eq!(r.code, 1, "expected a failure:\nstdout {}\nstderr {}", r.stdout, r.stderr);
    for w in want {
        assert!(r.stderr.contains(w), "`{w}` not in: {}", r.stderr);
    }
    for bad in ["panicked", "frame #", "INTERNAL ASSERT", "Exception raised from", "internal error"] {
        assert!(!r.stderr.contains(bad), "`{bad}` in: {}", r.stderr);
    }
}

#[test]
fn a_download_is_checked_kept_and_found_the_next_time() {
    let f = files();
    let server = Server::start();
    let name = hub_name(&f.r18);
    let url = server.put(&name, &f.r18, Mode::Whole);
    let sb = sandbox();
    let r = run(&sb, &body_script(&format!(", #{{ weights: \"{url}\" }}")), &[]);
    r.ok();
    assert!(r.stderr.contains(&format!("resnet18 weights: downloaded to {}", cache(&sb).join(&name).display())), "{}", r.stderr);
    let w = weights_of(&sb);
    assert_eq!(w["source"].as_str(), Some("downloaded"));
    assert_eq!(w["sha256"].as_str(), Some(sha(&f.r18).as_str()));
    assert_eq!(w["url"].as_str(), Some(url.as_str()));
    assert_eq!(cached(&sb), vec![name.clone()], "the file, and no partial file");
    assert_eq!(std::fs::read(cache(&sb).join(&name)).unwrap(), f.r18);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    // The next run finds it in the cache: nothing is downloaded.
    let r = run(&sb, &body_script(&format!(", #{{ weights: \"{url}\" }}")), &[]);
    r.ok();
    assert_eq!(weights_of(&sb)["source"].as_str(), Some("runner cache"));
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    let show = sb.run(&["show", "last"]);
    show.ok();
    let row = show.stdout.lines().find(|l| l.starts_with("resnet18 ")).unwrap_or_default();
    assert!(row.contains("file") && row.contains("runner cache") && row.contains(&sha(&f.r18)[..12]), "{}", show.stdout);

    // A name without a hash could be any file: it is kept under its URL's own folder.
    let plain = server.put("weights.pth", &f.r18_other, Mode::Whole);
    for source in ["downloaded", "runner cache"] {
        run(&sb, &body_script(&format!(", #{{ weights: \"{plain}\" }}")), &[]).ok();
        assert_eq!(weights_of(&sb)["source"].as_str(), Some(source));
    }
    let kept: Vec<String> = cached(&sb).into_iter().filter(|p| p.ends_with("/weights.pth")).collect();
    assert!(kept.len() == 1 && kept[0].starts_with("urls/"), "{:?}", cached(&sb));
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
}

#[test]
fn a_wrong_hash_prefix_is_refused_naming_both_hashes_and_leaves_nothing() {
    let f = files();
    let server = Server::start();
    // The default weights' name (resnet18-f37072fd.pth) over a file that is something else.
    server.put("resnet18-f37072fd.pth", &f.r18, Mode::Whole);
    let sb = sandbox();
    let base = format!("{}/", server.base);
    let env = [("RUNNER_WEIGHTS_URL_BASE", base.as_str())];
    let r = run(&sb, &format!("print(\"start\");\n{}", body_script(", #{ pretrained: \"required\" }")), &env);
    fails_with(&r, &["w.rhai:2:", "resnet18 needs its pretrained weights (IMAGENET1K_V1)", "f37072fd", &sha(&f.r18)]);
    assert_eq!(cached(&sb), Vec::<String>::new(), "nothing left in the cache");

    // Not required: a warning with both hashes, then random init.
    let r = run(&sb, &body_script(""), &env);
    r.ok();
    assert!(r.stderr.contains("resnet18 starts from RANDOM weights") && r.stderr.contains(&sha(&f.r18)), "{}", r.stderr);
    assert_eq!(weights_of(&sb)["source"].as_str(), Some("random"));
    assert_eq!(cached(&sb), Vec::<String>::new());
    // `runner weights fetch` refuses it the same way.
    let r: Ran = sb
        .command(&["weights", "fetch", "resnet18"])
        .env("RUNNER_CACHE", sb.path().join("cache"))
        .env("RUNNER_WEIGHTS_URL_BASE", &base)
        .output()
        .unwrap()
        .into();
    fails_with(&r, &["cannot fetch resnet18 IMAGENET1K_V1", "starting with f37072fd", &sha(&f.r18)]);
    assert_eq!(cached(&sb), Vec::<String>::new());
}

#[test]
fn a_server_that_stops_halfway_leaves_nothing_and_the_next_run_downloads_again() {
    let f = files();
    let server = Server::start();
    let name = hub_name(&f.r18);
    let url = server.put(&name, &f.r18, Mode::Half);
    let sb = sandbox();
    let script = format!("print(\"start\");\n{}", body_script(&format!(", #{{ weights: \"{url}\" }}")));
    let r = run(&sb, &script, &[]);
    fails_with(&r, &["w.rhai:2:", &url]);
    assert_eq!(cached(&sb), Vec::<String>::new(), "the partial file is removed");
    server.put(&name, &f.r18, Mode::Whole);
    run(&sb, &script, &[]).ok();
    assert_eq!(weights_of(&sb)["source"].as_str(), Some("downloaded"));
    assert_eq!(cached(&sb), vec![name]);
}

#[test]
fn two_runs_downloading_the_same_file_at_once_do_not_clash() {
    let f = files();
    let server = Server::start();
    let name = hub_name(&f.r18);
    let url = server.put(&name, &f.r18, Mode::Together);
    let sb = sandbox();
    sb.write("w.rhai", &body_script(&format!(", #{{ weights: \"{url}\" }}")));
    let start = || sb.command(&["w.rhai"]).env("RUNNER_CACHE", sb.path().join("cache")).spawn().unwrap();
    let (a, b) = (start(), start());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 2, "both downloaded, at the same time");
    assert_eq!(cached(&sb), vec![name.clone()], "one file, no partial file");
    assert_eq!(std::fs::read(cache(&sb).join(&name)).unwrap(), f.r18);
    for run in sb.runs() {
        assert_eq!(sb.record(&run)["weights"][0]["sha256"].as_str(), Some(sha(&f.r18).as_str()));
    }
}

#[test]
fn offline_default_weights_warn_and_start_random_unless_required() {
    let sb = sandbox();
    let offline = [("RUNNER_OFFLINE", "1")];
    let r = run(&sb, &body_script(""), &offline);
    r.ok();
    for want in ["resnet18 starts from RANDOM weights, not ImageNet's (IMAGENET1K_V1)", "runner weights fetch resnet18", "resnet18-f37072fd.pth"] {
        assert!(r.stderr.contains(want), "`{want}` in: {}", r.stderr);
    }
    let w = weights_of(&sb);
    assert_eq!(w["source"].as_str(), Some("random"));
    assert!(w["reason"].as_str().unwrap().contains("RUNNER_OFFLINE is set"), "{w:?}");
    let fallback = std::fs::read(sb.last_run().join("models/m.safetensors")).unwrap();

    // pretrained: false is the same random init, quietly.
    let r = run(&sb, &body_script(", #{ pretrained: false }"), &offline);
    r.ok();
    assert!(!r.stderr.contains("RANDOM"), "{}", r.stderr);
    assert_eq!(weights_of(&sb)["reason"].as_str(), Some("pretrained: false"));
    assert_eq!(std::fs::read(sb.last_run().join("models/m.safetensors")).unwrap(), fallback, "the fallback is the random init");

    let required = format!("print(\"start\");\n{}", body_script(""));
    let r = run(&sb, &required, &[("RUNNER_OFFLINE", "1"), ("RUNNER_REQUIRE_WEIGHTS", "1")]);
    fails_with(&r, &["w.rhai:2:", "resnet18 needs its pretrained weights (IMAGENET1K_V1), which cannot be had", "runner weights fetch resnet18"]);
    let r = run(&sb, &format!("print(\"start\");\n{}", body_script(", #{ pretrained: \"required\" }")), &offline);
    fails_with(&r, &["w.rhai:2:", "which cannot be had"]);
    let r = run(&sb, &format!("print(\"start\");\n{}", body_script(", #{ pretrained: \"yes\" }")), &offline);
    fails_with(&r, &["w.rhai:2:", "option `pretrained` must be true, false or \"required\""]);
}

#[test]
fn the_torch_hub_cache_and_runner_weights_are_found_and_bad_copies_passed_over() {
    let f = files();
    let name = hub_name(&f.r18);
    let sb = sandbox();
    let hub = sb.path().join("torch-home/hub/checkpoints");
    std::fs::create_dir_all(&hub).unwrap();
    std::fs::write(hub.join(&name), &f.r18).unwrap();
    // A URL nothing answers on: the file must come from a folder.
    let url = format!("{}{name}", common::CLOSED_PORT);
    let script = body_script(&format!(", #{{ weights: \"{url}\" }}"));
    let r = run(&sb, &script, &[]);
    r.ok();
    assert!(r.stderr.contains(&format!("resnet18 weights: from the torch hub cache, {}", hub.join(&name).display())), "{}", r.stderr);
    assert_eq!(weights_of(&sb)["source"].as_str(), Some("torch hub cache"));

    // RUNNER_WEIGHTS comes first; a damaged copy there is passed over, loudly.
    let shared = sb.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join(&name), &f.r18_other).unwrap();
    let r = run(&sb, &script, &[("RUNNER_WEIGHTS", shared.to_str().unwrap())]);
    r.ok();
    assert!(r.stderr.contains(&format!("not using {} (RUNNER_WEIGHTS): sha256 mismatch", shared.join(&name).display())), "{}", r.stderr);
    assert!(r.stderr.contains(&sha(&f.r18_other)));
    assert_eq!(weights_of(&sb)["source"].as_str(), Some("torch hub cache"));
    std::fs::write(shared.join(&name), &f.r18).unwrap();
    run(&sb, &script, &[("RUNNER_WEIGHTS", shared.to_str().unwrap())]).ok();
    assert_eq!(weights_of(&sb)["source"].as_str(), Some("RUNNER_WEIGHTS"));

    // The default weights' name over another file, in the hub cache: passed over, random init.
    std::fs::write(hub.join("resnet18-f37072fd.pth"), &f.r18).unwrap();
    let r = run(&sb, &body_script(""), &[("RUNNER_OFFLINE", "1")]);
    r.ok();
    assert!(r.stderr.contains("(torch hub cache): sha256 mismatch: its name resnet18-f37072fd.pth promises"), "{}", r.stderr);
    assert_eq!(weights_of(&sb)["source"].as_str(), Some("random"));
    let list = sb.run(&["weights", "list"]);
    list.ok();
    let row = list.stdout.lines().find(|l| l.contains("resnet18-f37072fd.pth")).unwrap_or_default();
    assert!(row.contains("torch hub cache") && list.stdout.contains(&hub.display().to_string()), "{}", list.stdout);
}

#[test]
fn a_rerun_starts_from_the_recorded_weights_or_refuses() {
    let f = files();
    let sb = sandbox();
    let file = sb.path().join("mine.pth");
    std::fs::write(&file, &f.r18).unwrap();
    run(&sb, &body_script(&format!(", #{{ weights: \"{}\" }}", file.display())), &[]).ok();
    let first = sb.last_run();
    assert_eq!(sb.record(&first)["weights"][0]["source"].as_str(), Some("path"));
    let r: Ran = sb.command(&["rerun", first.to_str().unwrap()]).env("RUNNER_CACHE", sb.path().join("cache")).output().unwrap().into();
    r.ok();
    std::fs::write(&file, &f.r18_other).unwrap();
    let r: Ran = sb.command(&["rerun", first.to_str().unwrap()]).env("RUNNER_CACHE", sb.path().join("cache")).output().unwrap().into();
    fails_with(&r, &["this rerun would start the resnet18 body from resnet18", &sha(&f.r18_other)[..8], "started it from", &sha(&f.r18)]);

    // A run that started from random init (offline) reruns from random init, even where the
    // default weights would now be an error.
    run(&sb, &body_script(""), &[("RUNNER_OFFLINE", "1")]).ok();
    let random = sb.last_run();
    let r: Ran = sb
        .command(&["rerun", random.to_str().unwrap()])
        .env("RUNNER_CACHE", sb.path().join("cache"))
        .env("RUNNER_OFFLINE", "1")
        .env("RUNNER_REQUIRE_WEIGHTS", "1")
        .output()
        .unwrap()
        .into();
    r.ok();
    let again = sb.last_run();
    assert!(sb.record(&again)["weights"][0]["reason"].as_str().unwrap().starts_with("as "), "{:?}", sb.record(&again)["weights"]);
    assert_eq!(std::fs::read(random.join("models/m.safetensors")).unwrap(), std::fs::read(again.join("models/m.safetensors")).unwrap());
}

#[test]
fn bad_weight_files_get_one_clear_line_naming_the_file() {
    let f = files();
    let sb = sandbox();
    let data = &f.r18;
    std::fs::write(sb.path().join("truncated.pth"), &data[..data.len() / 2]).unwrap();
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(sb.path().join("notes.pth")).unwrap());
        z.start_file("notes/readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(b"not weights").unwrap();
        z.finish().unwrap();
    }
    let mut header = b"{\"w\":{\"dtype\":\"F32\",\"shape\":[1000],\"data_offsets\":[0,4000]}}".to_vec();
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.append(&mut header);
    st.extend_from_slice(&[0u8; 400]);
    std::fs::write(sb.path().join("short.safetensors"), st).unwrap();
    let py = "import sys, torch; torch.save({'epoch': 3, 'lr': 0.1}, sys.argv[1] + '/scalars.pth'); torch.save([torch.ones(2)], sys.argv[1] + '/list.pth')";
    assert!(std::process::Command::new(common::project_root().join(".venv/bin/python")).args(["-c", py]).arg(sb.path()).status().unwrap().success());
    let cases = [
        ("truncated.pth", "it is not a zip archive as torch.save (1.6 or later) writes"),
        ("notes.pth", "it is a zip archive, but not one torch.save wrote (no data.pkl)"),
        ("scalars.pth", "it holds no tensors"),
        ("list.pth", "it holds a list, not a state_dict"),
        ("short.safetensors", "its safetensors header describes 4000 bytes of tensor data, the file holds 400: truncated?"),
    ];
    for (file, want) in cases {
        let r = sb.run(&["weights", "convert", file, "out.safetensors"]);
        fails_with(&r, &[&format!("cannot read weights {file}: {want}")]);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        let r = run(&sb, &format!("print(\"start\");\n{}", body_script(&format!(", #{{ weights: \"{file}\" }}"))), &[]);
        fails_with(&r, &["w.rhai:3:", &format!("cannot read weights {file}: {want}")]);
    }
    // Another arch's weights: the names the body lacks and the file's own, listed.
    let r34 = f.r34.display().to_string();
    let r = run(&sb, &format!("print(\"start\");\n{}", body_script(&format!(", #{{ weights: \"{r34}\" }}"))), &[]);
    fails_with(
        &r,
        &[
            "w.rhai:3:",
            &format!("weights {r34} do not fit the model's `body`"),
            "tensor(s) the model lacks: layer1.2.bn1.bias",
            "(weights of another arch?)",
        ],
    );
    let r = run(
        &sb,
        &format!("print(\"start\");\nlet b = create_body(\"convnext_tiny\", #{{ weights: \"{r34}\" }});\nlet m = siamese_model(b, \"l1\");\n"),
        &[],
    );
    fails_with(&r, &["w.rhai:3:", "tensor(s): features.0.0.bias", "tensor(s) the model lacks: bn1.bias", "(weights of another arch?)"]);
    // The good file converts, OrderedDict and all, without Python.
    let good = f.dir.join("a.pth");
    let r = sb.run(&["weights", "convert", good.to_str().unwrap(), "good.safetensors"]);
    r.ok();
    assert!(r.stdout.contains("(102 tensors)"), "{}", r.stdout);
}
