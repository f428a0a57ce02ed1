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
print(`closure metric ${{v.metric1}}`);
let p = learn.predict([files[0], files[1]]);
print(`predict ${{p.label}} ${{p.probs.len()}}`);
"
        ),
    );
    let r = sb.run(&["l.rhai"]);
    r.ok();
    assert!(r.stdout.contains("metric1"), "closure metric column: {}", r.stdout);
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
        ("let l2 = learner(dls, siamese_model(body, \"l1\"), #{ loss: \"cross_entropy\" });", "does not fit a model that outputs Logit"),
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
