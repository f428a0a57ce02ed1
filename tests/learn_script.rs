//! The learner from a script: metric closures, early stopping and save_best, predict,
//! and errors for bad fit arguments at the script line.
mod common;
use common::Sandbox;

const DATA: &str = r#"
let files  = get_image_files(untar_data("orl_faces")).extract(0, 80);
let splits = group_splitter(files, parent_label(), #{ valid_pct: 0.25, seed: seed });
let pairs  = siamese_pairs(files, splits, parent_label(), #{ p_same: 0.5 });
let dls    = pair_loaders(pairs, #{ size: 48, channels: 1, bs: 8, normalize: "stats", cache: true });
let body   = convnet(#{ input: [48, 48], channels: [8, 16], kernels: [3, 3], pool: [true, true], embed: 16, bn: false });
"#;

#[test]
fn closures_early_stopping_save_best_and_predict() {
    let sb = Sandbox::new();
    sb.write(
        "l.rhai",
        &format!(
            "{DATA}
let learn = learner(dls, siamese_model(body, \"l1\"), #{{ metrics: [\"accuracy\", |p, t| p.max()], loss: \"bce\" }});
learn.fit(6, 0.0, #{{ early_stopping: #{{ monitor: \"accuracy\", patience: 2 }}, save_best: \"valid_loss\" }});
let v = learn.validate();
print(learn.summary());
print(`closure metric ${{v.metric1}}`);
let p = learn.predict([files[0], files[1]]);
print(`predict ${{p.label}} ${{p.probs.len()}}`);
"
        ),
    );
    let r = sb.run(&["l.rhai"]);
    r.ok();
    assert!(r.stdout.contains("metric1"), "closure metric column: {}", r.stdout);
    assert!(r.stdout.contains("inputs of 2 x 1 x 48 x 48)"), "summary at the loaders' size: {}", r.stdout);
    assert!(r.stdout.contains("No improvement in accuracy for 2 epochs: stopping at epoch 2"), "{}", r.stdout);
    assert!(r.stdout.contains("predict same 2") || r.stdout.contains("predict different 2"), "{}", r.stdout);
    let run = sb.last_run();
    assert!(run.join("models/best.safetensors").is_file());
    let m = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(m.matches("\"kind\":\"epoch\"").count(), 3, "stopped after 3 epochs");
    assert!(m.contains("\"metric1\""));
}

#[test]
fn bad_fit_arguments_point_at_the_line() {
    let sb = Sandbox::new();
    let cases = [
        ("learn.fit_one_cycle(1, 1e-3, #{ pct: 0.3 });", "unknown fit_one_cycle option `pct`"),
        ("learn.fit_one_cycle(1, [1e-3, 1e-4, 1e-5]);", "3 learning rates given for 1 parameter groups"),
        ("learn.fit(1, \"fast\");", "learning rate must be a number"),
        ("let l2 = learner(dls, siamese_model(body, \"l1\"), #{ loss: \"cross_entropy\" });", "does not fit a model that outputs [N] logit of same"),
        ("let l2 = learner(dls, siamese_model(body, \"l1\"), #{ metrics: [\"acuracy\"] });", "unknown metric `acuracy`"),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let name = format!("b{i}.rhai");
        sb.write(&name, &format!("{DATA}let learn = learner(dls, siamese_model(body, \"l1\"), #{{ splitter: \"none\" }});\n{line}\n"));
        let r = sb.run(&[&name]);
        assert_eq!(r.code, 1, "{line}");
        assert!(r.stderr.contains(&format!("{name}:8:")), "{line}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{line}: expected `{want}` in {}", r.stderr);
    }
}

/// Issue 10: a script-level `after_epoch` closure reads the epoch's values, logs a metric
/// and ends the fit after epoch 2; `after_batch` sees every batch; a closure's own error is
/// reported at the closure's line.
#[test]
fn script_callbacks_read_log_and_stop_the_fit() {
    let sb = Sandbox::new();
    sb.write(
        "cb.rhai",
        &format!(
            "{DATA}
let learn = learner(dls, siamese_model(body, \"l1\"), #{{ metrics: [\"accuracy\"], loss: \"bce\" }});
let batches = [];
learn.fit_one_cycle(6, 1e-3, #{{ cbs: [
    after_batch(|b| {{ if b.epoch == 0 {{ batches.push(b.iter); }} }}),
    after_epoch(|e| {{
        log_metric(\"gap\", e.valid_loss - e.train_loss);
        print(`seen epoch ${{e.epoch}} of ${{e.n_epoch}}, accuracy ${{e.accuracy}}`);
        if e.epoch >= 2 {{ cancel_fit(); }}
    }}),
] }});
print(`after_batch saw ${{batches.len()}} batches`);
"
        ),
    );
    let r = sb.run(&["cb.rhai"]);
    r.ok();
    assert!(r.stdout.contains("seen epoch 2 of 6"), "{}", r.stdout);
    assert!(!r.stdout.contains("seen epoch 3"), "{}", r.stdout);
    let m = std::fs::read_to_string(sb.last_run().join("metrics.jsonl")).unwrap();
    assert_eq!(m.matches("\"kind\":\"epoch\"").count(), 3, "the fit stopped after epoch 2:\n{m}");
    assert_eq!(m.matches("\"name\":\"gap\"").count(), 3, "the closure logged a metric per epoch:\n{m}");
    let n_batches = m.lines().filter(|l| l.contains("\"kind\":\"batch\"") && l.contains("\"fit\":1")).count() / 3;
    assert!(r.stdout.contains(&format!("after_batch saw {n_batches} batches")), "{n_batches} per epoch: {}", r.stdout);

    // An error inside a closure points at the closure's line, not at the fit call.
    sb.write(
        "bad.rhai",
        &format!(
            "{DATA}let learn = learner(dls, siamese_model(body, \"l1\"), #{{ loss: \"bce\" }});
learn.fit(2, 1e-3, #{{ cbs: [after_epoch(|e| {{
    let x = e.no_such_column + 1;
}})] }});
"
        ),
    );
    let r = sb.run(&["bad.rhai"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad.rhai:9:"), "the closure's line (9): {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    sb.write(
        "bad2.rhai",
        &format!("{DATA}let learn = learner(dls, siamese_model(body, \"l1\"), #{{ loss: \"bce\" }});\nlearn.fit(1, 1e-3, #{{ cbs: [1] }});\n"),
    );
    let r = sb.run(&["bad2.rhai"]);
    assert!(r.code == 1 && r.stderr.contains("bad2.rhai:8:") && r.stderr.contains("cbs holds callbacks"), "{}", r.stderr);
}
