//! Issue #13, hostile input: what a careless or hostile user can feed the runner. Nothing
//! passes silently, nothing panics, no script eats the machine, records survive.
mod common;
use common::{Ran, Sandbox};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn hello() -> String {
    common::project_root().join("experiments/hello.rhai").display().to_string()
}

/// A failed run: exit 1, the error at `file:line`, no panic, no C++ frames. Returns stderr.
fn fails_at(r: &Ran, at: &str) -> String {
    assert_eq!(r.code, 1, "expected a failed run:\nstdout {}\nstderr {}", r.stdout, r.stderr);
    assert!(r.stderr.contains(at), "error positioned at {at}: {}", r.stderr);
    for bad in ["panicked", "internal error", "frame #", "Exception raised from", "RUST_BACKTRACE"] {
        assert!(!r.stderr.contains(bad), "`{bad}` in: {}", r.stderr);
    }
    r.stderr.clone()
}

// 8. A closed pipe ends a listing quietly, as it ends Unix tools.
#[test]
fn closed_pipe_ends_listings_quietly() {
    let sb = Sandbox::new();
    sb.run(&[&hello()]).ok();
    let run = sb.last_run().display().to_string();
    for args in [vec!["api"], vec!["runs"], vec!["show", "--json", run.as_str()], vec!["compare", "last", "last"]] {
        let mut child = sb.command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take()); // the reader is gone before the first line is written
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert!(out.status.success() || out.status.signal() == Some(13), "{args:?}: {:?} {stderr}", out.status);
    }
}

// 4. One byte that is not UTF-8 in a metrics file loses that line, not every run.
#[test]
fn a_non_utf8_metrics_line_is_counted_not_fatal() {
    let sb = Sandbox::new();
    sb.run(&[&hello()]).ok();
    let run = sb.last_run();
    std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("metrics.jsonl"))
        .unwrap()
        .write_all(b"{\"kind\":\"metric\",\"name\":\"m\xff\"}\n")
        .unwrap();
    let r = sb.run(&["runs", "--json"]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["damaged_metric_lines"], 1, "{}", r.stdout);
    assert!(v[0]["metrics"]["mean"]["last"].is_number(), "{}", r.stdout);
    let r = sb.run(&["show", "last"]);
    r.ok();
    assert!(r.stdout.contains("line 3 is damaged") && r.stdout.contains("not valid UTF-8"), "{}", r.stdout);
    sb.run(&["compare", "last", "last"]).ok();
    let r = sb.run(&["rerun", "last"]);
    r.ok();
    assert!(r.stdout.contains("metrics.jsonl differs"), "the damaged line makes the files differ: {}", r.stdout);
}

// 9. A damaged run.toml is named as damaged, not as a missing run.
#[test]
fn a_damaged_record_is_named_as_such() {
    let sb = Sandbox::new();
    sb.run(&[&hello()]).ok();
    let run = sb.last_run();
    let folder = run.file_name().unwrap().to_str().unwrap().to_string();
    let id = folder.rsplit('-').next().unwrap().to_string();
    std::fs::write(run.join("run.toml"), "status = \"completed\"\nthis is not toml").unwrap();
    for name in [folder.as_str(), id.as_str()] {
        for args in [vec!["show", name], vec!["compare", name], vec!["rerun", name]] {
            let r = sb.run(&args);
            assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains("is not a valid run record") && !r.stderr.contains("no run named"), "{args:?}: {}", r.stderr);
        }
    }
}

// 9. Small refusals: an archive URL without a usable name, a negative head, grids.
#[test]
fn bad_urls_negative_heads_and_bad_grids_are_refused() {
    let sb = Sandbox::new();
    sb.write("u.rhai", "let p = untar_data(\"http://127.0.0.1:9/..zip\");\nprint(p);\n");
    let e = fails_at(&sb.run(&["u.rhai"]), "u.rhai:1");
    assert!(e.contains("gives no usable folder name"), "{e}");

    sb.write("h.rhai", "let t = image_table([\"a/x.jpg\", \"b/y.jpg\"], parent_label(), random_splitter([1, 2], #{}));\nt.head(-5);\n");
    let e = fails_at(&sb.run(&["h.rhai"]), "h.rhai:2");
    assert!(e.contains("must not be negative, got -5"), "{e}");

    let before = sb.runs().len();
    let r = sb.run(&["sweep", &hello(), "--grid", "scale=1e-3,abc"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("param `scale` expects a number") && r.stderr.contains("abc"), "{}", r.stderr);
    assert_eq!(sb.runs().len(), before, "no point ran");
    let r = sb.run(&["sweep", &hello(), "--grid", "scale=1", "--grid", "scale=2"]);
    assert_eq!(r.code, 2, "{}", r.stderr); // a usage error
    assert!(r.stderr.contains("--grid names `scale` twice"), "{}", r.stderr);
    assert_eq!(sb.runs().len(), before, "no point ran");
}

/// Writes a record for a live process (this test) into a finished run, as a crashed run
/// whose pid was reused would look.
fn fake_running(sb: &Sandbox, pid_start: i64) -> String {
    let run = sb.last_run();
    let mut rec = sb.record(&run);
    rec.insert("status".into(), "running".into());
    rec.remove("ended");
    rec.insert("pid".into(), toml::Value::Integer(std::process::id() as i64));
    rec.insert("pid_start".into(), toml::Value::Integer(pid_start));
    std::fs::write(run.join("run.toml"), toml::to_string(&rec).unwrap()).unwrap();
    let r = sb.run(&["runs", "--json"]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v[0]["record"]["status"].as_str().unwrap().to_string()
}

// 7. A pid alone is not proof of life: the process must have started when the run did.
#[test]
fn a_reused_pid_does_not_keep_a_crashed_run_running() {
    let sb = Sandbox::new();
    sb.run(&[&hello()]).ok();
    let rec = sb.record(&sb.last_run());
    assert!(rec["pid_start"].as_integer().unwrap() > 0, "the start time is recorded with the pid");
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let mine: i64 = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(19).unwrap().parse().unwrap();
    assert_eq!(fake_running(&sb, mine), "running");
    assert_eq!(fake_running(&sb, mine + 1), "crashed");
}

// 5. Params declared in a module are known; computed names warn instead of refusing.
#[test]
fn params_in_modules_and_computed_names() {
    let sb = Sandbox::new();
    sb.write("lib/h.rhai", "export const EPOCHS = param(\"epochs\", 4);\nfn lr() { param(\"lr\", 1e-3) }\n");
    sb.write("m.rhai", "import \"lib/h\" as h;\nprint(`epochs=${h::EPOCHS} lr=${h::lr()}`);\n");
    let r = sb.run(&["m.rhai", "--set", "epochs=2", "--set", "lr=0.5"]);
    r.ok();
    assert!(r.stdout.contains("epochs=2 lr=0.5"), "{}", r.stdout);
    let r = sb.run(&["m.rhai", "--set", "epoch=2"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("`epoch`") && r.stderr.contains("epochs, lr"), "typos still refused: {}", r.stderr);
    let r = sb.run(&["m.rhai", "--set", "epochs=two"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("param `epochs` expects an integer"), "{}", r.stderr);

    sb.write("c.rhai", "let name = \"ep\" + \"ochs\";\nlet e = param(name, 4);\nprint(`epochs=${e}`);\n");
    let r = sb.run(&["c.rhai", "--set", "epochs=2"]);
    r.ok();
    assert!(r.stdout.contains("epochs=2"), "{}", r.stdout);
    assert!(r.stderr.contains("warning") && r.stderr.contains("c.rhai:2"), "the computed name is pointed at: {}", r.stderr);
}

// 2. Scripts have memory bounds, each named with its flag.
#[test]
fn scripts_stop_at_their_memory_limits() {
    let sb = Sandbox::new();
    let cases = [
        ("let a = [0];\na.pad(1000000000, 0);\n", "--max-array-size", None),
        ("let s = \"x\";\nfor i in 0..40 { s += s; }\n", "--max-string-size", None),
        ("let s = \"x\";\ns.pad(4000000000, 'x');\n", "--max-string-size", None),
        // Keys added by index: Rhai itself would only check the map when it is next passed on.
        ("let m = #{};\nfor i in 0..2000000000 { m[`k${i}`] = i; }\n", "--max-map-size", Some("10000")),
    ];
    for (text, flag, limit) in cases {
        sb.write("big.rhai", text);
        let t = Instant::now();
        let mut args = vec!["big.rhai"];
        args.extend(limit.iter().flat_map(|l| [flag, *l]));
        let e = fails_at(&sb.run(&args), "big.rhai:2");
        assert!(e.contains(flag) && e.contains("over the limit of"), "{text}: {e}");
        assert!(t.elapsed() < Duration::from_secs(30), "{text}: stopped early, not after filling memory");
    }
    sb.write("small.rhai", "let a = [];\na.pad(2000, 0);\nprint(a.len());\n");
    let e = fails_at(&sb.run(&["small.rhai", "--max-array-size", "1000"]), "small.rhai:2");
    assert!(e.contains("over the limit of 1000 elements"), "{e}");
    sb.run(&["small.rhai", "--max-array-size", "0"]).ok();

    sb.write("t.rhai", "let n = 3037000500;\nlet t = randn([n, n]);\n");
    let e = fails_at(&sb.run(&["t.rhai"]), "t.rhai:2");
    assert!(e.contains("randn") && e.contains("memory available"), "{e}");
    sb.write("b.rhai", "let a = rand([1000000, 1]);\nlet b = a * rand([1, 1000000]);\n");
    let e = fails_at(&sb.run(&["b.rhai"]), "b.rhai:2");
    assert!(e.contains("[1000000, 1000000]") && e.contains("memory available"), "{e}");
}

// 3. libtorch errors are script errors: the line, the operation, one line of why.
#[test]
fn libtorch_errors_are_script_errors_without_frames() {
    let sb = Sandbox::new();
    for (text, op) in [
        ("let t = rand([0]);\nprint(t.max());\n", "max"),
        ("let t = rand([0]);\nprint(t.min());\n", "min"),
        ("let a = rand([2]);\nlet b = a + rand([3]);\n", "`+` of shapes [2] and [3]"),
        ("let a = rand([2, 3]);\nlet b = a / rand([4, 3]);\n", "`/` of shapes [2, 3] and [4, 3]"),
    ] {
        sb.write("t.rhai", text);
        let e = fails_at(&sb.run(&["t.rhai"]), "t.rhai:2");
        assert!(e.contains(op), "{text}: {e}");
        let first = e.lines().next().unwrap();
        assert!(first.len() < 400, "one short line: {first}");
        let log = std::fs::read_to_string(sb.last_run().join("log.jsonl")).unwrap();
        assert!(log.contains("Exception raised from") || log.contains("torch"), "the full text is in the run log: {log}");
    }
}

fn wait_for_running(sb: &Sandbox) -> PathBuf {
    let t = Instant::now();
    loop {
        if let Some(run) = sb.runs().pop() {
            if sb.record(&run).get("pid").is_some() {
                return run;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the run never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// 6. SIGTERM (Slurm, systemd, kill) stops a run as Ctrl-C does, and says which it was.
#[test]
fn sigterm_and_sigint_record_an_interrupted_run() {
    for (sig, name, code) in [("-TERM", "SIGTERM", 143), ("-INT", "SIGINT", 130)] {
        let sb = Sandbox::new();
        sb.write("loop.rhai", "let i = 0;\nloop { i += 1; }\n");
        let child = sb.command(&["loop.rhai", "--max-operations", "0"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let run = wait_for_running(&sb);
        std::thread::sleep(Duration::from_millis(200));
        assert!(Command::new("kill").arg(sig).arg(child.id().to_string()).status().unwrap().success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{name}: {stderr}");
        let rec = sb.record(&run);
        assert_eq!(rec["status"].as_str(), Some("interrupted"), "{name}: {rec:?}");
        assert!(rec.get("ended").is_some(), "{rec:?}");
        assert_eq!(rec["signal"].as_str(), Some(name), "{rec:?}");
        assert!(rec["error"].as_str().unwrap().contains(&format!("interrupted by {name}")), "{rec:?}");
        assert!(rec["error"].as_str().unwrap().contains("loop.rhai:2"), "{rec:?}");
    }
}

/// A real photo with its entropy-coded data damaged, and the same photo cut short.
fn damaged_jpegs(dir: &Path) -> (PathBuf, PathBuf) {
    let good = std::fs::read(common::datasets().join("oxford-iiit-pet-sample/images/Abyssinian_101.jpg")).unwrap();
    let sos = good.windows(2).position(|w| w == [0xff, 0xda]).unwrap();
    let mut broken = good.clone();
    for b in &mut broken[sos + 394..sos + 454] {
        *b ^= 0xff;
    }
    let (b, t) = (dir.join("c0/broken.jpg"), dir.join("c1/truncated.jpg"));
    std::fs::write(&b, broken).unwrap();
    std::fs::write(&t, &good[..good.len() * 2 / 3]).unwrap();
    (b, t)
}

// 1. Damaged JPEGs are refused by name, or skipped and counted with skip_bad.
#[test]
fn damaged_jpegs_are_named_or_skipped_and_counted() {
    let sb = Sandbox::new();
    let pets = common::datasets().join("oxford-iiit-pet-sample/images");
    for (i, f) in
        std::fs::read_dir(&pets).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "jpg")).take(8).enumerate()
    {
        let dst = sb.path().join(format!("imgs/c{}/{i}.jpg", i % 2));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(f, dst).unwrap();
    }
    let (broken, truncated) = damaged_jpegs(&sb.path().join("imgs"));
    assert_eq!(pillow_decodes(&[broken, truncated]), [false, false], "Pillow refuses both");
    let files =
        "let files = get_image_files(\"imgs\");\nlet t = image_table(files, parent_label(), random_splitter(files, #{ valid_pct: 0.2, seed: 1 }));\n";
    sb.write("v.rhai", &format!("{files}print(verify_images(files));\n"));
    let r = sb.run(&["v.rhai"]);
    r.ok();
    assert!(r.stdout.contains("broken.jpg") && r.stdout.contains("truncated.jpg"), "{}", r.stdout);
    sb.write("l.rhai", &format!("{files}let dls = image_loaders(t, #{{ size: 32, bs: 2, skip_bad: true }});\nprint(`skipped ${{dls.skipped}}`);\n"));
    let r = sb.run(&["l.rhai"]);
    r.ok();
    assert!(r.stdout.contains("skipped 2"), "{}\n{}", r.stdout, r.stderr);
    sb.write("f.rhai", &format!("{files}let dls = image_loaders(t, #{{ size: 32, bs: 2, cache: true }});\n"));
    let e = fails_at(&sb.run(&["f.rhai"]), "f.rhai:3");
    assert!(e.contains("damaged JPEG") && (e.contains("broken.jpg") || e.contains("truncated.jpg")), "{e}");
}

/// Pillow's verdict on each file: true when it decodes it.
fn pillow_decodes(files: &[PathBuf]) -> Vec<bool> {
    let py = common::project_root().join(".venv/bin/python");
    let code = "import sys\nfrom PIL import Image\nfor p in sys.stdin.read().splitlines():\n    try:\n        Image.open(p).convert('RGB'); print('ok')\n    except Exception as e:\n        print('bad')\n";
    let mut child = Command::new(py)
        .args(["-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the .venv python (scripts/bootstrap creates it)");
    let list: String = files.iter().map(|f| format!("{}\n", f.display())).collect();
    child.stdin.take().unwrap().write_all(list.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().lines().map(|l| l == "ok").collect()
}

// 1. Fuzz: randomly damaged copies of real photos are decoded or refused by name, never a
// panic, and never accepted where Pillow refuses them.
#[test]
fn fuzzed_photos_are_decoded_or_named_never_garbage() {
    use rand::{Rng, SeedableRng};
    let t = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let pets = common::datasets().join("oxford-iiit-pet-sample/images");
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&pets).unwrap().flatten().map(|e| e.path()).collect();
    photos.sort();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
    let mut files = Vec::new();
    for k in 0..300 {
        let mut b = std::fs::read(&photos[rng.gen_range(0..photos.len())]).unwrap();
        let kind = ["truncated", "flipped", "zeroed"][k % 3];
        match kind {
            "truncated" => b.truncate(rng.gen_range(2..b.len())),
            "flipped" => {
                for _ in 0..rng.gen_range(1..=8) {
                    let i = rng.gen_range(0..b.len());
                    b[i] ^= 1 << rng.gen_range(0..8);
                }
            }
            _ => {
                let i = rng.gen_range(0..b.len());
                let n = rng.gen_range(1..=2000).min(b.len() - i);
                b[i..i + n].fill(0);
            }
        }
        let f = dir.path().join(format!("{k:03}-{kind}.jpg"));
        std::fs::write(&f, b).unwrap();
        files.push(f);
    }
    let pillow = pillow_decodes(&files);
    let (mut decoded, mut refused, mut stricter) = (0, 0, 0);
    for (f, &pil_ok) in files.iter().zip(&pillow) {
        let ours = std::panic::catch_unwind(|| runner::data::image::decode(f, 3)).unwrap_or_else(|_| panic!("decoding {} panicked", f.display()));
        match ours {
            Ok(px) => {
                assert!(pil_ok, "{} decoded, but Pillow refuses it", f.display());
                assert_eq!(px.data.len(), (px.width * px.height * 3) as usize);
                decoded += 1;
            }
            Err(e) => {
                let e = format!("{e:#}");
                assert!(e.contains(f.file_name().unwrap().to_str().unwrap()), "the error names the file: {e}");
                refused += 1;
                stricter += pil_ok as usize;
            }
        }
    }
    eprintln!("{decoded} decoded, {refused} refused ({stricter} of them accepted by Pillow) in {:.1}s", t.elapsed().as_secs_f64());
    assert_eq!(decoded + refused, 300);
    assert!(refused >= pillow.iter().filter(|ok| !**ok).count());
    assert!(t.elapsed() < Duration::from_secs(60), "fuzz test took {:?}", t.elapsed());
}

/// A body and loaders that disagree are named at the `learner` line (channels, a flattening
/// convnet's size) or the fit's line (a forward that libtorch refuses), in one short line without C++ frames.
#[test]
fn a_model_that_does_not_fit_its_data_is_named_without_frames() {
    let sb = Sandbox::new();
    let script = |channels: i64, size: i64| {
        format!(
            "let files = get_image_files(untar_data(\"orl_faces\"));\n\
             let dls = image_loaders(image_table(files, parent_label(), random_splitter(files, #{{ valid_pct: 0.2 }})), #{{ size: {size}, channels: {channels}, bs: 16 }});\n\
             let body = convnet(#{{ input: [32, 32], channels: [8, 8, 8], kernels: [3, 3, 3], pool: [true, true, true] }});\n\
             let learn = learner(dls, classifier_model(body, \"cosine\", dls.vocab.len()), #{{}});\n\
             learn.fit(1, 1e-3);\n"
        )
    };
    sb.write("t.rhai", &script(3, 32));
    let e = fails_at(&sb.run(&["t.rhai"]), "t.rhai:4");
    assert!(e.contains("the convnet body takes 1-channel images, but the loaders give 3 channels"), "{e}");
    sb.write("t.rhai", &script(1, 8));
    let e = fails_at(&sb.run(&["t.rhai"]), "t.rhai:4");
    assert!(e.contains("the convnet was built for 32x32 images (input: [32, 32]), but the loaders give 8x8"), "{e}");
    // A body that pools globally takes any size, until libtorch finds the map too small.
    sb.write("t.rhai", &script(1, 8).replace("pool: [true, true, true]", "pool: [true, true, true], embed: 0"));
    let e = fails_at(&sb.run(&["t.rhai"]), "t.rhai:5");
    assert!(e.contains("forward failed for inputs [[16, 1, 8, 8]]: Given input size"), "{e}");
    assert!(e.lines().next().unwrap().len() < 400, "one short line: {e}");
}

// ---- Issue #25: hostile input, round two ----

/// A small real JPEG whose frame header is patched to declare `w` x `h` pixels (as a
/// 127-byte decompression bomb does).
fn jpeg_declaring(w: u16, h: u16) -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbImage::from_pixel(16, 16, image::Rgb([10, 200, 10])).write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg).unwrap();
    let sof = out.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
    out[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    out[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    out
}

/// `n` real photos into `dir/c0` and `dir/c1`, alternately.
fn photos_into(dir: &Path, n: usize) {
    let pets = common::datasets().join("oxford-iiit-pet-sample/images");
    let mut all: Vec<PathBuf> =
        std::fs::read_dir(&pets).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "jpg")).collect();
    all.sort();
    for (i, f) in all.iter().take(n).enumerate() {
        let dst = dir.join(format!("c{}/{i}.jpg", i % 2));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(f, dst).unwrap();
    }
}

// 1, 2. A header that declares 65500x65500 pixels and a 6 GB sparse `.jpg` are refused by
// their declared size, before anything is decoded or read, in every path that decodes:
// verify_images, the loaders (skipped with skip_bad), their cache, show_batch and predict.
#[test]
fn decompression_bombs_and_huge_files_are_refused_in_every_decode_path() {
    let sb = Sandbox::new();
    photos_into(&sb.path().join("imgs"), 6);
    std::fs::write(sb.path().join("imgs/c0/bomb.jpg"), jpeg_declaring(65500, 65500)).unwrap();
    std::fs::File::create(sb.path().join("imgs/c1/huge.jpg")).unwrap().set_len(6 << 30).unwrap();
    for c in ["c0", "c1"] {
        std::fs::create_dir_all(sb.path().join(format!("bombs/{c}"))).unwrap();
        for i in 0..2 {
            std::fs::write(sb.path().join(format!("bombs/{c}/{i}.jpg")), jpeg_declaring(65500, 65500)).unwrap();
        }
    }
    let files = |dir: &str| {
        format!("let files = get_image_files(\"{dir}\");\nlet t = image_table(files, parent_label(), random_splitter(files, #{{ valid_pct: 0.25, seed: 1 }}));\n")
    };
    let t = Instant::now();
    sb.write("v.rhai", &format!("{}print(verify_images(files));\n", files("imgs")));
    let r = sb.run(&["v.rhai"]);
    r.ok();
    assert!(r.stdout.contains("bomb.jpg") && r.stdout.contains("huge.jpg"), "{}", r.stdout);
    sb.write(
        "l.rhai",
        &format!("{}let dls = image_loaders(t, #{{ size: 32, bs: 2, skip_bad: true }});\nprint(`skipped ${{dls.skipped}}`);\n", files("imgs")),
    );
    let r = sb.run(&["l.rhai"]);
    r.ok();
    assert!(r.stdout.contains("skipped 2"), "{}\n{}", r.stdout, r.stderr);
    sb.write("c.rhai", &format!("{}let dls = image_loaders(t, #{{ size: 32, bs: 2, cache: true }});\n", files("imgs")));
    let e = fails_at(&sb.run(&["c.rhai"]), "c.rhai:3");
    assert!(
        e.contains("bomb.jpg: it declares 65500x65500 = 4290250000 pixels, over the limit of 178956970")
            || e.contains("huge.jpg is 6442450944 bytes, more than an image of at most 178956970 pixels can take"),
        "{e}"
    );
    assert!(e.contains("RUNNER_MAX_IMAGE_PIXELS"), "the error names the option that raises the limit: {e}");
    sb.write("s.rhai", &format!("{}let dls = image_loaders(t, #{{ size: 32, bs: 2 }});\ndls.show_batch(\"b.png\");\n", files("bombs")));
    let e = fails_at(&sb.run(&["s.rhai"]), "s.rhai:4");
    assert!(e.contains("65500x65500") && e.contains("bombs/c"), "{e}");
    let predict = "let dls = image_loaders(t, #{ size: 32, bs: 2 });\n\
        let body = convnet(#{ input: [32, 32], channels: [4], kernels: [3], pool: [true], in_channels: 3 });\n\
        let learn = learner(dls, classifier_model(body, \"cosine\", 2), #{});\n\
        print(learn.predict(\"imgs/c0/bomb.jpg\"));\n";
    sb.write("p.rhai", &format!("{}{predict}", files("imgs")));
    let e = fails_at(&sb.run(&["p.rhai"]), "p.rhai:6");
    assert!(e.contains("bomb.jpg") && e.contains("65500x65500"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(120), "refused at once, not after decoding: {:?}", t.elapsed());

    // The limit is an option: lowered, a 500x375 photo is refused; a bad value is named.
    let r: Ran = sb.command(&["v.rhai"]).env("RUNNER_MAX_IMAGE_PIXELS", "1000").output().unwrap().into();
    r.ok();
    assert!(r.stdout.matches(".jpg").count() == 8, "every file over 1000 pixels is listed: {}", r.stdout);
    let r: Ran = sb.command(&["c.rhai"]).env("RUNNER_MAX_IMAGE_PIXELS", "lots").output().unwrap().into();
    assert!(r.code == 1 && r.stderr.contains("RUNNER_MAX_IMAGE_PIXELS=`lots` is not a whole number"), "{}", r.stderr);
}

// 7. A link loop and a dangling link inside a data set: the run goes on (the fingerprint
// walks the loop once and leaves the dangling link out, naming it), as get_image_files does.
#[test]
fn link_loops_and_dangling_links_in_a_data_set_do_not_fail_the_run() {
    let sb = Sandbox::new();
    let data = sb.path().join("data");
    let faces = data.join("orl_faces/s1");
    std::fs::create_dir_all(&faces).unwrap();
    for i in 1..=3 {
        std::fs::copy(common::datasets().join(format!("orl_faces/s1/{i}.pgm")), faces.join(format!("{i}.pgm"))).unwrap();
    }
    std::os::unix::fs::symlink(data.join("orl_faces"), faces.join("loop")).unwrap();
    std::os::unix::fs::symlink(data.join("gone"), faces.join("dangling")).unwrap();
    sb.write("d.rhai", "let files = get_image_files(untar_data(\"orl_faces\"));\nprint(`n ${files.len()}`);\n");
    let r: Ran = sb.command(&["d.rhai"]).env("RUNNER_DATA", &data).env("RUNNER_CACHE", sb.path().join("cache")).output().unwrap().into();
    r.ok();
    assert!(r.stdout.contains("n 3"), "{}", r.stdout);
    assert!(r.stderr.contains("left out") && r.stderr.contains("dangling"), "the bad link is named: {}", r.stderr);
    let rec = sb.record(&sb.last_run());
    assert_eq!(rec["data"][0]["files"].as_integer(), Some(3), "{rec:?}");
}

/// An interrupted run of a script that loops until stopped: (sandbox, its folder).
fn interrupted_loop() -> (Sandbox, PathBuf) {
    let sb = Sandbox::new();
    sb.write("loop.rhai", "let i = 0;\nloop { i += 1; }\n");
    let child = sb.command(&["loop.rhai", "--max-operations", "0"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let run = wait_for_running(&sb);
    assert!(Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success());
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(143));
    assert_eq!(sb.record(&run)["status"].as_str(), Some("interrupted"));
    (sb, run)
}

// 10. Two resumes of one run: the second is refused ("already running as pid N on HOST"),
// whatever the record says when it looks, and touches nothing.
#[test]
fn two_resumes_of_one_run_never_run_at_once() {
    let (sb, run) = interrupted_loop();
    let host = runner::track::runs::host_name();
    // The folder's lock held by another process (this one): the record says `interrupted`.
    let held = runner::track::lock::lock(&run, "test").unwrap();
    let before = std::fs::read_to_string(run.join("run.toml")).unwrap();
    let r = sb.run(&["resume", "last"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("is already running as pid {} on {host}", std::process::id())), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(run.join("run.toml")).unwrap(), before, "the refused resume left the record alone");
    drop(held);

    // A real second process: while one resume runs, another that read the record at the
    // wrong moment (here: a record put back to `interrupted`) is refused by the lock.
    let first = sb.command(&["resume", "last"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t = Instant::now();
    while sb.record(&run).get("pid").and_then(|p| p.as_integer()) != Some(first.id() as i64) {
        assert!(t.elapsed() < Duration::from_secs(60), "the first resume never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut rec = sb.record(&run);
    rec.insert("status".into(), "interrupted".into());
    std::fs::write(run.join("run.toml"), toml::to_string(&rec).unwrap()).unwrap();
    let r = sb.run(&["resume", "last"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("is already running as pid {} on {host}", first.id())), "{}", r.stderr);
    assert!(Command::new("kill").arg("-TERM").arg(first.id().to_string()).status().unwrap().success());
    assert_eq!(first.wait_with_output().unwrap().status.code(), Some(143));
}

// 10. The same for two `sweep resubmit`s of one sweep.
#[test]
fn two_sweep_resubmits_never_run_at_once() {
    let sb = Sandbox::new();
    sb.write("f.rhai", "let n = param(\"n\", 1);\nif n == 2 { throw \"two fails\"; }\n");
    let r = sb.run(&["sweep", "f.rhai", "--grid", "n=1,2"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let sweeps = sb.path().join("runs/sweeps");
    let dir = std::fs::read_dir(&sweeps).unwrap().flatten().next().unwrap().path();
    let id = dir.file_name().unwrap().to_str().unwrap().to_string();
    let held = runner::track::lock::lock(&dir, "test").unwrap();
    let runs = sb.runs().len();
    let r = sb.run(&["sweep", "resubmit", &id]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("`runner sweep resubmit` of {id} is already running as pid {}", std::process::id())), "{}", r.stderr);
    assert_eq!(sb.runs().len(), runs, "nothing ran");
    drop(held);
    let r = sb.run(&["sweep", "resubmit", &id]);
    assert!(r.code == 1 && r.stdout.contains("running point 1 again"), "{}\n{}", r.stdout, r.stderr);
}

// Smaller ones: a learning rate that is not a finite number is refused at the call that
// gets it, one too small for a float at the --set, before any batch runs.
#[test]
fn learning_rates_that_are_not_numbers_are_refused_at_the_call() {
    let sb = Sandbox::new();
    sb.write(
        "lr.rhai",
        "let files = get_image_files(untar_data(\"orl_faces\")).extract(0, 40);\n\
         let dls = image_loaders(image_table(files, parent_label(), random_splitter(files, #{ valid_pct: 0.25 })), #{ size: 16, channels: 1, bs: 8 });\n\
         let learn = learner(dls, classifier_model(convnet(#{ input: [16, 16], channels: [4], kernels: [3], pool: [true] }), \"cosine\", dls.vocab.len()), #{});\n\
         learn.fit_one_cycle(1, param(\"lr\", 1e-3));\n",
    );
    for (lr, shown) in [("nan", "NaN"), ("-inf", "-inf")] {
        let e = fails_at(&sb.run(&["lr.rhai", "--set", &format!("lr={lr}")]), "lr.rhai:4");
        assert!(e.contains(&format!("learning rate {shown} is not a finite number")), "{e}");
        let metrics = std::fs::read_to_string(sb.last_run().join("metrics.jsonl")).unwrap_or_default();
        assert!(!metrics.contains("\"kind\":\"batch\""), "no batch ran: {metrics}");
    }
    let r = sb.run(&["lr.rhai", "--set", "lr=1e-400"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("param `lr`: --set value `1e-400` is too small for a 64-bit float: it would be 0.0"), "{}", r.stderr);
}

// Smaller ones: a refused 10 MB line is not echoed whole; the excerpt is cut around the error.
#[test]
fn a_huge_source_line_is_not_echoed_whole() {
    let sb = Sandbox::new();
    sb.write("big.rhai", &format!("let x = 1;\nlet s = \"{}\" + * 2;\n", "a".repeat(10 << 20)));
    let r = sb.run(&["big.rhai"]);
    assert_eq!(r.code, 1, "{}", &r.stderr[..r.stderr.len().min(2000)]);
    assert!(
        r.stderr.contains("big.rhai:2:") && r.stderr.contains("Unexpected") && r.stderr.contains("…"),
        "{}",
        &r.stderr[..r.stderr.len().min(2000)]
    );
    assert!(r.stderr.len() < 4000, "stderr is {} bytes", r.stderr.len());
}
