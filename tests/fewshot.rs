//! Few-shot primitives through the real binary: episodes, prototypes, N-way evaluation
//! over a Table, test-time augmentation. Tiny sizes on the ORL faces, a few seconds each.
mod common;
use common::Sandbox;
use std::collections::BTreeSet;

/// ORL faces split by person, as a table; a small untrained convnet on 16 px images.
const SETUP: &str = r#"
fn join(a) { let s = ""; for x in a { if s != "" { s += ","; } s += `${x}`; } s }
let files  = get_image_files(untar_data("orl_faces"));
let person = parent_label();
let split  = group_splitter(files, person, #{ valid_pct: 0.25, seed: 7 });
let t      = image_table(files, person, split);
"#;

const MODEL: &str = r#"
let dls  = image_loaders(t, #{ size: 16, method: "squish", channels: 1, normalize: "stats", bs: 16, flip: true, rotate: 10.0 });
let body = convnet(#{ input: [16, 16], in_channels: 1, channels: [8, 16], kernels: [3, 3], pool: [true, true], bn: true, embed: 16, sigmoid: false });
let model = classifier_model(body, "cosine", dls.vocab.len());
"#;

fn run(sb: &Sandbox, body: &str, seed: &str) -> String {
    let script = sb.write("fs.rhai", &format!("{SETUP}{body}"));
    let r = sb.run(&[script.to_str().unwrap(), "--device", "cpu", "--seed", seed]);
    r.ok();
    r.stdout
}

fn values<'a>(out: &'a str, key: &str) -> Vec<&'a str> {
    out.lines().filter_map(|l| l.strip_prefix(key)).collect()
}

fn parent(f: &str) -> String {
    std::path::Path::new(f).parent().unwrap().file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn episodes_draw_n_classes_by_k_shots_from_their_split_and_repeat_by_seed() {
    let sb = Sandbox::new();
    let body = r#"
for i in split.valid { print(`valid ${files[i]}`); }
for part in ["valid", "train"] {
    let eps = episodes(t, #{ n_way: 5, k_shot: 2, n_query: 3, n_episodes: 8, split: part });
    print(`${part}-len ${eps.len()}`);
    for i in 0..eps.len() {
        let e = eps[i];
        print(`${part}-ep ${join(e.classes)}|${join(e.support)}|${join(e.query)}|${join(e.query_y)}`);
    }
}
let r = episodes(t, #{ n_way: 11, split: "valid" });
"#;
    let script = sb.write("fs.rhai", &format!("{SETUP}{body}"));
    let r = sb.run(&[script.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(r.code, 1, "11 classes of 10 held-out people cannot be drawn");
    assert!(r.stderr.contains("11-way episodes need 11 classes") && r.stderr.contains("has 10 such classes"), "{}", r.stderr);

    let ok = body.replace("let r = episodes(t, #{ n_way: 11, split: \"valid\" });", "");
    let out = run(&sb, &ok, "42");
    let valid_people: BTreeSet<String> = values(&out, "valid ").iter().map(|f| parent(f)).collect();
    assert_eq!(valid_people.len(), 10);
    for part in ["valid", "train"] {
        assert_eq!(values(&out, &format!("{part}-len ")), ["8"]);
        let eps = values(&out, &format!("{part}-ep "));
        assert_eq!(eps.len(), 8);
        for ep in &eps {
            let f: Vec<Vec<&str>> = ep.split('|').map(|x| x.split(',').collect()).collect();
            let (classes, support, query, ys) = (&f[0], &f[1], &f[2], &f[3]);
            assert_eq!(classes.len(), 5);
            assert_eq!(classes.iter().collect::<BTreeSet<_>>().len(), 5, "distinct classes");
            assert_eq!((support.len(), query.len(), ys.len()), (10, 15, 15));
            for c in classes {
                assert_eq!(valid_people.contains(*c), part == "valid", "{part} episode drew {c}");
            }
            for (j, s) in support.iter().enumerate() {
                assert_eq!(parent(s), classes[j / 2], "support is class-major, 2 shots each");
            }
            for (q, y) in query.iter().zip(ys) {
                assert_eq!(parent(q), classes[y.parse::<usize>().unwrap()]);
            }
            let all: BTreeSet<&&str> = support.iter().chain(query.iter()).collect();
            assert_eq!(all.len(), 25, "support and query images never repeat");
        }
    }
    let eps = |o: &str| values(o, "valid-ep ").into_iter().map(String::from).collect::<Vec<_>>();
    assert_eq!(eps(&out), eps(&run(&sb, &ok, "42")), "same seed, same episodes");
    assert_ne!(eps(&out), eps(&run(&sb, &ok, "43")), "another seed, other episodes");
}

#[test]
fn prototypes_separate_toy_embeddings() {
    let sb = Sandbox::new();
    let script = sb.write(
        "toy.rhai",
        r#"
fn join(a) { let s = ""; for x in a { if s != "" { s += ","; } s += `${x}`; } s }
// Three classes around (10, 0), (0, 10), (-10, -10), two shots each; queries of classes 2, 0, 1.
let s = tensor([10.0, 1.0, 9.0, -1.0,  1.0, 10.0, -1.0, 9.0,  -10.0, -9.0, -9.0, -10.0]).reshape([6, 2]);
let q = tensor([-8.0, -11.0, 11.0, 0.5, 0.0, 8.0]).reshape([3, 2]);
let y = tensor([2.0, 0.0, 1.0]);
print(`protos ${join(prototypes(s, 3).to_array())}`);
for m in ["euclidean", "cosine"] {
    let l = proto_logits(prototypes(s, 3), q, m).to_array();
    let pred = [];
    for j in 0..3 { let b = 0; for c in 1..3 { if l[j * 3 + c] > l[j * 3 + b] { b = c; } } pred.push(b); }
    print(`${m} ${join(pred)} loss ${proto_loss(s, q, y, 3, m, 10.0).mean()}`);
}
"#,
    );
    let r = sb.run(&[script.to_str().unwrap(), "--device", "cpu"]);
    r.ok();
    assert_eq!(values(&r.stdout, "protos "), ["9.5,0.0,0.0,9.5,-9.5,-9.5"], "class means");
    for m in ["euclidean ", "cosine "] {
        let line = values(&r.stdout, m)[0];
        let (pred, loss) = line.split_once(" loss ").unwrap();
        assert_eq!(pred, "2,0,1", "{m}: every query to its own class");
        assert!(loss.parse::<f64>().unwrap() < 0.05, "{m}: separable episodes have a small loss, got {loss}");
    }
}

#[test]
fn bad_prototype_shapes_are_script_errors() {
    let sb = Sandbox::new();
    let script = sb.write("bad.rhai", "let s = tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).reshape([3, 2]);\nlet p = prototypes(s, 2);\n");
    let r = sb.run(&[script.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad.rhai:2") && r.stderr.contains("3 support embeddings do not split into 2 classes"), "{}", r.stderr);
}

#[test]
fn n_way_eval_over_a_table_matches_a_hand_count() {
    let sb = Sandbox::new();
    let body = format!(
        "{MODEL}{}",
        r#"
let eps = episodes(t, #{ n_way: 5, k_shot: 2, n_query: 2, n_episodes: 6, split: "valid" });
let r = n_way_eval(model, dls, eps, #{});
let right = 0;
let total = 0;
for i in 0..eps.len() {
    let e = eps[i];
    let l = proto_logits(prototypes(embed(model, dls, e.support, #{}), 5), embed(model, dls, e.query, #{}), "cosine").to_array();
    for j in 0..e.query.len() {
        let b = 0;
        for c in 1..5 { if l[j * 5 + c] > l[j * 5 + b] { b = c; } }
        if b == e.query_y[j] { right += 1; }
        total += 1;
    }
}
print(`eval ${r.accuracy} tasks ${r.tasks} ci ${r.ci95}`);
print(`hand ${right.to_float() / total.to_float()} of ${total}`);
"#
    );
    let out = run(&sb, &body, "42");
    let eval = values(&out, "eval ")[0];
    let hand = values(&out, "hand ")[0];
    let acc: f64 = eval.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(hand, format!("{acc} of 60"), "{out}");
    assert!(eval.contains("tasks 6"));
    let ci: f64 = eval.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(ci > 0.0 && ci < 0.5, "{ci}");
}

#[test]
fn tta_blends_augmented_passes_with_the_plain_prediction() {
    let sb = Sandbox::new();
    let body = format!(
        "{MODEL}{}",
        r#"
let some = [files[0], files[1], files[2]];
let plain = embed(model, dls, some, #{});
print(`shape ${join(plain.shape())}`);
print(`beta1 ${join(embed(model, dls, some, #{ tta: 3, beta: 1.0 }).to_array()) == join(plain.to_array())}`);
let aug = embed(model, dls, some, #{ tta: 2, beta: 0.0 }).to_array();
let half = embed(model, dls, some, #{ tta: 2, beta: 0.5 }).to_array();
let p = plain.to_array();
let worst = 0.0;
for i in 0..p.len() { let d = (half[i] - (p[i] + aug[i]) / 2.0).abs(); if d > worst { worst = d; } }
let moved = 0.0;
for i in 0..p.len() { moved += (aug[i] - p[i]).abs(); }
print(`lerp ${worst} moved ${moved}`);
let learn = learner(dls, model, #{ metrics: ["accuracy"], splitter: "none" });
print(`validate ${learn.validate().accuracy} tta1 ${learn.tta(#{ n: 2, beta: 1.0 }).accuracy} tta ${learn.tta(#{ n: 2 }).accuracy}`);
"#
    );
    let out = run(&sb, &body, "42");
    assert_eq!(values(&out, "shape "), ["3,16"]);
    assert_eq!(values(&out, "beta1 "), ["true"], "beta 1 is the plain embedding");
    let lerp = values(&out, "lerp ")[0];
    let (worst, moved) = lerp.split_once(" moved ").unwrap();
    assert!(worst.parse::<f64>().unwrap() < 1e-5, "beta 0.5 is the midpoint of plain and augmented mean: {lerp}");
    assert!(moved.parse::<f64>().unwrap() > 1e-3, "the augmentation changes embeddings: {lerp}");
    let v: Vec<&str> = values(&out, "validate ")[0].split(' ').collect();
    assert_eq!(v[0], v[2], "tta with beta 1 gives validate's accuracy");
    let a: f64 = v[4].parse().unwrap();
    assert!((0.0..=1.0).contains(&a));
}
