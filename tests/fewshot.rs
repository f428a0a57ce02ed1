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

/// A table of `alphabets x chars` classes with `rows` rows each, all in the validation split.
fn alphabet_table(alphabets: usize, chars: usize, rows: usize) -> runner::data::table::Table {
    use runner::data::table::{Column, Table};
    let mut labels = Vec::new();
    for a in 0..alphabets {
        for c in 0..chars {
            labels.extend(std::iter::repeat_n(format!("alpha{a}/char{c:02}"), rows));
        }
    }
    let n = labels.len();
    Table::new(vec![
        ("file".into(), Column::Str((0..n).map(|i| format!("f{i}.png")).collect())),
        ("label".into(), Column::Str(labels)),
        ("is_valid".into(), Column::Bool(vec![true; n])),
    ])
    .unwrap()
}

#[test]
fn within_parent_episodes_keep_to_one_alphabet_and_need_enough_classes_in_one() {
    use runner::data::episodes::{class_parent, sample_episodes, EpisodeSpec, Part};
    let t = alphabet_table(4, 6, 3);
    let spec = |n_way, within_parent| EpisodeSpec { n_way, k_shot: 1, n_query: 2, n_episodes: 40, part: Part::Valid, seed: 5, within_parent };
    let mixed = sample_episodes(&t, "label", &spec(5, false)).unwrap();
    let within = sample_episodes(&t, "label", &spec(5, true)).unwrap();
    let parents = |ep: &runner::data::episodes::Episode| ep.classes.iter().map(|c| class_parent(c).to_string()).collect::<BTreeSet<_>>();
    assert!(within.iter().all(|ep| parents(ep).len() == 1 && ep.classes.len() == 5), "one alphabet per episode");
    assert!(mixed.iter().any(|ep| parents(ep).len() > 1), "without the option, episodes mix alphabets");
    let used: BTreeSet<String> = within.iter().flat_map(parents).collect();
    assert_eq!(used.len(), 4, "every alphabet with enough classes gets episodes");
    assert_eq!(within, sample_episodes(&t, "label", &spec(5, true)).unwrap(), "seeded");
    // 8 classes exist, but no alphabet has 7 of them.
    let e = sample_episodes(&t, "label", &spec(7, true)).unwrap_err().to_string();
    assert!(e.contains("7-way episodes need 7 classes") && e.contains("under one parent"), "{e}");
    assert!(sample_episodes(&t, "label", &spec(7, false)).is_ok());
    assert_eq!((class_parent("Greek/character03"), class_parent("s1")), ("Greek", ""));
}

#[test]
fn a_cosine_margin_selects_cosface_and_leaves_predictions_alone() {
    use runner::learn::loss::Loss;
    use runner::model::convnet::{ConvNetSpec, Padding};
    use runner::model::{BodySpec, Model};
    let body = BodySpec::ConvNet(ConvNetSpec {
        in_channels: 1,
        channels: vec![4],
        kernels: vec![3],
        pool: vec![true],
        batch_norm: false,
        embed: 8,
        sigmoid: false,
        input: (8, 8),
        padding: Padding::Valid,
    });
    let plain = Model::cosine_classifier(&body, 3, 16.0, tch::Device::Cpu).unwrap();
    assert_eq!(Loss::default_for(&plain, runner::learn::TargetKind::Classes), Loss::CrossEntropy);
    let x = tch::Tensor::randn([2, 1, 8, 8], (tch::Kind::Float, tch::Device::Cpu));
    let before = plain.forward(&[x.shallow_clone()], false).unwrap();
    let m = plain.with_cos_margin(0.25).unwrap();
    match Loss::default_for(&m, runner::learn::TargetKind::Classes) {
        Loss::MarginCrossEntropy { margin } => assert_eq!(margin, runner::model::Margin::Cos { scale: 16.0, m: 0.25 }),
        other => panic!("a margin should select CosFace, got {other}"),
    }
    assert!(m.forward(&[x], false).unwrap().equal(&before), "the margin is for the loss only");
    let again = Model::cosine_classifier(&body, 3, 16.0, tch::Device::Cpu).unwrap();
    let e = again.with_cos_margin(1.0).err().expect("a margin of 1 is refused").to_string();
    assert!(e.contains("[0, 1)"), "{e}");
}

#[test]
fn the_margin_comes_off_the_target_logit_only_in_the_loss() {
    use runner::learn::loss::Loss;
    use runner::model::Output;
    use tch::{Kind, Tensor};
    let out = Tensor::from_slice(&[2.0f32, 1.0, 0.0, 0.5, 0.5, 3.0]).view([2, 3]);
    let y = Tensor::from_slice(&[0i64, 2]);
    let m = Loss::MarginCrossEntropy { margin: runner::model::Margin::Cos { scale: 2.0, m: 0.25 } };
    let shifted = Tensor::from_slice(&[1.5f32, 1.0, 0.0, 0.5, 0.5, 2.5]).view([2, 3]);
    let want = Loss::CrossEntropy.per_item(&shifted, &y).unwrap();
    assert!(m.per_item(&out, &y).unwrap().allclose(&want, 1e-6, 1e-6, false));
    assert!((m.compute(&out, &y).unwrap().double_value(&[]) - want.mean(Kind::Float).double_value(&[])).abs() < 1e-6);
    // A margin makes the loss larger than plain cross-entropy; predictions ignore it.
    assert!(m.compute(&out, &y).unwrap().double_value(&[]) > Loss::CrossEntropy.compute(&out, &y).unwrap().double_value(&[]));
    assert!(m.probs(&out, 0.0).allclose(&out.softmax(-1, Kind::Float), 1e-6, 1e-6, false));
    let classes = runner::learn::TargetKind::Classes;
    assert!(m.check(Output::Logits, classes).is_ok() && m.check(Output::Logit, classes).is_err());
}

/// ORL faces by person at 16 px, as the episodic tests load them.
fn orl_episodes(layout: &runner::data::sampler::EpisodeLayout, seed: u64) -> runner::data::DataLoaders {
    use runner::data::{blocks, files, labels::Labeller, splitters, LoaderConfig};
    let root = common::datasets().join("orl_faces");
    let files = files::get_image_files(&[root]).unwrap().files;
    let labels: Vec<String> = files.iter().map(|f| Labeller::Parent(1).label(f).unwrap()).collect();
    let split = splitters::group_splitter(&labels, 0.25, 7).unwrap();
    let t = blocks::image_table(&files, runner::data::table::Column::Str(labels), &split).unwrap();
    let cache_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pixels");
    let cfg = LoaderConfig { size: 16, channels: 1, num_workers: 2, seed, cache: true, cache_dir, ..LoaderConfig::default() };
    runner::data::blocks::episode_loaders(&t, &blocks::TableColumns::default(), &cfg, layout).unwrap()
}

fn layout(n_way: usize, k_shot: usize, n_query: usize) -> runner::data::sampler::EpisodeLayout {
    runner::data::sampler::EpisodeLayout { n_way, k_shot, n_query, episodes: 4, valid_episodes: 3, valid_query: Some(1), within_parent: false }
}

#[test]
fn episode_batches_are_class_major_seeded_and_new_each_epoch() {
    let dls = orl_episodes(&layout(5, 2, 3), 11);
    assert_eq!((dls.train.len(), dls.valid.len()), (4, 3));
    let batches: Vec<_> = dls.train.iter(0).unwrap().map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 4);
    assert_eq!(batches[0].xs[0].size(), [25, 1, 16, 16], "5-way x (2 shots + 3 queries)");
    assert_eq!(Vec::<i64>::try_from(&batches[0].y).unwrap(), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4], "queries' episode-local classes");
    // The first episode's items with their data classes: support class-major, then queries.
    let items: Vec<i64> = dls.train.preview(0, 25).unwrap().into_iter().map(|(_, y)| y).collect();
    let ways: Vec<i64> = items.iter().step_by(2).take(5).copied().collect();
    assert_eq!(ways.iter().collect::<BTreeSet<_>>().len(), 5, "5 distinct people: {items:?}");
    for (j, y) in items.iter().enumerate() {
        let way = if j < 10 { j / 2 } else { (j - 10) / 3 };
        assert_eq!(*y, ways[way], "item {j} of {items:?}");
    }
    let valid_people: BTreeSet<i64> = dls.valid.preview(0, 45).unwrap().into_iter().map(|(_, y)| y).collect();
    assert!(valid_people.len() <= 10 && items.iter().all(|y| !valid_people.contains(y)), "validation episodes are of held-out people");
    let vb = dls.valid.iter(0).unwrap().next().unwrap().unwrap();
    assert_eq!((vb.xs[0].size()[0], vb.y.size()), (15, vec![5]), "validation: 2 shots + 1 query");
    // Seeded: another build draws the same; another epoch draws other episodes.
    let again = orl_episodes(&layout(5, 2, 3), 11);
    assert!(again.train.iter(0).unwrap().next().unwrap().unwrap().xs[0].equal(&batches[0].xs[0]));
    assert_ne!(dls.train.preview(1, 25).unwrap().into_iter().map(|(_, y)| y).collect::<Vec<_>>(), items);
    use runner::learn::LearnData;
    assert_eq!(dls.vocab(), ["way0", "way1", "way2", "way3", "way4"], "the learner's classes are the ways");
    assert_eq!(dls.vocab.len(), 40, "dls.vocab keeps the people");
}

fn tiny_body() -> runner::model::BodySpec {
    use runner::model::convnet::{ConvNetSpec, Padding};
    runner::model::BodySpec::ConvNet(ConvNetSpec {
        in_channels: 1,
        channels: vec![8, 16],
        kernels: vec![3, 3],
        pool: vec![true, true],
        batch_norm: true,
        embed: 16,
        sigmoid: false,
        input: (16, 16),
        padding: Padding::Valid,
    })
}

#[test]
fn protonet_forward_is_scaled_proto_logits_of_its_queries() {
    use runner::model::prototypes::{proto_logits, prototypes, Metric};
    use runner::model::{Model, ProtoShape};
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let m = Model::protonet(&tiny_body(), ProtoShape { n_way: 3, k_shot: 2, metric, scale: 7.0 }, tch::Device::Cpu).unwrap();
        let x = tch::Tensor::randn([3 * (2 + 4), 1, 16, 16], (tch::Kind::Float, tch::Device::Cpu));
        let out = m.forward(&[x.shallow_clone()], false).unwrap();
        assert_eq!(out.size(), [12, 3]);
        let e = m.embedding(&x, false);
        let want = proto_logits(&prototypes(&e.narrow(0, 0, 6), 3).unwrap(), &e.narrow(0, 6, 12), metric) * 7.0;
        assert!(out.allclose(&want, 1e-5, 1e-5, false), "{metric:?}");
        let e = m.forward(&[x.narrow(0, 0, 7)], false).unwrap_err().to_string();
        assert!(e.contains("3-way 2-shot protonet") && e.contains("got 7 images"), "{e}");
    }
    let e = Model::protonet(&tiny_body(), ProtoShape { n_way: 3, k_shot: 0, metric: Metric::Cosine, scale: 1.0 }, tch::Device::Cpu).err().unwrap();
    assert!(e.to_string().contains("k_shot 0"), "{e}");
}

#[test]
fn a_few_episodic_steps_lower_the_loss_through_the_training_loop() {
    let sb = Sandbox::new();
    let body = r#"
// 8 people, a third of each one's photos held back: validation episodes of the same people.
let few = files.extract(0, 80);
let tiny = image_table(few, person, random_splitter(few, #{ valid_pct: 0.3, seed: 1 }));
let dls = episode_loaders(tiny, #{ size: 16, method: "squish", channels: 1, normalize: "stats", cache: true,
                                   n_way: 5, k_shot: 2, n_query: 3, episodes: 8, valid_episodes: 10, valid_query: 1 });
let body = convnet(#{ input: [16, 16], in_channels: 1, channels: [8, 16], kernels: [3, 3], pool: [true, true], bn: true, embed: 16, sigmoid: false });
let model = protonet(body, #{ n_way: 5, k_shot: 2, metric: "cosine", scale: 10.0 });
let learn = learner(dls, model, #{ metrics: ["accuracy"] });
print(`before ${learn.validate().valid_loss}`);
learn.fit_one_cycle(4, 1e-2);
let v = learn.validate();
print(`people ${dls.vocab.len()}`);
print(`after ${v.valid_loss} ${v.accuracy}`);
let eps = episodes(t, #{ n_way: 5, k_shot: 1, n_query: 1, n_episodes: 20 });
print(`oneshot ${n_way_eval(model, dls, eps, #{ metric: "cosine" }).accuracy}`);
print(`confused ${learn.interpretation().most_confused().len()}`);
"#;
    let out = run(&sb, body, "3");
    let num = |k: &str| values(&out, k)[0].split(' ').next().unwrap().parse::<f64>().unwrap();
    let (before, after) = (num("before "), num("after "));
    assert_eq!(values(&out, "people "), ["8"]);
    assert!(after < before * 0.8, "episodic training lowers the validation loss: {before} -> {after}\n{out}");
    assert!(num("oneshot ") > 0.2, "the trained body beats chance (0.2) on 5-way one-shot tasks\n{out}");
    let run_dir = sb.last_run();
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().filter(|l| l.contains("\"kind\":\"epoch\"")).count(), 4, "one record per epoch");
    assert_eq!(metrics.lines().filter(|l| l.contains("\"kind\":\"batch\"")).count(), 4 * 8, "one record per episode");
}

#[test]
fn episodic_misuse_names_the_value_at_fault() {
    let sb = Sandbox::new();
    let eps = r#"let dls = episode_loaders(t, #{ size: 16, channels: 1, n_way: N, k_shot: K, n_query: 2, episodes: 4, valid_episodes: 2 });"#;
    let body = r#"let b = convnet(#{ input: [16, 16], in_channels: 1, channels: [8], kernels: [3], pool: [true], embed: 8, sigmoid: false });"#;
    let cases = [
        (eps.replace("N", "5").replace("K", "0"), "k_shot >= 1"),
        (eps.replace("N", "31").replace("K", "1"), "31-way episodes need 31 classes"),
        (
            format!("{}\n{body}\nlearner(dls, protonet(b, #{{ n_way: 5, k_shot: 2 }}), #{{}});", eps.replace("N", "5").replace("K", "1")),
            "the protonet is 5-way 2-shot but the episode loaders give 5-way 1-shot",
        ),
        (
            format!("{}\n{body}\nlearner(dls, classifier_model(b, \"cosine\", 30), #{{}});", eps.replace("N", "5").replace("K", "1")),
            "episode loaders feed a protonet",
        ),
        (
            format!("let dls = image_loaders(t, #{{ size: 16, channels: 1, bs: 8 }});\n{body}\nlearner(dls, protonet(b, #{{}}), #{{}});"),
            "build its data with episode_loaders",
        ),
        (eps.replace("N", "5").replace("K", "1").replace("episodes: 4", "episodes: 4, bs: 8"), "unknown episode_loaders option `bs`"),
    ];
    for (script, want) in cases {
        let path = sb.write("bad.rhai", &format!("{SETUP}{script}"));
        let r = sb.run(&[path.to_str().unwrap(), "--device", "cpu"]);
        assert_eq!(r.code, 1, "{script}\n{}", r.stderr);
        assert!(r.stderr.contains(want) && r.stderr.contains("bad.rhai:"), "want `{want}`:\n{}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}
