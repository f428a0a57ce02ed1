//! fastai's one-call learner and inference without the training data: `vision_learner`
//! builds the model the loaders call for, `export_learner` writes one file that
//! `load_learner` and `runner predict` use with no dataset present (predictions equal the
//! trained learner's), and a file that is damaged, of another format version or no
//! learner at all is refused in one line naming it.
mod common;
use common::{datasets, Sandbox};
use runner::data::table::{Column, Table};
use runner::data::{blocks, dataloaders::Normalize, files, labels::Labeller, pairs, splitters, LoaderConfig};
use runner::learn::learner::RunOut;
use runner::learn::vision::{vision_learner, VisionOptions};
use runner::learn::LearnerOptions;
use runner::model::head::HeadSpec;
use runner::model::{BodySpec, KindSpec, Splitter};
use std::path::{Path, PathBuf};
use std::rc::Rc;

fn pet_files() -> Vec<PathBuf> {
    files::get_image_files(&[datasets().join("oxford-iiit-pet-sample/images")]).unwrap().files
}

fn options(pretrained: bool) -> VisionOptions {
    VisionOptions { head: HeadSpec::default(), pretrained, learner: LearnerOptions { splitter: Splitter::Arch, ..LearnerOptions::default() } }
}

/// The breeds of 74 photos (37 breeds, 2 each), 12 of them for validation.
fn breeds(normalize: Normalize) -> runner::data::DataLoaders {
    let files: Vec<PathBuf> = pet_files().into_iter().step_by(5).collect();
    let labels: Vec<String> = files.iter().map(|f| Labeller::regex(r"^(.*)_\d+\.jpg$").unwrap().label(f).unwrap()).collect();
    let split = splitters::random_splitter(files.len(), 0.2, 42).unwrap();
    let held = split.valid();
    let valid: Vec<bool> = (0..files.len()).map(|i| held.contains(&i)).collect();
    let table = Table::new(vec![
        ("file".into(), Column::Str(files.iter().map(|f| f.display().to_string()).collect())),
        ("label".into(), Column::Str(labels)),
        ("is_valid".into(), Column::Bool(valid)),
    ])
    .unwrap();
    let cfg = LoaderConfig { size: 32, bs: 8, num_workers: 2, normalize, ..LoaderConfig::default() };
    blocks::image_loaders(&table, &blocks::TableColumns::default(), &cfg).unwrap()
}

#[test]
fn vision_learner_builds_the_model_the_loaders_call_for() {
    let resnet = BodySpec::arch("resnet18", -2, None).unwrap();
    let dls = Rc::new(breeds(Normalize::Imagenet));
    let n_classes = dls.vocab.len() as i64;
    assert!(n_classes > 30, "{n_classes}");
    let learn = vision_learner(dls.clone(), &resnet, options(true), RunOut::detached("."), 42).unwrap();
    let spec = learn.model.spec().unwrap();
    let KindSpec::Classifier { head } = &spec.model else { panic!("{spec:?}") };
    assert_eq!((head.nf, head.n_out, head.lin_ftrs.clone()), (512, n_classes, vec![512]));
    assert_eq!(learn.n_groups(), 3, "resnet18's split: stem..layer2 | layer3..layer4 | head");
    let x = dls.encode_files(&pet_files()[..2]).unwrap();
    assert_eq!(learn.model.forward(&[x], false).unwrap().size(), [2, n_classes]);
    let convnext = BodySpec::arch("convnext_tiny", -2, None).unwrap();
    let learn = vision_learner(dls.clone(), &convnext, options(false), RunOut::detached("."), 42).unwrap();
    assert_eq!(learn.n_groups(), 2, "convnext's split: body | head");

    // Other statistics than the arch's are refused while pretrained weights are asked for.
    let stats = Rc::new(breeds(Normalize::Stats));
    let e = vision_learner(stats.clone(), &resnet, options(true), RunOut::detached("."), 42).err().unwrap().to_string();
    assert!(e.contains("resnet18's pretrained weights expect images normalised with imagenet statistics") && e.contains("pretrained: false"), "{e}");
    assert!(vision_learner(stats, &resnet, options(false), RunOut::detached("."), 42).is_ok());

    // Pair loaders: fastai's Siamese model, the two feature maps concatenated into the head.
    let files = pet_files();
    let labels: Vec<String> = files.iter().map(|f| Labeller::regex(r"^(.*)_\d+\.jpg$").unwrap().label(f).unwrap()).collect();
    let split = splitters::random_splitter(files.len(), 0.2, 42).unwrap();
    let table = pairs::siamese_pairs(&files, &labels, &split, 0.5, 42).unwrap().0;
    let cfg = LoaderConfig { size: 32, bs: 8, num_workers: 2, ..LoaderConfig::default() };
    let pair_dls = Rc::new(blocks::pair_loaders(&table, &cfg).unwrap());
    let learn = vision_learner(pair_dls, &resnet, options(true), RunOut::detached("."), 42).unwrap();
    let spec = learn.model.spec().unwrap();
    assert_eq!(learn.model.kind(), "SiameseModel");
    let KindSpec::Siamese { head: runner::model::PairHeadSpec::Concat(head) } = &spec.model else { panic!("{spec:?}") };
    assert_eq!((head.nf, head.n_out, learn.n_groups()), (1024, 2, 3));
}

/// Cats or dogs at 32 px: train, predict, export, load in the same script and predict again.
const TRAIN: &str = r#"
let files = get_image_files(untar_data("pets") + "/images");
let is_cat = |file| { let name = file.split("/").pop(); if name[0] == name[0].to_upper() { "cat" } else { "dog" } };
let dls = image_loaders(image_table(files, is_cat, random_splitter(files, #{ valid_pct: 0.2, seed: seed })), #{ size: 32, bs: 32 });
let learn = vision_learner(dls, "resnet18", #{ metrics: ["accuracy"], pretrained: false });
learn.fit_one_cycle(1, 1e-3);
print(learn.show_results("results.png"));
print(learn.export_learner("cats.learner"));
let again = load_learner(learn.export_learner("again.learner"));
for f in [files[0], files[200], files[300]] {
    let a = learn.predict(f);
    let b = again.predict(f);
    if a.probs.to_array() != b.probs.to_array() || a.label != b.label { throw `${f}: ${a.probs.to_array()} != ${b.probs.to_array()}`; }
}
for p in learn.predict_batch([files[0], files[200], files[300]]) { print(`batch ${p.label} ${p.prob}`); }
"#;

/// What a script of its own prints from the exported file, the training data absent.
const LOAD: &str = r#"
let learn = load_learner(param("learner", "x"));
for f in ["a.jpg", "b.jpg", "c.jpg"] { let p = learn.predict(f); print(`one ${f} ${p.label} ${p.probs.to_array()}`); }
for p in learn.predict_batch(["a.jpg", "b.jpg", "c.jpg"]) { print(`batch ${p.label} ${p.prob}`); }
"#;

fn lines_with<'a>(s: &'a str, prefix: &str) -> Vec<&'a str> {
    s.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// A sandbox with no data set at all (RUNNER_DATA points at an empty folder), holding three
/// photos as a.jpg, b.jpg, c.jpg.
fn without_data() -> Sandbox {
    let sb = Sandbox::new();
    let files = pet_files();
    for (name, i) in [("a.jpg", 0), ("b.jpg", 200), ("c.jpg", 300)] {
        std::fs::copy(&files[i], sb.path().join(name)).unwrap();
    }
    std::fs::create_dir_all(sb.path().join("no-data")).unwrap();
    sb
}

fn run_without_data(sb: &Sandbox, args: &[&str]) -> common::Ran {
    sb.command(args).env("RUNNER_DATA", sb.path().join("no-data")).env("RUNNER_OFFLINE", "1").output().unwrap().into()
}

#[test]
fn export_then_load_learner_and_runner_predict_give_the_trained_predictions() {
    let sb = Sandbox::new();
    sb.write("train.rhai", TRAIN);
    let r = sb.run(&["train.rhai"]);
    r.ok();
    let run = sb.last_run();
    let file = run.join("cats.learner");
    assert!(r.stdout.contains(&file.display().to_string()), "{}", r.stdout);
    assert_eq!(&std::fs::read(run.join("results.png")).unwrap()[..4], b"\x89PNG");
    // Weights only: about the size of the weights file, a third of weights plus optimizer state.
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    let (learner, weights, opt) = (size(&file), size(&run.join("models/last.safetensors")), size(&run.join("models/last.opt.safetensors")));
    assert!(learner.abs_diff(weights) < 16_384, "learner {learner} bytes, weights {weights}");
    assert!(opt > weights && learner * 2 < weights + opt, "optimizer state {opt} bytes is not in the learner file ({learner})");
    let trained = lines_with(&r.stdout, "batch ");
    assert_eq!(trained.len(), 3, "{}", r.stdout);

    // A script of its own, and the command line, with no data set present.
    let other = without_data();
    let learner_file = other.path().join("cats.learner");
    std::fs::copy(&file, &learner_file).unwrap();
    other.write("load.rhai", LOAD);
    let r = run_without_data(&other, &["load.rhai", "--set", &format!("learner={}", learner_file.display())]);
    r.ok();
    assert_eq!(lines_with(&r.stdout, "batch "), trained, "predict_batch after load_learner");
    assert_eq!(lines_with(&r.stdout, "one ").len(), 3);

    let r = run_without_data(&other, &["predict", "cats.learner", "a.jpg", "b.jpg", "c.jpg"]);
    r.ok();
    let table: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(table.len(), 4, "{}", r.stdout);
    assert!(table[0].starts_with("file") && table[0].contains("prediction") && table[0].ends_with("probability"), "{}", r.stdout);
    for (row, want) in table[1..].iter().zip(&trained) {
        let w: Vec<&str> = want.split_whitespace().collect();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[1], w[1], "{row} vs {want}");
        assert_eq!(cells[2], format!("{:.4}", w[2].parse::<f64>().unwrap()), "{row} vs {want}");
    }
    let r = run_without_data(&other, &["predict", "cats.learner", "a.jpg", "b.jpg", "c.jpg", "--json"]);
    r.ok();
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for (row, want) in rows.iter().zip(&trained) {
        let w: Vec<&str> = want.split_whitespace().collect();
        assert_eq!(row["prediction"], w[1]);
        let p = row["probability"].as_f64().unwrap();
        assert!((p - w[2].parse::<f64>().unwrap()).abs() < 1e-12, "{row} vs {want}");
        let probs = row["probs"].as_object().unwrap();
        assert_eq!(probs.keys().collect::<Vec<_>>(), ["cat", "dog"]);
        assert!((probs["cat"].as_f64().unwrap() + probs["dog"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    }
    assert_eq!(rows[0]["file"], "a.jpg");
    assert!(other.runs().len() == 1, "runner predict leaves no run");

    refusals(&other, &learner_file, &run.join("models/last.safetensors"));
}

/// Every way a file can be wrong: one line naming it, exit code 1, from the command line
/// and from a script.
fn refusals(sb: &Sandbox, good: &Path, weights: &Path) {
    let bytes = std::fs::read(good).unwrap();
    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 1000] ^= 0x40;
    let header = String::from_utf8_lossy(&bytes[..4096]).into_owned();
    assert!(header.contains(r#"\"format_version\":1,"#), "{header}");
    let other_version = {
        let key = br#"\"format_version\":1"#;
        let i = bytes.windows(key.len()).position(|w| w == key).unwrap();
        let mut b = bytes.clone();
        b[i + key.len() - 1] = b'7';
        b
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated.learner", bytes[..bytes.len() / 2].to_vec(), "truncated: its header describes"),
        ("header_cut.learner", bytes[..100].to_vec(), "truncated: its header alone should have"),
        ("flipped.learner", flipped, "damaged: the sha256 of its learner and tensor data is"),
        ("v7.learner", other_version, "a learner file of format version 7 (written by runner 0.1.0); this runner (0.1.0) reads format version 1"),
        ("text.learner", b"hello, this is not a model\n".to_vec(), "not a runner learner file"),
        ("weights.safetensors", std::fs::read(weights).unwrap(), "not a runner learner file: a safetensors file without a learner in its metadata"),
        ("empty.learner", vec![], "not a runner learner file: it has only 0 bytes"),
    ];
    for (name, content, want) in cases {
        std::fs::write(sb.path().join(name), content).unwrap();
        let r = run_without_data(sb, &["predict", name, "a.jpg"]);
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        let line = r.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{name}: one line: {line}");
        assert!(line.starts_with(&format!("runner: {name}: ")) && line.contains(want), "{name}: expected `{want}` in {line}");
    }
    sb.write("bad.rhai", "let x = 1;\nlet l = load_learner(\"flipped.learner\");\n");
    let r = run_without_data(sb, &["bad.rhai"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad.rhai:2:") && r.stderr.contains("flipped.learner: damaged"), "{}", r.stderr);
    let r = run_without_data(sb, &["predict", "missing.learner", "a.jpg"]);
    assert!(r.code == 1 && r.stderr.contains("missing.learner"), "{}", r.stderr);
    let r = run_without_data(sb, &["predict", good.to_str().unwrap(), "nope.jpg"]);
    assert!(r.code == 1 && r.stderr.contains("nope.jpg"), "{}", r.stderr);
}

#[test]
fn export_is_a_rhai_keyword_and_the_error_says_what_to_call() {
    let sb = Sandbox::new();
    sb.write("e.rhai", "let learn = 1;\nlearn.export(\"pets.pkl\");\n");
    let r = sb.run(&["e.rhai"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("e.rhai:2:") && r.stderr.contains("learn.export_learner(path)"), "{}", r.stderr);
    // Loaders that normalise otherwise are refused before any weights are looked for.
    sb.write(
        "n.rhai",
        r#"let files = get_image_files(untar_data("pets") + "/images");
let dls = image_loaders(image_table(files, regex_label(`^(.*)_\d+\.jpg$`), random_splitter(files, #{ seed: 1 })), #{ size: 32, normalize: "stats" });
let learn = vision_learner(dls, "resnet18");
"#,
    );
    let r = sb.run(&["n.rhai"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("n.rhai:3:") && r.stderr.contains("normalize: \"imagenet\""), "{}", r.stderr);
    assert!(!r.stderr.contains("RANDOM weights"), "refused before the weights: {}", r.stderr);
}

/// The shipped experiments at smoke settings: train and export, then predict from the file
/// in a script of its own.
#[test]
fn the_pets_vision_learner_experiment_exports_what_pets_predict_loads() {
    let sb = Sandbox::new();
    let experiment = |name: &str| common::project_root().join("experiments").join(name).display().to_string();
    let smoke = ["--set", "size=32", "--set", "arch=resnet18", "--set", "pretrained=false"];
    let r = sb.run(&[&[experiment("pets_vision_learner.rhai").as_str()][..], &smoke[..]].concat());
    r.ok();
    assert!(r.stdout.lines().last().unwrap().starts_with("error_rate: 0."), "{}", r.stdout);
    let run = sb.last_run();
    for f in ["results.png", "pets.learner", "loss_fit2.png"] {
        assert!(run.join(f).is_file(), "{f} missing in {}", run.display());
    }
    let first = r.stdout.lines().find(|l| l.contains("Abyssinian_101.jpg: ")).unwrap().to_string();
    let learner = format!("learner={}", run.join("pets.learner").display());
    let r = sb.run(&[experiment("pets_predict.rhai").as_str(), "--set", &learner]);
    r.ok();
    assert!(r.stdout.lines().any(|l| l == first), "the same prediction after load_learner: {first}\n{}", r.stdout);
    assert!(r.stdout.lines().last().unwrap().starts_with("cats: ") && r.stdout.trim_end().ends_with(" of 4"), "{}", r.stdout);
}

/// A multi-label learner exported with its threshold: `runner predict` lists the labels the
/// script's `predict` gave, with their probabilities, in the table and in JSON.
#[test]
fn a_multi_label_learner_predicts_its_label_sets_from_the_file() {
    let sb = Sandbox::new();
    sb.write(
        "ml.rhai",
        r#"let files  = get_image_files(untar_data("pets") + "/images");
let breeds = get_labels(files, regex_label(`^(.*)_\d+\.jpg$`));
let labels = #{};
for i in 0..files.len() { let b = breeds[i]; labels[files[i]] = (if b.to_lower() != b { "cat " } else { "dog " }) + b.to_lower(); }
let dls = image_loaders(image_table(files, |f| labels[f], random_splitter(files, #{ seed: seed })), #{ label_delim: " ", size: 32, bs: 32 });
let learn = vision_learner(dls, "resnet18", #{ pretrained: false, metrics: ["accuracy_multi"], threshold: 0.3 });
learn.fit_one_cycle(1, 1e-2);
let p = learn.predict(files[0]);
print(`labels ${p.labels.reduce(|s, l| if s == "" { l } else { s + " " + l }, "")}`);
learn.export_learner("ml.learner");
"#,
    );
    let r = sb.run(&["ml.rhai"]);
    r.ok();
    let want = lines_with(&r.stdout, "labels ")[0].trim_start_matches("labels ").to_string();
    assert!(!want.is_empty(), "the learner predicts some label at threshold 0.3: {}", r.stdout);
    let file = sb.last_run().join("ml.learner").display().to_string();
    let photo = pet_files()[0].display().to_string();
    let t = sb.run(&["predict", &file, &photo]);
    t.ok();
    let rows: Vec<&str> = t.stdout.lines().collect();
    assert_eq!(rows[0].split_whitespace().collect::<Vec<_>>(), ["file", "labels", "probabilities"], "{}", t.stdout);
    // The table shows the labels (a long list cut with an ellipsis; the JSON has them all).
    let cells: Vec<&str> = rows[1].split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    let shown = cells[1].trim_end_matches('…');
    assert!(cells[1] == want || (cells[1].ends_with('…') && want.starts_with(shown)), "{} vs {want}", t.stdout);
    let j: serde_json::Value = serde_json::from_str(&sb.run(&["predict", &file, &photo, "--json"]).stdout).unwrap();
    let got: Vec<&str> = j[0]["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(got.join(" "), want);
    let probs = j[0]["probabilities"].as_array().unwrap();
    assert!(probs.iter().all(|p| p.as_f64().unwrap() > 0.3), "each listed label is over the threshold: {j}");
    assert_eq!(j[0]["probs"].as_object().unwrap().len(), 39, "every label's probability: {j}");
}
