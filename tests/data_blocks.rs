//! The data blocks through the real binary on the real shared data: the pets Siamese
//! tutorial steps, ORL faces split by person, Omniglot's two overlapping background sets
//! and the one-shot runs. Small image sizes keep these fast.
mod common;
use common::{Ran, Sandbox};

/// Runs a script with extraction going into the sandbox (the shared folder is read-only).
fn run(sb: &Sandbox, script: &str, text: &str) -> Ran {
    sb.write(script, text);
    sb.command(&[script]).env("RUNNER_CACHE", sb.path().join("cache")).output().unwrap().into()
}

#[test]
fn pets_tutorial_steps_make_pairs_tables_loaders_and_a_batch_picture() {
    let sb = Sandbox::new();
    let r = run(
        &sb,
        "pets.rhai",
        r#"
let path   = untar_data("pets");
let files  = get_image_files(path + "/images");
let label  = regex_label(`^(.*)_\d+\.jpg$`);
let splits = random_splitter(files, #{ valid_pct: 0.2, seed: seed });
let pairs  = siamese_pairs(files, splits, label, #{ p_same: 0.5 });
print(pairs.value_counts("label"));
let train  = pairs.filter(|r| !r.is_valid).oversample("label");
print(train.value_counts("label"));
let full   = concat([train, pairs.filter(|r| r.is_valid)]);
let csv    = full.to_csv("pairs.csv");
let back   = read_csv(csv);
print(`rows ${full.len()} ${back.len()} columns ${back.columns}`);
let dls    = pair_loaders(back, #{ size: 32, method: "crop", normalize: "imagenet", bs: 16 });
print(dls);
dls.show_batch("batch.png");
let classes = image_loaders(image_table(files, label, splits), #{ size: 32, bs: 8, method: "squish", flip: true });
print(`vocab ${classes.vocab.len()} first ${classes.vocab[0]}`);
classes.show_batch("classes.png", 4);
"#,
    );
    r.ok();
    assert!(r.stderr.contains("oxford-iiit-pet-sample"), "says the sample stands in for the full set: {}", r.stderr);
    let out = &r.stdout;
    assert!(out.contains("   label  count"), "{out}");
    // Oversampled training table: both labels equally frequent.
    let counts: Vec<u64> = out
        .lines()
        .skip_while(|l| !l.contains("label  count"))
        .skip(1)
        .skip_while(|l| !l.contains("label  count"))
        .skip(1)
        .take(2)
        .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 2, "{out}");
    assert_eq!(counts[0], counts[1], "oversample balances the labels: {out}");
    assert!(out.contains("columns [\"file1\", \"file2\", \"class1\", \"class2\", \"label\", \"is_valid\"]"), "{out}");
    assert!(out.contains("valid 74 items / 5 batches, 3x32x32"), "{out}");
    assert!(out.contains("vocab 37 first Abyssinian"), "{out}");
    let run = sb.last_run();
    for png in ["batch.png", "classes.png"] {
        let img = image::open(run.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(img.width() > 200 && img.height() > 100, "{png} {}x{}", img.width(), img.height());
    }
    let csv = std::fs::read_to_string(run.join("pairs.csv")).unwrap();
    assert!(csv.starts_with("file1,file2,class1,class2,label,is_valid\n"));
}

#[test]
fn orl_faces_split_by_person_closures_and_grey_loaders() {
    let sb = Sandbox::new();
    let r = run(
        &sb,
        "orl.rhai",
        r#"
let files  = get_image_files(untar_data("orl_faces"));
let person = |f| { let p = f.split("/"); p[p.len() - 2] };
let splits = group_splitter(files, parent_label(), #{ valid_pct: 0.2 });
print(splits);
image_table(files, person, splits).to_csv("split.csv");
let pairs = siamese_pairs(files, splits, person, #{});
let dls = pair_loaders(pairs, #{ size: 28, channels: 1, normalize: "stats", bs: 32, rotate: 10, scale: 0.1, cache: true, redraw: true });
print(dls);
dls.show_batch("faces.png");
let s1 = func_splitter(files, |f| f.contains("/s1/"));
print(`func ${s1.valid.len()}`);
print(`col ${col_splitter(pairs, "is_valid").valid.len()}`);
"#,
    );
    r.ok();
    assert!(r.stdout.contains("Splits(train 320, valid 80)"), "{}", r.stdout);
    assert!(r.stdout.contains("train 320 items / 10 batches of 32, valid 80 items"), "{}", r.stdout);
    assert!(r.stdout.contains("func 10") && r.stdout.contains("col 80"), "{}", r.stdout);
    let run = sb.last_run();
    let csv = std::fs::read_to_string(run.join("split.csv")).unwrap();
    let mut side = std::collections::BTreeMap::new();
    for line in csv.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let prev = side.insert(cols[1].to_string(), cols[2].to_string());
        assert!(prev.is_none() || prev.as_deref() == Some(cols[2]), "person {} on both sides", cols[1]);
    }
    assert_eq!(side.len(), 40);
    assert_eq!(side.values().filter(|v| *v == "true").count(), 8);
    assert!(run.join("faces.png").is_file());
}

#[test]
fn omniglot_background_sets_count_once_and_runs_are_read() {
    let sb = Sandbox::new();
    // A data folder holding only the archives, as shipped: they must be extracted into the cache.
    let data = sb.path().join("data");
    std::fs::create_dir_all(data.join("omniglot")).unwrap();
    for zip in ["images_background_small1.zip", "images_background_small2.zip", "all_runs.zip"] {
        std::fs::copy(common::datasets().join("omniglot").join(zip), data.join("omniglot").join(zip)).unwrap();
    }
    let run = |script: &str, text: &str| -> Ran {
        sb.write(script, text);
        sb.command(&[script]).env("RUNNER_DATA", &data).env("RUNNER_CACHE", sb.path().join("cache")).output().unwrap().into()
    };
    let r = run(
        "omni.rhai",
        r#"
let files = get_image_files([untar_data("omniglot_small1"), untar_data("omniglot_small2")]);
print(`files ${files.len()}`);
let labels = get_labels(files, parent_label(2));
print(`first ${labels[0]}`);
let splits = group_splitter(files, |f| { let p = f.split("/"); p[p.len() - 3] }, #{ valid_pct: 0.25 });
print(splits);
let runs = read_oneshot_runs(untar_data("omniglot_runs"));
print(`runs ${runs.len()} support ${runs[0].support.len()} queries ${runs[0].queries.len()} first ${runs[0].queries[0][1]}`);
let pairs = siamese_pairs(files, splits, parent_label(2), #{ p_same: 0.5 });
let dls = pair_loaders(pairs, #{ size: 28, channels: 1, normalize: "none", bs: 128, rotate: 10, shear: 0.3, scale: 0.2, translate: 0.1, cache: true });
print(dls);
"#,
    );
    r.ok();
    assert!(r.stdout.contains("files 4840"), "Greek and Latin counted once: {}", r.stdout);
    assert!(r.stdout.contains("first Balinese/character01"), "{}", r.stdout);
    assert!(r.stdout.contains("Splits(train 3"), "{}", r.stdout);
    assert!(r.stdout.contains("runs 20 support 20 queries 20 first 7"), "{}", r.stdout);
    assert!(sb.path().join("cache/omniglot/images_background_small1/Greek").is_dir(), "extracted into RUNNER_CACHE");
    let in_data: Vec<_> = std::fs::read_dir(data.join("omniglot")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(in_data.len(), 3, "RUNNER_DATA is never written: {in_data:?}");
    // A second run finds the extracted folders in the cache.
    let again = run("again.rhai", "print(untar_data(\"omniglot_small2\"));\n");
    again.ok();
    assert!(again.stdout.contains("cache/omniglot/images_background_small2"), "{}", again.stdout);
}
