//! Parity with PyTorch: torchvision ResNet bodies (cut=-2) and fastai's create_head, with
//! random weights and BatchNorm statistics, must give the same eval-mode outputs.
mod common;
use runner::model::head::HeadSpec;
use runner::model::{weights, BodySpec, Model};
use std::collections::HashMap;
use tch::{Device, Tensor};

fn read(path: &std::path::Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn resnet_bodies_and_fastai_head_match_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let py = common::project_root().join(".venv/bin/python");
    let status = std::process::Command::new(&py)
        .arg(common::project_root().join("tests/py/model_parity.py"))
        .arg(dir.path())
        .args(["resnet18", "resnet34", "resnet50"])
        .status()
        .expect("the .venv python (scripts/bootstrap creates it)");
    assert!(status.success());
    let x = read(&dir.path().join("input.safetensors")).remove("x").unwrap();
    for (arch, nf) in [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048)] {
        let body = BodySpec::resnet(arch, -2, Some(dir.path().join(format!("{arch}.safetensors")))).unwrap();
        let model = Model::classifier(&body, &HeadSpec::new(nf, 3), Device::Cpu).unwrap();
        weights::load_prefixed(&model.vs, "head", &dir.path().join(format!("{arch}_head.safetensors"))).unwrap();
        let want = read(&dir.path().join(format!("{arch}_expected.safetensors")));
        let (feats, logits) = tch::no_grad(|| (model.features(&x, false), model.forward(&[x.shallow_clone()], false).unwrap()));
        assert!(want["logits"].std(true).double_value(&[]) > 1e-3, "reference outputs are not trivial");
        let d_body = max_diff(&feats, &want["features"]);
        let d_head = max_diff(&logits, &want["logits"]);
        println!("{arch}: body max abs diff {d_body:.2e}, body+head {d_head:.2e}");
        assert!(d_body < 1e-4, "{arch} body differs from torchvision by {d_body}");
        assert!(d_head < 1e-4, "{arch} head differs from fastai's create_head by {d_head}");
    }
}
