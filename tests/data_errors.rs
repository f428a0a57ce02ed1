//! Bad input to the data blocks: each a clear error at the script line, never a panic.
mod common;
use common::{Ran, Sandbox};

/// Runs `text` (the failing call on line 2) and returns stderr, checking exit code and line.
fn fails(sb: &Sandbox, text: &str) -> String {
    sb.write("bad.rhai", &format!("let faces = \"{}\";\n{text}", common::datasets().join("orl_faces").display()));
    let r: Ran = sb.command(&["bad.rhai"]).env("RUNNER_CACHE", sb.path().join("cache")).output().unwrap().into();
    assert_eq!(r.code, 1, "expected a failure:\nstdout {}\nstderr {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("bad.rhai:2:"), "error positioned at line 2: {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r.stderr
}

#[test]
fn missing_folder_and_folder_without_images() {
    let sb = Sandbox::new();
    let e = fails(&sb, "get_image_files(\"no/such/folder\");\n");
    assert!(e.contains("image folder no/such/folder does not exist"), "{e}");
    sb.write("empty/notes.txt", "no pictures here");
    let e = fails(&sb, "get_image_files(\"empty\");\n");
    assert!(e.contains("no image files") && e.contains("empty"), "{e}");
}

#[test]
fn regex_that_matches_nothing_and_bad_regex() {
    let sb = Sandbox::new();
    let e =
        fails(&sb, "siamese_pairs(get_image_files(faces), random_splitter(get_image_files(faces), #{}), regex_label(`^(.*)_\\d+\\.jpg$`), #{});\n");
    assert!(e.contains("labelling failed for all 400 files") && e.contains("does not match file name `1.pgm`"), "{e}");
    let e = fails(&sb, "regex_label(\"(unclosed\");\n");
    assert!(e.contains("invalid regex `(unclosed`"), "{e}");
}

#[test]
fn unknown_option_keys_are_named_with_the_known_ones() {
    let sb = Sandbox::new();
    let e = fails(
        &sb,
        "let f = get_image_files(faces); let p = siamese_pairs(f, random_splitter(f, #{}), parent_label(), #{}); pair_loaders(p, #{ sizee: 32 });\n",
    );
    assert!(e.contains("unknown pair_loaders option `sizee`") && e.contains("size"), "{e}");
    let e = fails(&sb, "random_splitter([1, 2], #{ valid: 0.2 });\n");
    assert!(e.contains("unknown random_splitter option `valid`") && e.contains("valid_pct"), "{e}");
    let e = fails(
        &sb,
        "let f = get_image_files(faces); pair_loaders(siamese_pairs(f, random_splitter(f, #{}), parent_label(), #{}), #{ method: \"zoom\" });\n",
    );
    assert!(e.contains("unknown resize method `zoom`"), "{e}");
}

#[test]
fn corrupt_image_is_named_or_skipped_and_counted() {
    let sb = Sandbox::new();
    for i in 1..=8 {
        let dst = sb.path().join(format!("imgs/c{}/{i}.pgm", i % 2));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(common::datasets().join(format!("orl_faces/s1/{i}.pgm")), dst).unwrap();
    }
    sb.write("imgs/c0/broken.pgm", "P5\n92 112\n255\ntruncated");
    let setup = "let f = get_image_files(\"imgs\"); let t = image_table(f, parent_label(), func_splitter(f, |x| x.ends_with(\"1.pgm\")));";
    let e = fails(&sb, &format!("{setup} image_loaders(t, #{{ size: 16, bs: 2, channels: 1, cache: true }});\n"));
    assert!(e.contains("cannot decode image") && e.contains("broken.pgm") && e.contains("skip_bad"), "{e}");
    let e = fails(&sb, &format!("{setup} image_loaders(t, #{{ size: 16, bs: 9, channels: 1 }}).show_batch(\"b.png\");\n"));
    assert!(e.contains("fewer than bs 9"), "{e}");
    let e = fails(&sb, &format!("{setup} image_loaders(t, #{{ size: 16, bs: 2, channels: 1 }}).show_batch(\"b.png\", 8);\n"));
    assert!(e.contains("broken.pgm"), "decoding on the fly names the file too: {e}");
    sb.write("skip.rhai", &format!("{setup}\nlet dls = image_loaders(t, #{{ size: 16, bs: 2, channels: 1, skip_bad: true }});\nprint(`skipped ${{dls.skipped}} train ${{dls.n_train}}`);\nprint(verify_images(f));\n"));
    let r: Ran = sb.command(&["skip.rhai"]).output().unwrap().into();
    r.ok();
    assert!(r.stdout.contains("skipped 1 train 7"), "{}", r.stdout);
    assert!(r.stdout.contains("broken.pgm") && r.stderr.contains("skipped 1 item"), "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn mismatched_split_and_bad_table_use() {
    let sb = Sandbox::new();
    let e = fails(&sb, "let f = get_image_files(faces); siamese_pairs(f, random_splitter([1, 2, 3], #{}), parent_label(), #{});\n");
    assert!(e.contains("the split has 3 items but the file list has 400"), "{e}");
    let e = fails(&sb, "let f = get_image_files(faces); siamese_pairs(f, random_splitter(f, #{}), parent_label(), #{}).value_counts(\"lable\");\n");
    assert!(e.contains("no column `lable`") && e.contains("label"), "{e}");
    let e = fails(&sb, "let f = get_image_files(faces); siamese_pairs(f, random_splitter(f, #{}), parent_label(), #{}).filter(|r| 1);\n");
    assert!(e.contains("filter closure must return true or false"), "{e}");
    let e = fails(&sb, "random_splitter([1, 2], #{ valid_pct: 1.5 });\n");
    assert!(e.contains("valid_pct must be in [0, 1)"), "{e}");
}

#[test]
fn table_files_checked_when_read_and_bad_booleans_named() {
    let sb = Sandbox::new();
    sb.write("data/images/a.pgm", "x");
    sb.write("data/labels.csv", "file,label,is_valid\na.pgm,x,True\nmissing.pgm,y,False\n");
    let e = fails(&sb, "read_csv(\"data/labels.csv\", #{ folder: \"images\" });\n");
    assert!(e.contains("1 of 2 files in column `file` do not exist under data/images: row 1: data/images/missing.pgm"), "{e}");
    sb.write("data/flags.csv", "file,is_valid\na.pgm,True\na.pgm,maybe\n");
    let e = fails(&sb, "col_splitter(read_csv(\"data/flags.csv\"), \"is_valid\");\n");
    assert!(e.contains("column `is_valid` row 1 holds `maybe`, not a boolean (true/false, True/False or 1/0)"), "{e}");
    let e = fails(&sb, "read_csv(\"data/flags.csv\").with_column(\"n\", [1, \"two\"]);\n");
    assert!(e.contains("value 1 is string `two` after i64"), "{e}");
}
