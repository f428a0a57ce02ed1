//! Issue 27, 9: a name the engine does not know stops the script at its line with a
//! pointer: fastai's name for the runner's call, or the nearest registered names.
mod common;
use common::{Ran, Sandbox};

fn fails(sb: &Sandbox, text: &str) -> String {
    sb.write("bad.rhai", text);
    let r: Ran = sb.command(&["bad.rhai"]).env("RUNNER_CACHE", sb.path().join("cache")).output().unwrap().into();
    assert_eq!(r.code, 1, "expected a failure:\nstdout {}\nstderr {}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("panicked") && !r.stderr.contains("backtrace"), "{}", r.stderr);
    r.stderr
}

/// The line of stderr that carries the position.
fn error_line(stderr: &str) -> &str {
    stderr.lines().find(|l| l.starts_with("bad.rhai:")).unwrap_or_else(|| panic!("no positioned line in {stderr}"))
}

#[test]
fn fastai_names_and_misspellings_get_a_pointer_on_the_error_line() {
    let sb = Sandbox::new();
    let e = fails(&sb, "let x = 1;\nlet dls = ImageDataLoaders;\n");
    let line = error_line(&e);
    assert!(line.starts_with("bad.rhai:2:") && line.contains("fastai's `ImageDataLoaders` is image_loaders("), "{e}");
    let e = fails(&sb, "let x = 1;\nlet t = random_spliter([\"a.jpg\"], #{});\n");
    let line = error_line(&e);
    assert!(line.starts_with("bad.rhai:2:") && line.contains("did you mean `random_splitter`?"), "{e}");
    let e = fails(&sb, "let x = 1;\nlet i = ClassificationInterpretation(x);\n");
    assert!(error_line(&e).contains("learn.interpretation()"), "{e}");
    // `export` is a Rhai keyword: fastai's learn.export() does not even parse.
    let e = fails(&sb, "let learn = 1;\nlearn.export(\"pets.pkl\");\n");
    assert!(error_line(&e).starts_with("bad.rhai:2:7: Syntax error") && error_line(&e).contains("learn.export_learner(path)"), "{e}");
    // A known function with the wrong arguments lists what it takes.
    let e = fails(&sb, "let x = 1;\nimage_table(x);\n");
    assert!(error_line(&e).contains("`image_table` takes image_table(files: array, label: Label|Fn, splits: Splits) -> Table"), "{e}");
}
