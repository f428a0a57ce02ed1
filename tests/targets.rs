//! Issue 27's targets through the real binary: regression (float label columns, several
//! outputs, rmse/mae/r2, predict returning numbers), multi-label (label_delim on a CSV,
//! bce_multi, accuracy_multi/f1_multi, predict returning labels, top losses), the named
//! losses on classes, and the refusals that name the fix.
mod common;
use common::{Ran, Sandbox};

fn experiment(name: &str) -> String {
    common::project_root().join("experiments").join(name).display().to_string()
}

/// The number after `key` on the line that starts with it.
fn value(stdout: &str, key: &str) -> f64 {
    let line = stdout.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no `{key}` in\n{stdout}"));
    line.split_whitespace().next().unwrap().parse().unwrap_or_else(|_| panic!("`{key}{line}` is not a number"))
}

/// `let pets = "<the pets sample's images>";` then `body`, run as `t.rhai`.
fn run_pets(sb: &Sandbox, body: &str) -> Ran {
    let images = common::datasets().join("oxford-iiit-pet-sample/images");
    sb.write("t.rhai", &format!("let pets = \"{}\";\n{body}", images.display()));
    sb.run(&["t.rhai"])
}

/// Runs `body` (the failing call on its line 2 of the script), returns stderr.
fn fails(sb: &Sandbox, body: &str) -> String {
    let r = run_pets(sb, body);
    assert_eq!(r.code, 1, "expected a failure:\nstdout {}\nstderr {}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r.stderr
}

#[test]
fn pets_regression_learns_the_aspect_ratio_and_predicts_numbers() {
    let sb = Sandbox::new();
    let r = sb.run(&[&experiment("pets_regression.rhai")]);
    r.ok();
    let (baseline, rmse, r2) = (value(&r.stdout, "baseline (training mean 1.170) rmse: "), value(&r.stdout, "rmse: "), value(&r.stdout, "r2: "));
    println!("regression: baseline rmse {baseline}, rmse {rmse}, r2 {r2}");
    assert!(r.stdout.lines().last().unwrap().starts_with("rmse: "), "{}", r.stdout);
    assert!(rmse.is_finite() && rmse < baseline, "rmse {rmse} should beat the training mean's {baseline}");
    assert!(r2 > 0.0 && r2 <= 1.0, "r2 {r2}");
    assert!(r.stdout.contains("1 number(s) to regress") && r.stdout.contains("rmse        mae         r2"), "{}", r.stdout);
    let predicted = r.stdout.lines().find_map(|l| l.split(": predicted ").nth(1)).expect("a predict line");
    let p: f64 = predicted.split(',').next().unwrap().parse().unwrap();
    assert!((0.4..=2.0).contains(&p), "predict returns a number within y_range: {p}");
    let m = std::fs::read_to_string(sb.last_run().join("metrics.jsonl")).unwrap();
    assert!(m.contains("\"rmse\":") && m.contains("\"r2\":"), "{m}");
    let record = std::fs::read_to_string(sb.last_run().join("run.toml")).unwrap();
    for goal in ["mae = \"min\"", "r2 = \"max\"", "rmse = \"min\""] {
        assert!(record.contains(goal), "{goal} in the record's goals: {record}");
    }
    assert!(record.contains("log_mse"), "the closure loss is the run's loss: {record}");
    assert!(sb.last_run().join("results.png").is_file());

    // The exported learner answers on the command line with the number predict gave.
    let learner = sb.last_run().join("aspect.learner");
    let photo = common::datasets().join("oxford-iiit-pet-sample/images/Abyssinian_101.jpg");
    let (learner, photo) = (learner.display().to_string(), photo.display().to_string());
    let t = sb.run(&["predict", &learner, &photo]);
    t.ok();
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["file", "label"], "{}", t.stdout);
    let cell: f64 = lines[1].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((cell - p).abs() < 6e-4, "runner predict says {cell}, the script's predict {p}");
    let j: serde_json::Value = serde_json::from_str(&sb.run(&["predict", &learner, &photo, "--json"]).stdout).unwrap();
    assert!((j[0]["values"]["label"].as_f64().unwrap() - cell).abs() < 6e-5, "{j}");
}

#[test]
fn pets_multilabel_reads_a_delimited_csv_and_predicts_label_sets() {
    let sb = Sandbox::new();
    let r = sb.run(&[&experiment("pets_multilabel.rhai"), "--set", "epochs=2"]);
    r.ok();
    assert!(r.stdout.contains("cat abyssinian") && r.stdout.contains("39 labels (multi-hot)"), "{}", r.stdout);
    let (acc, f1) = (value(&r.stdout, "accuracy_multi: "), value(&r.stdout, "f1_multi: "));
    println!("multi-label: accuracy_multi {acc}, f1_multi {f1}");
    assert!(r.stdout.lines().last().unwrap().starts_with("accuracy_multi: "), "{}", r.stdout);
    assert!(acc > 0.0 && acc <= 1.0 && (0.0..=1.0).contains(&f1), "accuracy_multi {acc}, f1_multi {f1}");
    assert!(r.stdout.contains("Abyssinian_101.jpg: predicted ["), "{}", r.stdout);
    assert_eq!(r.stdout.matches("top loss ").count(), 3, "{}", r.stdout);
    assert!(sb.last_run().join("labels.csv").is_file() && sb.last_run().join("batch.png").is_file());
}

/// Two numbers per image from two float columns of a CSV: two outputs, named after the
/// columns; `predict` returns both.
#[test]
fn several_float_columns_regress_one_output_each() {
    let sb = Sandbox::new();
    let mut csv = String::from("file,w,h,is_valid\n");
    let images = common::datasets().join("oxford-iiit-pet-sample/images");
    let mut files: Vec<_> = std::fs::read_dir(&images).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    for (i, f) in files.iter().take(40).enumerate() {
        csv.push_str(&format!("{},{}.5,{}.25,{}\n", f.display(), i % 3, i % 2, i % 5 == 0));
    }
    sb.write("wh.csv", &csv);
    let r = run_pets(
        &sb,
        r#"let dls = image_loaders(read_csv("wh.csv"), #{ y: ["w", "h"], size: 32, bs: 16 });
print(`vocab ${dls.vocab} kind ${dls.target_kind}`);
let body = create_body("resnet18", #{ pretrained: false });
let learn = learner(dls, classifier_model(body, create_head(body.out_channels(), 2)), #{ metrics: ["mae", "r2"] });
learn.fit(1, 1e-3);
let p = learn.predict(get_image_files(pets)[0]);
print(`values ${p.values.len()} value ${p.value}`);
print(`mae ${learn.validate().mae}`);
"#,
    );
    r.ok();
    assert!(r.stdout.contains("vocab [\"w\", \"h\"] kind floats"), "{}", r.stdout);
    assert!(r.stdout.contains("values 2 value "), "{}", r.stdout);
    assert!(value(&r.stdout, "mae ").is_finite());
}

/// The class losses by name and option on a small breed problem: each trains to a finite loss.
#[test]
fn named_class_losses_train() {
    let sb = Sandbox::new();
    let r = run_pets(
        &sb,
        r#"let files = get_image_files(pets).extract(0, 60);
let t = image_table(files, regex_label(`^(.*)_\d+\.jpg$`), random_splitter(files, #{ seed: 1 }));
let dls = image_loaders(t, #{ size: 32, bs: 16 });
for o in [#{ loss: "focal" }, #{ loss: "focal", gamma: 1.0 }, #{ label_smoothing: 0.1 }, #{ loss: "label_smoothing_cross_entropy" }] {
    let body = create_body("resnet18", #{ pretrained: false });
    o.metrics = ["accuracy"];
    let learn = learner(dls, classifier_model(body, create_head(body.out_channels(), dls.vocab.len())), o);
    learn.fit(1, 1e-3);
    print(`${o}: ${learn.validate().valid_loss}`);
}
"#,
    );
    r.ok();
    let losses: Vec<f64> = r.stdout.lines().filter(|l| l.starts_with("#{")).map(|l| l.rsplit(": ").next().unwrap().parse().unwrap()).collect();
    assert_eq!(losses.len(), 4, "{}", r.stdout);
    assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0), "{losses:?}");
}

#[test]
fn wrong_targets_are_refused_naming_the_fix() {
    let sb = Sandbox::new();
    let table = r#"let files = get_image_files(pets).extract(0, 40);
let t = image_table(files, regex_label(`^(.*)_\d+\.jpg$`), random_splitter(files, #{ seed: 1 }));
let body = create_body("resnet18", #{ pretrained: false });
"#;
    let e = fails(
        &sb,
        &format!(
            "{table}learner(image_loaders(t, #{{ size: 32, bs: 8 }}), classifier_model(body, create_head(512, 4)), #{{ loss: \"bce_multi\" }});"
        ),
    );
    assert!(
        e.contains("t.rhai:5:") && e.contains("`bce_multi` needs multi-hot targets") && e.contains("label_delim") && e.contains("use cross_entropy"),
        "{e}"
    );
    let e = fails(
        &sb,
        &format!(
            "{table}learner(image_loaders(t, #{{ size: 32, bs: 8 }}), classifier_model(body, create_head(512, 4)), #{{ metrics: [\"rmse\"] }});"
        ),
    );
    assert!(e.contains("metric `rmse` measures float targets") && e.contains("use accuracy"), "{e}");
    let e = fails(&sb, &format!("{table}image_loaders(t, #{{ size: 32, bs: 8, regression: true }});"));
    assert!(e.contains("t.rhai:5:") && e.contains("column `label` row 0 holds `Abyssinian`, not a number"), "{e}");
    let e = fails(&sb, &format!("{table}image_loaders(t, #{{ size: 32, bs: 8, label_delim: \"_\", regression: true }});"));
    assert!(e.contains("give one"), "{e}");
    // A multi-label model has top losses but no confusion matrix.
    let e = fails(
        &sb,
        &format!(
            "{table}let dls = image_loaders(t, #{{ size: 32, bs: 8, label_delim: \"_\" }});
let learn = learner(dls, classifier_model(body, create_head(512, dls.vocab.len())), #{{ metrics: [\"accuracy_multi\", f1_multi(#{{ thresh: 0.3 }})] }});
print(`top ${{learn.interpretation().top_losses(2).len()}}`);
learn.interpretation().confusion_matrix();"
        ),
    );
    assert!(e.contains("t.rhai:8:") && e.contains("a confusion matrix needs one class per item") && e.contains("top_losses"), "{e}");
    let e = fails(&sb, "accuracy_multi(#{ thresh: 2.0 });");
    assert!(e.contains("thresh must be a probability"), "{e}");
}
