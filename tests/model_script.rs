//! Models from scripts: the tutorial's model shape, summary, and clear errors at the
//! script line for unknown archs, bad cuts, mismatched heads and bad weight files.
mod common;
use common::Sandbox;

#[test]
fn siamese_resnet_summary_from_a_script() {
    let sb = Sandbox::new();
    sb.write(
        "m.rhai",
        r#"let body  = create_body("resnet34", #{ cut: -2 });
let head  = create_head(body.out_channels() * 2, 2, #{ ps: 0.5 });
let model = siamese_model(body, head);
print(model.summary(#{ input: [3, 64, 64] }));
let small = siamese_model(convnet(#{ input: [105, 105], channels: [8, 16], kernels: [10, 7], pool: [true, true], embed: 32 }), "l1");
print(small.summary());
model.save("m");
"#,
    );
    let r = sb.run(&["m.rhai"]);
    r.ok();
    assert!(r.stdout.contains("SiameseModel (2 inputs of 2 x 3 x 64 x 64)"), "{}", r.stdout);
    assert!(r.stdout.contains("body.layer4") && r.stdout.contains("2 x 512 x 2 x 2"), "{}", r.stdout);
    assert!(r.stdout.contains("2 x 2048"), "concat pool doubles 1024 channels: {}", r.stdout);
    // resnet34 body 21,284,672 + head (BN 2048*2, Linear 2048*512, BN 512*2, Linear 512*2)
    let want = 21_284_672 + 4096 + 2048 * 512 + 1024 + 1024;
    assert!(r.stdout.contains(&format!("Total params: {want}")), "{}", r.stdout);
    assert!(r.stdout.contains("|e1 - e2| -> Linear"), "{}", r.stdout);
    assert!(sb.last_run().join("models/m.safetensors").is_file());
}

#[test]
fn model_errors_point_at_the_script_line() {
    let sb = Sandbox::new();
    let cases = [
        ("let b = create_body(\"resnet35\");", "unknown arch `resnet35`"),
        ("let b = create_body(\"resnet34\", #{ cut: -12 });", "cut -12 is out of range for resnet34"),
        ("let b = create_body(\"resnet34\", #{ cutt: -2 });", "unknown create_body option `cutt`"),
        (
            "let m = siamese_model(create_body(\"resnet18\"), create_head(512, 2));",
            "head nf = 512, but the siamese (two feature maps concatenated) gives 1024",
        ),
        (
            "let b = create_body(\"resnet34\", #{ weights: \"nope.safetensors\" });\nlet m = siamese_model(b, \"l1\");",
            "weights file nope.safetensors not found",
        ),
        ("let m = convnet(#{ input: [20, 20] });", "shrinks to nothing at conv layer"),
        ("let m = convnet(#{ input: [28, 28], padding: \"full\" });", "`padding` must be \"valid\" or \"same\""),
        ("let m = classifier_model(convnet(#{ input: [105, 105] }), \"linear\", 3);", "unknown classifier head `linear`"),
        ("let m = classifier_model(convnet(#{ input: [105, 105] }), \"cosine\", 1);", "at least 2 classes"),
    ];
    for (i, (src, want)) in cases.iter().enumerate() {
        let name = format!("e{i}.rhai");
        sb.write(&name, &format!("print(\"start\");\n{src}\n"));
        let r = sb.run(&[&name]);
        assert_eq!(r.code, 1, "{src}");
        assert!(r.stderr.contains(&format!("{name}:2:")), "{src}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{src}: expected `{want}` in {}", r.stderr);
    }
}

#[test]
fn weights_that_do_not_fit_are_named() {
    let sb = Sandbox::new();
    let ok = std::process::Command::new(common::project_root().join(".venv/bin/python"))
        .arg(common::project_root().join("tests/py/model_parity.py"))
        .arg(sb.path())
        .arg("resnet18")
        .status()
        .unwrap()
        .success();
    assert!(ok);
    sb.write("w.rhai", "let b = create_body(\"resnet34\", #{ weights: \"resnet18.pth\" });\nlet m = siamese_model(b, \"l1\");\n");
    let r = sb.run(&["w.rhai"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("w.rhai:2:") && r.stderr.contains("missing") && r.stderr.contains("layer1.2.bn1.bias"), "{}", r.stderr);
    std::fs::write(sb.path().join("bad.safetensors"), b"not a safetensors file").unwrap();
    sb.write("c.rhai", "let m = siamese_model(create_body(\"resnet18\", #{ weights: \"bad.safetensors\" }), \"l1\");\n");
    let r = sb.run(&["c.rhai"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("c.rhai:1:") && r.stderr.contains("cannot read weights bad.safetensors"), "{}", r.stderr);
    sb.write(
        "g.rhai",
        "let b = create_body(\"resnet18\", #{ weights: \"resnet18.pth\" });\nlet m = siamese_model(b, \"cosine\");\nprint(\"loaded\");\n",
    );
    let r = sb.run(&["g.rhai"]);
    r.ok();
}

#[test]
fn torchvision_pth_converts_in_one_step() {
    let sb = Sandbox::new();
    let py = common::project_root().join(".venv/bin/python");
    let ok = std::process::Command::new(&py)
        .current_dir(sb.path())
        .args(["-c", "import torch, torchvision; torch.save(torchvision.models.resnet18().state_dict(), 'r18.pth')"])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let r = sb.run(&["weights", "convert", "r18.pth", "r18.safetensors"]);
    r.ok();
    assert!(r.stdout.contains("102 tensors"), "{}", r.stdout);
    sb.write("l.rhai", "let m = siamese_model(create_body(\"resnet18\", #{ weights: \"r18.safetensors\" }), \"l1\");\nprint(\"ok\");\n");
    sb.run(&["l.rhai"]).ok();
    let r = sb.run(&["weights", "convert", "missing.pth", "x.safetensors"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no weights file missing.pth"), "{}", r.stderr);
}
