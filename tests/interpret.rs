//! fastai's interpretation tools through the real binary (issue #14 part 5): confusion
//! matrix, most confused, top losses (data and pictures) for a classifier and a Siamese
//! pair model, `predict` on one file, and the same/different threshold of pair models
//! (calibrated on training pairs, or set by the script).
mod common;
use common::Sandbox;

/// The value printed after `tag ` on its own line.
fn value<'a>(out: &'a str, tag: &str) -> &'a str {
    out.lines().find_map(|l| l.strip_prefix(&format!("{tag} "))).unwrap_or_else(|| panic!("no `{tag}` line in\n{out}"))
}

fn num(out: &str, tag: &str) -> f64 {
    value(out, tag).parse().unwrap_or_else(|_| panic!("`{tag}` is not a number in\n{out}"))
}

fn png_size(path: &std::path::Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const CLASSIFIER: &str = r#"
let files  = get_image_files(untar_data("orl_faces")).extract(0, 80);
let splits = random_splitter(files, #{ valid_pct: 0.25, seed: seed });
let dls    = image_loaders(image_table(files, parent_label(), splits),
                           #{ size: 32, method: "squish", channels: 1, normalize: "stats", bs: 16 });
let body   = convnet(#{ input: [32, 32], channels: [8, 16], kernels: [3, 3], pool: [true, true], bn: true, embed: 32, sigmoid: false });
let learn  = learner(dls, classifier_model(body, "cosine", dls.vocab.len()), #{ metrics: ["accuracy"], splitter: "none" });
learn.fit_one_cycle(3, 3e-3);
let v = learn.validate();
let interp = learn.interpretation();
let cm = interp.confusion_matrix();
let total = 0; let right = 0;
for i in 0..cm.len() { for j in 0..cm[i].len() { total += cm[i][j]; if i == j { right += cm[i][j]; } } }
print(`n_valid ${dls.n_valid}`);
print(`classes ${cm.len()} ${interp.vocab.len()} ${dls.vocab.len()}`);
print(`total ${total}`);
print(`matrix_accuracy ${right.to_float() / total.to_float()}`);
print(`accuracy ${v.accuracy}`);
let mc = interp.most_confused();
print(`confused ${mc.len()}`);
let sorted = true; let off_diagonal = true;
for k in 0..mc.len() { if k > 0 && mc[k][2] > mc[k - 1][2] { sorted = false; } if mc[k][0] == mc[k][1] { off_diagonal = false; } }
print(`sorted ${sorted} ${off_diagonal}`);
print(`confused_2 ${interp.most_confused(#{ min_val: 2 }).len()}`);
let confused_total = 0; for r in mc { confused_total += r[2]; }
print(`confused_total ${confused_total}`);
print(`cm_path ${interp.plot_confusion_matrix("confusion.png")}`);
let top = interp.plot_top_losses(6, "top_losses.png");
let desc = true; for k in 1..top.len() { if top[k].loss > top[k - 1].loss { desc = false; } }
print(`top ${top.len()} ${desc}`);
print(`worst ${top[0].loss} ${interp.top_losses(1)[0].loss}`);
let p = learn.predict(files[0]);
print(`predict ${p.label} ${p.index} ${p.probs.argmax()} ${p.probs.sum()} ${p.probs.len()} ${dls.vocab[p.index]}`);
print(`predict_max ${p.probs.max()} ${p.probs[p.index]}`);
let p2 = learn.predict([files[0]]);
print(`same_as_list ${p2.label == p.label && p2.probs.max() == p.probs.max()}`);
"#;

#[test]
fn classifier_interpretation_matrix_confused_top_losses_and_predict() {
    let sb = Sandbox::new();
    sb.write("c.rhai", CLASSIFIER);
    let r = sb.run(&["c.rhai", "--device", "cpu"]);
    r.ok();
    let out = &r.stdout;
    let n_valid = num(out, "n_valid");
    assert!(n_valid >= 15.0, "{out}");
    assert_eq!(value(out, "classes"), "8 8 8", "{out}");
    assert_eq!(num(out, "total"), n_valid, "the matrix counts every validation item once: {out}");
    assert!((num(out, "matrix_accuracy") - num(out, "accuracy")).abs() < 1e-9, "the diagonal is the accuracy: {out}");
    assert_eq!(value(out, "sorted"), "true true", "most_confused: most frequent first, no diagonal cells: {out}");
    assert_eq!(num(out, "confused_total"), n_valid - num(out, "matrix_accuracy") * n_valid, "every error is in most_confused: {out}");
    assert!(num(out, "confused_2") <= num(out, "confused"), "{out}");
    assert_eq!(value(out, "top"), "6 true", "six items, highest loss first: {out}");
    let worst: Vec<&str> = value(out, "worst").split(' ').collect();
    assert_eq!(worst[0], worst[1], "plot_top_losses draws top_losses: {out}");
    // predict(file): a distribution over the 8 classes whose argmax is the returned index and label
    let p: Vec<&str> = value(out, "predict").split(' ').collect();
    assert_eq!(p[1], p[2], "argmax == index: {out}");
    assert_eq!(p[0], p[5], "label == vocab[index]: {out}");
    assert!((p[3].parse::<f64>().unwrap() - 1.0).abs() < 1e-5, "probabilities sum to 1: {out}");
    assert_eq!(p[4], "8", "{out}");
    let m: Vec<&str> = value(out, "predict_max").split(' ').collect();
    assert_eq!(m[0], m[1], "probs[index] is the largest: {out}");
    assert_eq!(value(out, "same_as_list"), "true", "{out}");

    let run = sb.last_run();
    assert_eq!(value(out, "cm_path"), run.join("confusion.png").display().to_string());
    let (w, h) = png_size(&run.join("confusion.png"));
    assert!((400..3000).contains(&w) && (400..3000).contains(&h), "confusion.png is {w}x{h}");
    let (w, h) = png_size(&run.join("top_losses.png"));
    // 6 tiles: 3 columns, 2 rows of images magnified to 224 px
    assert!(w >= 3 * 224 && h >= 2 * 224 && w < 1200 && h < 1200, "top_losses.png is {w}x{h}");
}

const PAIRS: &str = r#"
let files  = get_image_files(untar_data("orl_faces")).extract(0, 80);
let splits = group_splitter(files, parent_label(), #{ valid_pct: 0.25, seed: seed });
let pairs  = siamese_pairs(files, splits, parent_label(), #{ p_same: 0.5 });
let dls    = pair_loaders(pairs, #{ size: 32, channels: 1, bs: 8, normalize: "stats", cache: true });
let body   = convnet(#{ input: [32, 32], channels: [8, 16], kernels: [3, 3], pool: [true, true], embed: 16, bn: false, sigmoid: false });
"#;

/// A distance head with a huge margin calls every pair "same" at the default threshold
/// (d < margin / 2): calibrating on the training pairs must find a better cut, and the
/// new threshold is what validate and the interpretation then use.
#[test]
fn calibrate_fits_the_pair_threshold_and_the_interpretation_uses_it() {
    let sb = Sandbox::new();
    sb.write(
        "p.rhai",
        &format!(
            r#"{PAIRS}
let learn = learner(dls, siamese_model(body, "distance"), #{{ metrics: ["accuracy"], margin: 1000.0 }});
let interp = learn.interpretation();
let cm = interp.confusion_matrix();
print(`vocab ${{interp.vocab}}`);
print(`before ${{learn.validate().accuracy}} ${{learn.threshold}}`);
print(`same_share ${{cm[1][0] + cm[1][1]}} ${{dls.n_valid}}`);
print(`predicted_same ${{cm[0][1] + cm[1][1]}}`);
let c = learn.calibrate();
print(`calibrated ${{c.threshold}} ${{c.accuracy_before}} ${{c.accuracy}} ${{c.n}} ${{c.distance}}`);
print(`after ${{learn.validate().accuracy}} ${{learn.threshold}}`);
let cm = learn.interpretation().confusion_matrix();
print(`after_matrix ${{(cm[0][0] + cm[1][1]).to_float() / dls.n_valid.to_float()}}`);
let top = learn.interpretation().plot_top_losses(4, "pairs_top.png");
print(`top ${{top.len()}} ${{top[0].actual}}`);
learn.interpretation().plot_confusion_matrix("pairs_cm.png", #{{ normalize: true }});
"#
        ),
    );
    let r = sb.run(&["p.rhai", "--device", "cpu"]);
    r.ok();
    let out = &r.stdout;
    assert_eq!(value(out, "vocab"), r#"["different", "same"]"#, "{out}");
    let share: Vec<f64> = value(out, "same_share").split(' ').map(|x| x.parse().unwrap()).collect();
    let before: Vec<f64> = value(out, "before").split(' ').map(|x| x.parse().unwrap()).collect();
    assert_eq!(before[1], 0.5, "{out}");
    assert_eq!(num(out, "predicted_same"), share[1], "every pair is `same` at d < 500: {out}");
    assert!((before[0] - share[0] / share[1]).abs() < 1e-9, "accuracy is the share of same pairs: {out}");
    let c: Vec<&str> = value(out, "calibrated").split(' ').collect();
    let (t, acc_before, acc, n, dist): (f64, f64, f64, f64, f64) =
        (c[0].parse().unwrap(), c[1].parse().unwrap(), c[2].parse().unwrap(), c[3].parse().unwrap(), c[4].parse().unwrap());
    assert!(t > 0.5 && t < 1.0, "{out}");
    assert!(acc > acc_before, "the fitted cut classifies more training pairs right: {out}");
    assert!(n >= 40.0, "{out}");
    assert!(dist > 0.0 && dist < 500.0, "the cut as a distance lies below margin/2: {out}");
    let after: Vec<f64> = value(out, "after").split(' ').map(|x| x.parse().unwrap()).collect();
    assert_eq!(after[1], t, "{out}");
    assert_ne!(after[0], before[0], "validate uses the calibrated threshold: {out}");
    assert!((num(out, "after_matrix") - after[0]).abs() < 1e-9, "so does the interpretation: {out}");
    assert!(value(out, "top").starts_with("4 "), "{out}");
    let run = sb.last_run();
    let (w, h) = png_size(&run.join("pairs_top.png"));
    // 2 x 2 tiles of two 224 px images side by side
    assert!(w >= 2 * 2 * 224 && h >= 2 * 224, "pairs_top.png is {w}x{h}");
    let (w, h) = png_size(&run.join("pairs_cm.png"));
    assert!(w >= 200 && h >= 200, "pairs_cm.png is {w}x{h}");
}

/// A script-set threshold (option or property) decides same/different; bad ones are refused at the line.
#[test]
fn a_script_set_threshold_is_used_and_bad_ones_are_refused() {
    let sb = Sandbox::new();
    sb.write(
        "t.rhai",
        &format!(
            r#"{PAIRS}
let learn = learner(dls, siamese_model(body, "l1"), #{{ metrics: ["accuracy"], threshold: 0.000001 }});
let cm = learn.interpretation().confusion_matrix();
print(`same_share ${{(cm[1][0] + cm[1][1]).to_float() / dls.n_valid.to_float()}}`);
print(`low ${{learn.validate().accuracy}} ${{learn.threshold}}`);
learn.threshold = 0.999999;
print(`high ${{learn.validate().accuracy}}`);
let p = learn.predict([files[0], files[1]]);
print(`predict ${{p.label}}`);
"#
        ),
    );
    let r = sb.run(&["t.rhai", "--device", "cpu"]);
    r.ok();
    let out = &r.stdout;
    let share = num(out, "same_share");
    assert!(share > 0.0 && share < 1.0, "{out}");
    let low: Vec<f64> = value(out, "low").split(' ').map(|x| x.parse().unwrap()).collect();
    assert!((low[0] - share).abs() < 1e-9, "threshold 1e-6: every pair is same: {out}");
    assert_eq!(low[1], 0.000001, "{out}");
    assert!((num(out, "high") - (1.0 - share)).abs() < 1e-9, "threshold 1 - 1e-6: every pair is different: {out}");
    assert_eq!(value(out, "predict"), "different", "{out}");

    let cases = [
        ("learn.threshold = 1.5;", "threshold must be a probability strictly between 0 and 1, got 1.5"),
        ("let l = learner(dls, siamese_model(body, \"l1\"), #{ threshold: 0.0 });", "strictly between 0 and 1, got 0"),
        ("learn.predict(files[0]);", "predict takes 2 file(s) for this model, got 1"),
        ("learn.interpretation().most_confused(#{ min: 2 });", "unknown most_confused option `min`"),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let name = format!("b{i}.rhai");
        sb.write(&name, &format!("{PAIRS}let learn = learner(dls, siamese_model(body, \"l1\"));\n{line}\n"));
        let r = sb.run(&[&name, "--device", "cpu"]);
        assert_eq!(r.code, 1, "{line}: {}", r.stderr);
        assert!(r.stderr.contains(&format!("{name}:8:")), "{line}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{line}: expected `{want}` in {}", r.stderr);
    }
    // a threshold means nothing for an 8-class classifier
    sb.write(
        "k.rhai",
        "let files = get_image_files(untar_data(\"orl_faces\")).extract(0, 80);\n\
         let dls = image_loaders(image_table(files, parent_label(), random_splitter(files, #{ valid_pct: 0.2 })), #{ size: 32, channels: 1, bs: 16 });\n\
         let body = convnet(#{ input: [32, 32], channels: [8], kernels: [3], pool: [true], embed: 8 });\n\
         let learn = learner(dls, classifier_model(body, \"cosine\", 8));\n\
         learn.calibrate();\n",
    );
    let r = sb.run(&["k.rhai", "--device", "cpu"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("k.rhai:5:") && r.stderr.contains("calibrate needs a two-class model") && r.stderr.contains("8 classes"),
        "{}",
        r.stderr
    );
}
