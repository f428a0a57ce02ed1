//! Parity with PyTorch: every registry arch's body (cut=-2), loaded from the `.pth` file
//! torchvision's own code wrote, and fastai's create_head, with random weights and
//! normalisation statistics, must give torchvision's eval-mode outputs to 1e-5.
mod common;
use runner::model::head::HeadSpec;
use runner::model::registry::ARCHS;
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
fn every_registry_body_and_fastai_head_match_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let archs: Vec<&str> = ARCHS.iter().map(|a| a.name).collect();
    let py = common::project_root().join(".venv/bin/python");
    let status = std::process::Command::new(&py)
        .arg(common::project_root().join("tests/py/model_parity.py"))
        .arg(dir.path())
        .args(&archs)
        .status()
        .expect("the .venv python (scripts/bootstrap creates it)");
    assert!(status.success());
    let x = read(&dir.path().join("input.safetensors")).remove("x").unwrap();
    for arch in archs {
        let body = BodySpec::arch(arch, -2, Some(dir.path().join(format!("{arch}.pth")))).unwrap();
        let model = Model::classifier(&body, &HeadSpec::new(body.out_channels(), 3), Device::Cpu).unwrap();
        weights::load_prefixed(&model.vs, "head", &dir.path().join(format!("{arch}_head.safetensors")), &[]).unwrap();
        let want = read(&dir.path().join(format!("{arch}_expected.safetensors")));
        let (feats, logits) = tch::no_grad(|| (model.features(&x, false), model.forward(&[x.shallow_clone()], false).unwrap()));
        assert!(want["logits"].std(true).double_value(&[]) > 1e-3, "reference outputs are not trivial");
        let scale = want["features"].abs().max().double_value(&[]);
        let d_body = max_diff(&feats, &want["features"]);
        let d_head = max_diff(&logits, &want["logits"]);
        println!("{arch}: body max abs diff {d_body:.2e} (outputs up to {scale:.2}), body+head {d_head:.2e}");
        assert!(d_body <= 1e-5, "{arch} body differs from torchvision by {d_body}");
        assert!(d_head <= 1e-5, "{arch} head differs from fastai's create_head by {d_head}");
    }
}
