//! Losses and metrics written as script closures, as fastai takes any callable: a
//! cross-entropy closure trains exactly as the built-in loss, an MSE closure trains, the
//! closure's own errors name its line, the tensor ops such closures use compute as
//! PyTorch's; named closure metrics are ranked by their direction, and `runner runs` shows
//! the final fit's metrics.
mod common;
use common::Sandbox;
use serde_json::Value;

/// ORL faces at 24 px, a small convnet and a cosine head without margin (so that the
/// built-in loss is plain cross-entropy); `loss` is spliced in.
fn script(loss: &str, fit: &str) -> String {
    format!(
        r#"
let files  = get_image_files(untar_data("orl_faces"));
let splits = random_splitter(files, #{{ valid_pct: 0.2, seed: seed }});
let dls    = image_loaders(image_table(files, parent_label(), splits),
                           #{{ size: 24, method: "squish", channels: 1, normalize: "stats", bs: 32 }});
let body   = convnet(#{{ input: [24, 24], channels: [8, 16], kernels: [3, 3], pool: [true, true], embed: 32, sigmoid: false }});
let n      = dls.vocab.len();
let learn  = learner(dls, classifier_model(body, "cosine", n, #{{ margin: 0.0 }}),
                     #{{ metrics: ["accuracy"], splitter: "none", loss: {loss} }});
{fit}
"#
    )
}

/// The `kind` records of a run's metrics.jsonl.
fn records(run: &std::path::Path, kind: &str) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == kind)
        .collect()
}

#[test]
fn a_cross_entropy_closure_trains_as_the_built_in_loss() {
    let sb = Sandbox::new();
    let fit = "learn.fit_one_cycle(2, 3e-3);\nlet v = learn.validate();\nprint(`valid ${v.valid_loss} ${v.accuracy}`);";
    sb.write("builtin.rhai", &script("\"cross_entropy\"", fit));
    sb.write("closure.rhai", &script("|preds, targets| -preds.log_softmax(1).gather(1, targets.unsqueeze(1)).mean()", fit));
    let builtin = sb.run(&["builtin.rhai"]);
    builtin.ok();
    let a = records(&sb.last_run(), "epoch");
    let closure = sb.run(&["closure.rhai"]);
    closure.ok();
    let c = records(&sb.last_run(), "epoch");
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&c) {
        // The same gradients, so the same weights: validation is bit for bit the same.
        assert_eq!(x["valid_loss"], y["valid_loss"], "{x} vs {y}");
        assert_eq!(x["accuracy"], y["accuracy"], "{x} vs {y}");
        let (tx, ty) = (x["train_loss"].as_f64().unwrap(), y["train_loss"].as_f64().unwrap());
        assert!((tx - ty).abs() < 1e-6 * tx.abs(), "batch means reduce in another order: {tx} vs {ty}");
    }
    assert!(a[1]["valid_loss"].as_f64().unwrap() < a[0]["valid_loss"].as_f64().unwrap(), "it trains: {a:?}");
    let line = |out: &str| out.lines().find(|l| l.starts_with("valid ")).map(String::from).unwrap();
    assert_eq!(line(&builtin.stdout), line(&closure.stdout), "validate() runs the closure item by item to the same loss");
}

#[test]
fn an_mse_closure_trains_and_runs_shows_the_final_fit() {
    let sb = Sandbox::new();
    let mse = "|preds, targets| (preds.softmax(1) - targets.one_hot(n).float()).pow(2).sum(1).mean()";
    sb.write("mse.rhai", &script(mse, "learn.fine_tune(2, 3e-3, #{ freeze_epochs: 1 });"));
    sb.run(&["mse.rhai"]).ok();
    let run = sb.last_run();
    let epochs = records(&run, "epoch");
    assert_eq!(epochs.len(), 3, "one frozen epoch, then two: {epochs:?}");
    let loss = |i: usize, k: &str| epochs[i][k].as_f64().unwrap();
    assert!(loss(2, "train_loss") < loss(0, "train_loss") && loss(2, "valid_loss") < loss(0, "valid_loss"), "{epochs:?}");
    let r = sb.run(&["runs"]);
    r.ok();
    let row = r.stdout.lines().nth(1).unwrap();
    let shown = |v: f64| format!("valid_loss={v:.4}");
    assert!(r.stdout.lines().next().unwrap().contains("final metrics"), "{}", r.stdout);
    assert!(row.contains(&shown(loss(2, "valid_loss"))), "the final fit's last epoch: {row}");
    assert!(row.contains(&format!("accuracy={:.4}", loss(2, "accuracy"))) && !row.contains("train_loss"), "{row}");
    assert!(!row.contains(&shown(loss(0, "valid_loss"))), "not the frozen epoch of fine_tune: {row}");
}

#[test]
fn a_failing_loss_closure_names_its_line_and_a_wrong_result_says_what_it_is() {
    let sb = Sandbox::new();
    let cases = [
        ("|preds, targets| {\n  let l = preds.log_softmax(1);\n  throw \"my own error\";\n}", "e.rhai:11:3: my own error"),
        ("|preds, targets| {\n  preds.gather(2, targets)\n}", "e.rhai:10:9: gather: Dimension out of range"),
        ("|preds, targets| preds.mean().to_float()", "loss `closure` returned the number"),
        ("|preds, targets| preds.log_softmax(1)", "loss `closure` returned a tensor of shape [32, 40]: a loss is one number per batch"),
        ("|preds, targets| 1.0 + tensor([2.0]).mean()", "loss `closure` does not depend on the predictions"),
        ("42", "`loss` takes a name (cross_entropy, label_smoothing_cross_entropy, focal, bce, contrastive, bce_multi, mse, l1, smooth_l1) or a closure |preds, targets|"),
    ];
    for (loss, want) in cases {
        sb.write("e.rhai", &script(loss, "learn.fit(1, 1e-3);"));
        let r = sb.run(&["e.rhai"]);
        assert_eq!(r.code, 1, "{loss}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{loss}: want `{want}` in\n{}", r.stderr);
        assert!(!r.stderr.contains("panicked") && !r.stderr.contains("backtrace"), "{}", r.stderr);
    }
}

#[test]
fn tensor_ops_compute_as_pytorch() {
    let sb = Sandbox::new();
    sb.write(
        "t.rhai",
        r#"
let x = tensor([1.0, 2.0, 3.0, 4.0]);
let m = x.reshape([2, 2]);
let y = tensor([1, 0]).long();
print(`reduce ${x.mean()} ${x.sum()} ${x.max()} ${x.min()} ${x[1]} ${x[-1]} ${fixed(x.mean(), 2)} ${x.mean().to_float() + 1}`);
print(`dims ${m.sum(1).to_array()} ${m.mean(0).to_array()} ${m.sum(1, true).shape} ${m.shape} ${x.view([-1, 1]).shape} ${m.unsqueeze(0).shape} ${m.unsqueeze(0).squeeze().shape} ${m.reshape([4, 1]).squeeze(1).shape}`);
print(`both_ways ${(2 * x - 1).to_array()} ${(1 - x).to_array()} ${(12 / x).to_array()} ${(x ** 2).to_array()} ${(2 ** x).to_array()} ${x.pow(2).to_array()} ${(-x).to_array()} ${(x * x).to_array()}`);
print(`compare ${x.mean() > 2} ${x.mean() == 2.5} ${2 < x.mean()} ${(x > 2).float().to_array()} ${(m.argmax(1) == y).float().mean()}`);
print(`ce ${fixed(-m.log_softmax(1).gather(1, y.unsqueeze(1)).mean(), 6)} ${m.softmax(1).sum(1).to_array()} ${y.one_hot(3).to_array()}`);
print(`maths ${fixed(x.sigmoid()[0], 6)} ${fixed(x.log().exp().sum(), 4)} ${(x - 3).abs().to_array()} ${x.sqrt()[3]} ${x.clamp(1.5, 3).to_array()} ${x.clamp_min(2).to_array()}`);
print(`kinds ${y.float().mean()} ${(y + 1).to_array()} ${x.long().to_array()} ${x.mean().to_int()} ${len(x)}`);
if x.mean() < 3 { print("if_works"); }
"#,
    );
    let r = sb.run(&["t.rhai"]);
    r.ok();
    let out = &r.stdout;
    let line = |k: &str| out.lines().find(|l| l.starts_with(&format!("{k} "))).unwrap_or_else(|| panic!("{k}: {out}")).to_string();
    assert_eq!(line("reduce"), "reduce 2.5 10.0 4.0 1.0 2.0 4.0 2.50 3.5");
    assert_eq!(line("dims"), "dims [3.0, 7.0] [2.0, 3.0] [2, 1] [2, 2] [4, 1] [1, 2, 2] [2, 2] [4]");
    assert_eq!(
        line("both_ways"),
        "both_ways [1.0, 3.0, 5.0, 7.0] [0.0, -1.0, -2.0, -3.0] [12.0, 6.0, 4.0, 3.0] [1.0, 4.0, 9.0, 16.0] [2.0, 4.0, 8.0, 16.0] [1.0, 4.0, 9.0, 16.0] [-1.0, -2.0, -3.0, -4.0] [1.0, 4.0, 9.0, 16.0]"
    );
    assert_eq!(line("compare"), "compare true true true [0.0, 0.0, 1.0, 1.0] 0.5");
    // Row 0's target logit is 1 above the other, row 1's 1 below: softplus(-1) and softplus(1).
    let ce = ((1.0 + (-1f64).exp()).ln() + (1.0 + 1f64.exp()).ln()) / 2.0;
    assert_eq!(line("ce"), format!("ce {ce:.6} [1.0, 1.0] [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]"));
    assert_eq!(
        line("maths"),
        format!("maths {:.6} 10.0000 [2.0, 1.0, 0.0, 1.0] 2.0 [1.5, 2.0, 3.0, 3.0] [2.0, 2.0, 3.0, 4.0]", 1.0 / (1.0 + (-1f64).exp()))
    );
    assert_eq!(line("kinds"), "kinds 0.5 [2.0, 1.0] [1.0, 2.0, 3.0, 4.0] 2 4");
    assert!(out.contains("if_works"), "{out}");
}

/// A fit whose closure metric is the constant `v`: named and lower-is-better, or unnamed.
fn metric_script(metric: &str) -> String {
    script(
        "\"cross_entropy\"",
        &format!("let v = param(\"v\", 1.0);\nlet learn = learner(dls, learn.model(), #{{ metrics: [{metric}], splitter: \"none\" }});\nlearn.fit(1, 1e-3);"),
    )
}

#[test]
fn a_named_lower_is_better_metric_is_ranked_by_its_direction() {
    let sb = Sandbox::new();
    sb.write("named.rhai", &metric_script("metric(|p, t| v, #{ name: \"rmse\", lower_is_better: true }), |p, t| v"));
    for v in ["0.25", "0.75"] {
        sb.run(&["named.rhai", "--set", &format!("v={v}")]).ok();
    }
    let rec = sb.record(&sb.last_run());
    assert_eq!(rec["goals"]["rmse"].as_str(), Some("min"), "{rec:?}");
    assert!(rec["goals"].get("metric2").is_none(), "an unnamed closure has no direction: {rec:?}");
    let r = sb.run(&["compare", "last~1", "last"]);
    r.ok();
    let row = |name: &str| r.stdout.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("{name}: {}", r.stdout)).to_string();
    assert!(row("rmse").contains("0.2500 *") && !row("rmse").contains("0.7500 *"), "the lower rmse is best:\n{}", r.stdout);
    assert!(!row("metric2").contains('*'), "unnamed closures are not ranked:\n{}", r.stdout);
    sb.write("bad.rhai", &metric_script("metric(|p, t| v, #{ name: \"rmse\", lower: true })"));
    let r = sb.run(&["bad.rhai"]);
    assert!(r.code == 1 && r.stderr.contains("lower_is_better"), "a typo names the accepted keys: {}", r.stderr);
}
