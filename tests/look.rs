//! Looking at results through the real binary (issues #14, #29): sweeps named by their id,
//! comparisons labelled by the script and the params that differ, in sweep-point order,
//! grouped by fit, ranked by each metric's goal; readable plots; a report whose curves line
//! up runs of different batch sizes.
mod common;
use common::Sandbox;

/// Two fits (one epoch, then two), a closure metric with a goal and one without, and a
/// logged metric that shares its name with an epoch column.
const TRAIN: &str = r#"
let lr     = param("lr", 1e-2);
let bs     = param("bs", 8);
let files  = get_image_files(untar_data("orl_faces")).extract(0, 80);
let splits = group_splitter(files, parent_label(), #{ valid_pct: 0.25, seed: seed });
let pairs  = siamese_pairs(files, splits, parent_label(), #{ p_same: 0.5 });
let dls    = pair_loaders(pairs, #{ size: 32, channels: 1, bs: bs, normalize: "stats", cache: true });
dls.show_batch("batch.png");
let body   = convnet(#{ input: [32, 32], channels: [8, 16], kernels: [3, 3], pool: [true, true], embed: 16, bn: false });
let metrics = ["accuracy", #{ metric: |p, t| 1.0, name: "one", goal: "max" }, |p, t| 2.0];
let learn  = learner(dls, siamese_model(body, "l1"), #{ metrics: metrics, loss: "bce" });
learn.lr_find(#{ num_it: 12 });
learn.fit_one_cycle(1, lr);
learn.fit_one_cycle(2, lr);
log_metric("accuracy", 0.25);
"#;

fn sweep_id(stdout: &str) -> String {
    stdout.split_whitespace().find(|w| w.starts_with("sweep-")).expect("the sweep prints its id").trim_end_matches(':').to_string()
}

/// The 2x2 sweep's points, in the order the grid gives them (the last axis fastest).
const POINTS: [&str; 4] = ["bs=8 lr=0.01", "bs=8 lr=0.001", "bs=16 lr=0.01", "bs=16 lr=0.001"];

#[test]
fn sweeps_by_id_and_readable_comparisons() {
    let sb = Sandbox::new();
    sb.write("t.rhai", TRAIN);
    let r = sb.run(&["sweep", "t.rhai", "--grid", "bs=8,16", "--grid", "lr=0.01,0.001"]);
    r.ok();
    let id = sweep_id(&r.stdout);

    // the id works everywhere a run name does
    let r = sb.run(&["runs", "--sweep", &id]);
    r.ok();
    assert_eq!(r.stdout.lines().count(), 5, "header and four runs: {}", r.stdout);
    let r = sb.run(&["runs", "--sweep", "sweep-nosuch"]);
    assert!(r.stdout.starts_with("no runs"), "{}", r.stdout);
    let r = sb.run(&["show", "last"]);
    r.ok();
    assert!(r.stdout.contains(&format!("sweep         {id}")), "{}", r.stdout);
    let r = sb.run(&["compare", "sweep-nosuch"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no sweep named `sweep-nosuch`"), "{}", r.stderr);

    // what each fit trained with and which way each metric is better, in run.toml
    let rec = sb.record(&sb.last_run());
    let fits = rec["fits"].as_array().expect("run.toml lists the logged fits");
    assert_eq!(fits.len(), 2);
    assert_eq!((fits[0]["batch_size"].as_integer(), fits[1]["epochs"].as_integer()), (Some(16), Some(2)), "{fits:?}");
    let goals = rec["goals"].as_table().unwrap();
    assert_eq!(["valid_loss", "accuracy", "one"].map(|k| goals.get(k).and_then(|g| g.as_str())), [Some("min"), Some("max"), Some("max")]);
    assert!(!goals.contains_key("metric2"), "a closure metric whose options say nothing is not ranked: {goals:?}");

    let r = sb.run(&["compare", &id]);
    r.ok();
    let out = &r.stdout;
    // columns labelled by the script and the differing params, in sweep-point order
    let header = out.lines().next().unwrap();
    let at: Vec<usize> = POINTS.iter().map(|p| header.find(&format!("t.rhai {p}")).unwrap_or_else(|| panic!("no `{p}` in {header}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]) && !header.contains("-t-"), "{out}");
    // grouped by fit; a one-epoch fit has single values, the two-epoch fit final and best
    let pos = |s: &str| out.find(s).unwrap_or_else(|| panic!("no `{s}` in\n{out}"));
    assert!(pos("\nfit 1\n") < pos("\n  valid_loss ") && pos("\n  valid_loss ") < pos("\nfit 2\n"), "{out}");
    assert!(pos("\nfit 2\n") < pos("\n  valid_loss (final)"), "{out}");
    assert!(!out[..pos("\nfit 2\n")].contains("(final)"), "no (final)/(best) for single values: {out}");
    assert!(out.contains("  metric2 (final)") && !out.contains("  metric2 (best)"), "an unranked metric has no best: {out}");
    // the logged `accuracy` is its own row, never mixed with the fits' accuracy columns
    let logged = out.lines().find(|l| l.starts_with("accuracy ")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(logged.split_whitespace().skip(1).collect::<Vec<_>>(), ["0.2500"; 4], "{out}");
    // the best run of a differing metric is marked
    assert!(out.contains(" *") && out.contains("* best of these runs"), "{out}");

    let r = sb.run(&["compare", &id, "--json"]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["labels"], serde_json::json!(POINTS.map(|p| format!("t.rhai {p}"))));
    for i in 0..4 {
        assert_eq!(v["metrics"]["accuracy"][i]["best"], 0.25, "{}", r.stdout);
    }
    assert!(v["metrics"]["fit 2 accuracy"][0]["final"].is_number());

    // the overlay plot: one chart per curve, readable size
    let r = sb.run(&["compare", &id, "--plot", "curves.png"]);
    r.ok();
    let img = image::open(sb.path().join("curves.png")).unwrap();
    assert!(img.width() >= 1800 && img.height() >= 1000, "{}x{}", img.width(), img.height());
    if let Ok(keep) = std::env::var("RUNNER_KEEP_PNG") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(sb.path().join("curves.png"), format!("{keep}/curves.png")).unwrap();
        let run = sb.last_run();
        for f in ["batch.png", "lr_find.png", "loss_fit2.png", "loss_fit3.png"] {
            let _ = std::fs::copy(run.join(f), format!("{keep}/{f}"));
        }
    }
    // batch.png: 32 px images magnified so their titles are readable
    let batch = image::open(sb.last_run().join("batch.png")).unwrap();
    assert!(batch.width() >= 3 * 2 * 160, "batch.png is {}x{}", batch.width(), batch.height());

    // the report: one page, rendered offline by a real browser
    let r = sb.run(&["report", &id, "-o", "report.html"]);
    r.ok();
    let page = sb.path().join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("position: sticky; left: 0") && html.contains("white-space: normal"), "sticky first column, wrapping headings");
    let keep = std::env::var("RUNNER_KEEP_PNG").ok();
    let shot = keep.as_ref().map(|k| std::path::PathBuf::from(k).join("report.png"));
    let url = format!("file://{}", page.display());
    let dom = common::rendered_dom(&url, shot.as_deref());
    if let Some(keep) = &keep {
        std::fs::copy(&page, format!("{keep}/report.html")).unwrap();
        std::fs::write(format!("{keep}/report.dom.html"), &dom).unwrap();
    }
    // one Vega chart per curve (per fit: train loss by batch, valid_loss, accuracy, one, metric2), drawn as SVG marks
    let charts = dom.matches("class=\"chart ").count();
    assert_eq!(charts, 10, "{dom:.3000}");
    assert!(dom.matches("<svg").count() >= charts && dom.matches("role=\"graphics-symbol\"").count() > 40, "charts rendered: {dom:.3000}");
    // against epochs by default, so that bs=8 and bs=16 end together; samples seen or batches on asking
    assert!(dom.matches(">epoch</text>").count() >= charts && !dom.contains(">samples seen</text>"), "{dom:.3000}");
    for axis in ["epoch", "batch", "samples"] {
        assert!(dom.contains(&format!("id=\"x-{axis}\"")), "a switch to {axis}: {dom:.3000}");
    }
    let by_samples = common::rendered_dom(&format!("{url}#x=samples"), None);
    assert!(by_samples.matches(">samples seen</text>").count() >= charts, "{by_samples:.3000}");
    // labelled by the script and the differing params; rows in sweep-point order, the grid first
    for p in POINTS {
        assert!(dom.contains(&format!(">t.rhai {p}<")), "{p}");
    }
    let rows: Vec<&str> = dom.split("<tr data-run=\"").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    let ids: Vec<String> = v["runs"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().rsplit('-').next().unwrap().to_string()).collect();
    assert_eq!(rows, ids, "rows in sweep-point order");
    let head = &dom[dom.find("<thead>").unwrap()..dom.find("</thead>").unwrap()];
    let col = |c: &str| head.find(&format!(">{c}<")).unwrap_or_else(|| panic!("no column {c}: {head}"));
    assert!(col("run") < col("bs") && col("bs") < col("lr") && col("lr") < col("status"), "the sweep's params first: {head}");
    assert!(head.contains(">fit 2 valid_<wbr>loss (best)<") && dom.contains("class=\"best\""), "metric columns, best marked: {head}");
    // one section per run, the first three open; pictures as thumbnails that open full size
    assert_eq!(dom.matches("<details class=\"run\"").count(), 4);
    assert_eq!(dom.matches(" open=\"\"").count(), 3, "{dom:.3000}");
    assert_eq!(dom.matches("<img class=\"thumb\" src=\"data:image/png;base64,").count(), 4 * 4, "batch, lr_find and 2 loss plots per run");
    assert!(dom.contains("id=\"viewer\""), "the full-size viewer");
}

#[test]
fn report_page_shows_failed_runs_and_their_errors() {
    let sb = Sandbox::new();
    let hello = common::project_root().join("experiments/hello.rhai").display().to_string();
    sb.run(&[&hello, "--set", "n=10"]).ok();
    sb.write("bad.rhai", "let n = param(\"n\", 3);\nlog_metric(\"mean\", 0.5);\nlet x = create_body(\"resnet35\");\n");
    assert_eq!(sb.run(&["bad.rhai"]).code, 1);
    let r = sb.run(&["report", "last~1", "last", "-o", "r.html"]);
    r.ok();
    let page = sb.path().join("r.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<link") && !html.contains("src=\"http"), "the page loads nothing from elsewhere");
    let dom = common::rendered_dom(&format!("file://{}", page.display()), None);
    assert!(dom.contains("status-failed") && dom.contains("unknown arch `resnet35`"), "the failed run and its error are shown");
    assert!(
        dom.contains(">hello.rhai n=10 scale=1.0<") && dom.contains(">bad.rhai n=3 scale=-<"),
        "runs labelled by the differing params: {dom:.3000}"
    );
    assert!(dom.contains("These runs logged no curves."), "single values make no charts");
    let r = sb.run(&["report", "nosuchrun"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no run named `nosuchrun`"), "{}", r.stderr);
}

/// A fresh machine without network: no data folder, an empty cache, downloads refused.
fn offline(sb: &Sandbox, args: &[&str]) -> common::Ran {
    let empty = sb.path().join("empty-data");
    std::fs::create_dir_all(&empty).unwrap();
    sb.command(args).env("RUNNER_DATA", &empty).env("RUNNER_CACHE", sb.path().join("cache")).env("RUNNER_OFFLINE", "1").output().unwrap().into()
}

#[test]
fn first_experiment_runs_offline_on_the_bundled_sample_and_says_so() {
    let sb = Sandbox::new();
    let pets = common::project_root().join("experiments/pets_siamese.rhai").display().to_string();
    let smoke = ["--set", "size=32", "--set", "bs=16", "--set", "epochs=1", "--set", "arch=resnet18", "--set", "lr_find_iters=8", "--device", "cpu"];
    let r = offline(&sb, &[&[pets.as_str()][..], &smoke[..]].concat());
    r.ok();
    assert!(r.stderr.contains("device: cpu ("), "the device is named at the start: {}", r.stderr);
    assert!(r.stderr.contains("using the bundled 148-photo sample") && r.stderr.contains("the full set: https://"), "loudly: {}", r.stderr);
    assert!(r.stdout.contains("valid_accuracy: 0."), "{}", r.stdout);
    let rec = sb.record(&sb.last_run());
    let data = rec["data"].as_array().expect("run.toml records the data");
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["name"].as_str(), Some("pets"));
    assert_eq!(data[0]["source"].as_str(), Some("bundled sample"));
    assert_eq!(data[0]["files"].as_integer(), Some(149), "148 photos and the README with their licence");
    assert!(data[0]["folder"].as_str().unwrap().ends_with("assets/data/oxford-iiit-pet-sample148"));

    // the same script on other data: compare says so
    sb.write("count.rhai", "let files = get_image_files(untar_data(\"pets\") + \"/images\");\nprint(`${files.len()} photos`);\n");
    let r = offline(&sb, &["count.rhai"]);
    r.ok();
    assert!(r.stdout.contains("148 photos"), "{}", r.stdout);
    let r = sb.run(&["count.rhai"]);
    r.ok();
    assert!(r.stdout.contains("370 photos"), "the shared 370-photo sample: {}", r.stdout);
    let r = sb.run(&["compare", "last~1", "last"]);
    r.ok();
    assert!(r.stdout.contains("pets (bundled sample): 149 files") && r.stdout.contains("pets (sample): 370 files"), "{}", r.stdout);
    assert!(r.stdout.contains("these runs used different data"), "{}", r.stdout);

    // nothing bundled for the other sets: the download error stands
    sb.write("faces.rhai", "let p = untar_data(\"orl_faces\");\n");
    let r = offline(&sb, &["faces.rhai"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("RUNNER_OFFLINE is set: not downloading"), "{}", r.stderr);
}

// Issue #25, 8: hostile text in params, metric names, run (script) names and errors cannot
// blank the page: every run gets its row, and the text shows as text.
#[test]
fn report_page_survives_hostile_text_in_every_field() {
    let sb = Sandbox::new();
    let evil = "<!--<script>";
    let script = format!(
        "let note = param(\"note\", \"plain\");\nfor i in 0..3 {{ log_metric(\"{evil}m\", i * 1.0); }}\nlog_metric(\"ok\", 1.0);\n\
         if note != \"plain\" {{ throw \"</script><!--<script> & \\u2028 went wrong\"; }}\n"
    );
    let name = format!("{evil}x<b>.rhai");
    sb.write(&name, &script);
    sb.run(&[&name]).ok();
    assert_eq!(sb.run(&[&name, "--set", &format!("note={evil}")]).code, 1);
    let r = sb.run(&["report", "last~1", "last", "-o", "r.html"]);
    r.ok();
    let dom = common::rendered_dom(&format!("file://{}", sb.path().join("r.html").display()), None);
    assert_eq!(dom.matches("<tr data-run=").count(), 2, "a row per run: {dom:.4000}");
    assert_eq!(dom.matches("<details class=\"run\" id=\"run-").count(), 2, "the details of each run");
    assert!(dom.contains(">note=&lt;!--&lt;script&gt;<"), "the param as text, labelling its run: {dom:.4000}");
    assert!(dom.contains("&lt;!--&lt;script&gt;m"), "the metric name as text");
    assert!(dom.contains("&lt;/script&gt;&lt;!--&lt;script&gt; &amp; \u{2028} went wrong"), "the error as text: {dom:.6000}");
    assert!(dom.contains("-&lt;!--&lt;script&gt;x&lt;b&gt;-"), "the run's folder, named after the script");
    assert!(dom.contains("class=\"chart "), "the curve of the hostile metric is drawn");
}
