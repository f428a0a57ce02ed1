//! Drives the real `runner` binary in a temp dir, as a user would.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A URL nothing answers on: a download from it fails at once.
pub const CLOSED_PORT: &str = "http://127.0.0.1:9/";

/// The README's callbacks model (ORL faces, a small convnet, cosine classifier), small:
/// 32 px, 320 training faces, 20 steps of 16 an epoch.
/// A data-parallel fit; float32, as its equivalence with one process (to 1e-5 a step) holds
/// in float32 arithmetic, not in bf16's.
pub const DP_SCRIPT: &str = r#"
let files  = get_image_files(untar_data("orl_faces"));
let splits = random_splitter(files, #{ valid_pct: 0.2, seed: seed });
let dls    = image_loaders(image_table(files, parent_label(), splits),
                           #{ size: 32, method: "squish", channels: 1, normalize: "stats", bs: param("bs", 16), flip: true });
let body   = convnet(#{ input: [32, 32], channels: [16, 32], kernels: [3, 3], pool: [true, true], bn: param("bn", true),
                        embed: 64, sigmoid: false });
let learn  = learner(dls, classifier_model(body, "cosine", dls.vocab.len()),
                     #{ metrics: ["accuracy"], splitter: "none", sync_bn: param("sync_bn", true), precision: "fp32" });
learn.fit_one_cycle(param("epochs", 2), 3e-3);
"#;

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "runner failed:\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl From<Output> for Ran {
    fn from(o: Output) -> Ran {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/datasets`, the real data the tests read by path.
pub fn datasets() -> PathBuf {
    project_root().join("../shared/datasets").canonicalize().expect("../shared/datasets is missing")
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(Path::new(env!("CARGO_BIN_EXE_runner")), args)
    }

    /// `program` (a launcher such as torchrun or srun) with the runner's test environment.
    pub fn command_of(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(self.path())
            .env("RUNNER_RUNS_DIR", self.path().join("runs"))
            .env("RUNNER_DATA", datasets())
            // Byte-identity assertions hold on the CPU; a GPU machine would otherwise pick CUDA.
            .env("RUNNER_DEVICE", "cpu")
            // Extracted archives go to one cache per build, shared by the tests (extraction is atomic).
            .env("RUNNER_CACHE", PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runner-cache"))
            // Pretrained weights are never fetched from the internet: the default ones are
            // looked for in empty places and "downloaded" from a closed port, so that bodies
            // start from random init as before (tests/weights.rs serves real files).
            .env("TORCH_HOME", self.path().join("torch-home"))
            .env("RUNNER_WEIGHTS_URL_BASE", CLOSED_PORT)
            .env_remove("RUNNER_WEIGHTS")
            .env_remove("RUNNER_REQUIRE_WEIGHTS")
            .env_remove("RUST_BACKTRACE")
            // Runs are mirrored only where a test asks for it.
            .env_remove("MLFLOW_TRACKING_URI");
        c
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        self.command(args).output().unwrap().into()
    }

    /// Run folders (those with a record; not `runs/sweeps`), oldest first.
    pub fn runs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path().join("runs"))
            .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.join("run.toml").is_file()).collect())
            .unwrap_or_default();
        v.sort_by_key(|p| {
            let t = std::fs::read_to_string(p.join("run.toml")).unwrap_or_default();
            let started = t.lines().find(|l| l.starts_with("started")).unwrap_or("").to_string();
            (started, p.clone())
        });
        v
    }

    pub fn last_run(&self) -> PathBuf {
        self.runs().pop().expect("no run folder")
    }

    pub fn record(&self, run: &Path) -> toml::Table {
        toml::from_str(&std::fs::read_to_string(run.join("run.toml")).unwrap()).unwrap()
    }
}

/// The README's fenced blocks in `lang`, each as its text.
pub fn readme_blocks(readme: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in readme.lines() {
        match &mut cur {
            None if line.trim() == format!("```{lang}") => cur = Some(String::new()),
            Some(b) if line.trim() == "```" => {
                out.push(std::mem::take(b));
                cur = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Asserts two files are equal byte for byte, naming the first line where they differ.
pub fn assert_same_file(a: &Path, b: &Path, what: &str) {
    let (x, y) = (std::fs::read_to_string(a).unwrap(), std::fs::read_to_string(b).unwrap());
    if x == y {
        return;
    }
    let (xl, yl): (Vec<&str>, Vec<&str>) = (x.lines().collect(), y.lines().collect());
    let i = (0..xl.len().max(yl.len())).find(|&i| xl.get(i) != yl.get(i)).unwrap_or(0);
    panic!(
        "{what}: {} ({} lines) and {} ({} lines) differ first at line {}:\n  {}\n  {}",
        a.display(),
        xl.len(),
        b.display(),
        yl.len(),
        i + 1,
        xl.get(i).unwrap_or(&"<end>"),
        yl.get(i).unwrap_or(&"<end>")
    );
}

/// Chromium (Debian's package, installed by `scripts/chromium` when missing).
pub fn chromium() -> String {
    let out = Command::new(project_root().join("scripts/chromium")).output().unwrap();
    assert!(out.status.success(), "scripts/chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The page's DOM after its scripts ran, as headless Chromium sees it (for a report, nothing
/// reachable but the file: a page that needed the network would lack its charts), and a
/// screenshot of it where asked.
pub fn rendered_dom(url: &str, screenshot: Option<&Path>) -> String {
    let chrome = chromium();
    let base = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--virtual-time-budget=20000"];
    let out = Command::new(&chrome).args(base).arg("--window-size=1400,1000").arg("--dump-dom").arg(url).output().unwrap();
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    if let Some(shot) = screenshot {
        let size = "--window-size=1400,2600";
        let st = Command::new(&chrome).args(base).arg(size).arg(format!("--screenshot={}", shot.display())).arg(url).output().unwrap();
        assert!(st.status.success() && shot.is_file(), "screenshot failed: {}", String::from_utf8_lossy(&st.stderr));
    }
    String::from_utf8(out.stdout).unwrap()
}

/// The text of a DOM, tags dropped and spaces collapsed.
pub fn dom_text(dom: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Waits (at most `secs`) until a run's `metrics.jsonl` holds `row` and a training batch
/// after it: the run is part-way through the next epoch. An event, not a sleep, so that a
/// signal sent then lands mid-epoch on a fast machine and a slow one alike.
pub fn wait_for_batch_after(metrics: &Path, row: &str, secs: u64) {
    let t = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(metrics).unwrap_or_default();
        if text.find(row).is_some_and(|at| text[at..].contains("\"kind\":\"batch\"")) {
            return;
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(secs), "{} never showed {row} and a batch after it", metrics.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Waits (at most `secs`) until the file at `path` holds `needle`.
pub fn wait_for_text(path: &Path, needle: &str, secs: u64) {
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(path).unwrap_or_default().contains(needle) {
        assert!(t.elapsed() < std::time::Duration::from_secs(secs), "{} never showed {needle}", path.display());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
