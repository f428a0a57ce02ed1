//! A cosine classifier: `scale * cos(embedding, class weight)`. It trains embeddings that
//! separate classes by angle, so a Siamese cosine head over the same body can compare
//! classes it never saw (classification pretraining for one-shot learning); with CosFace's
//! margin (or ArcFace's angular one), one class's embeddings gather tighter still.
use super::layers::{embed, unit_rows, Seq};
use super::margin::Margin;
use super::net::{checked_forward, Net, Output, SummaryRow};
use super::{BodySpec, KindSpec, Model};
use anyhow::{bail, Result};
use std::f64::consts::PI;
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

struct CosineClassifier {
    body: Seq,
    pool: bool,
    weight: Tensor,
    scale: f64,
    /// For training only: see `train_margin`.
    margin: Option<Margin>,
}

impl Net for CosineClassifier {
    fn kind(&self) -> &'static str {
        "CosineClassifier"
    }

    fn output(&self) -> Output {
        Output::Logits
    }

    fn forward(&self, xs: &[Tensor], train: bool) -> Tensor {
        let features = self.body.forward_t(&xs[0], train);
        unit_rows(&embed(features, self.pool)).matmul(&unit_rows(&self.weight).tr()) * self.scale
    }

    fn body(&self) -> &Seq {
        &self.body
    }

    fn summary_rows(&self, x: &Tensor, rows: &mut Vec<SummaryRow>) -> Result<()> {
        let f = self.body.trace(x, false, "body.", rows);
        rows.push(("embed".into(), "embedding".into(), embed(f, self.pool).size()));
        rows.push(("head".into(), "scale * cos(e, class weights)".into(), checked_forward(self, &[x.shallow_clone()], false)?.size()));
        Ok(())
    }

    fn train_margin(&self) -> Option<Margin> {
        self.margin
    }
}

impl Model {
    /// Body + cosine classifier over `n_out` classes; any body.
    pub fn cosine_classifier(body: &BodySpec, n_out: i64, scale: f64, device: Device) -> Result<Model> {
        if n_out < 2 || scale <= 0.0 {
            bail!("a cosine classifier needs at least 2 classes and a positive scale, got {n_out} classes, scale {scale}");
        }
        let vs = nn::VarStore::new(device);
        let b = body.build(&(vs.root() / "body"))?;
        let weight = (vs.root() / "head").var("weight", &[n_out, body.out_channels()], nn::Init::Randn { mean: 0.0, stdev: 0.01 });
        let spec = KindSpec::CosineClassifier { n_out, scale, margin: 0.0, arc_margin: 0.0 };
        Model::finish(vs, CosineClassifier { body: b, pool: body.outputs_feature_map(), weight, scale, margin: None }, body, Some(spec))
    }

    /// A cosine classifier trained with CosFace's additive margin `m` (a cosine, in [0, 1)):
    /// its default loss takes `scale * m` off each image's own-class logit, so that
    /// embeddings of one class gather tighter than the plain cosine classifier gathers them.
    pub fn with_cos_margin(self, m: f64) -> Result<Model> {
        if !(0.0..1.0).contains(&m) {
            bail!("a cosine margin must be in [0, 1), got {m}");
        }
        self.with_margin(|scale| (m > 0.0).then_some(Margin::Cos { scale, m }))
    }

    /// A cosine classifier trained with ArcFace's additive angular margin `m` (radians, in
    /// [0, pi/2)): its default loss scores each image's own class at `scale * cos(theta + m)`.
    pub fn with_arc_margin(self, m: f64) -> Result<Model> {
        if !(0.0..PI / 2.0).contains(&m) {
            bail!("an angular margin must be in [0, pi/2) radians, got {m}");
        }
        self.with_margin(|scale| (m > 0.0).then_some(Margin::Arc { scale, m }))
    }

    fn with_margin(mut self, margin: impl FnOnce(f64) -> Option<Margin>) -> Result<Model> {
        let kind = self.kind();
        let Some(net) = self.net_mut::<CosineClassifier>() else { bail!("a margin needs a cosine classifier, this is a {kind}") };
        net.margin = margin(net.scale);
        let (cos, arc) = match net.margin {
            Some(Margin::Cos { m, .. }) => (m, 0.0),
            Some(Margin::Arc { m, .. }) => (0.0, m),
            None => (0.0, 0.0),
        };
        if let Some(KindSpec::CosineClassifier { margin, arc_margin, .. }) = &mut self.kind_spec {
            (*margin, *arc_margin) = (cos, arc);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::Margin;
    use tch::{Kind, Tensor};

    #[test]
    fn arcface_widens_the_own_class_angle_and_nothing_else() {
        let scale = 10.0;
        // cosines 0.8 (own class of row 0), 0.1; -0.99 (own class of row 1: past pi - m), 0.3
        let cos = [0.8f64, 0.1, -0.99, 0.3];
        let logits = (Tensor::from_slice(&cos).view([2, 2]) * scale).to_kind(Kind::Float).set_requires_grad(true);
        let y = Tensor::from_slice(&[0i64, 0]);
        let m = 0.5;
        let out = Margin::Arc { scale, m }.apply(&logits, &y);
        let got = Vec::<f64>::try_from(out.to_kind(Kind::Double).view([-1])).unwrap();
        let want0 = scale * (0.8f64.acos() + m).cos();
        // theta = acos(-0.99) = 3.0 > pi - 0.5: the linear stand-in
        let want2 = scale * (-0.99 - (std::f64::consts::PI - m).sin() * m);
        for (g, w) in got.iter().zip([want0, 1.0, want2, 3.0]) {
            assert!((g - w).abs() < 1e-4, "{got:?}");
        }
        // the own-class logit drops, and gradients reach the logits
        assert!(got[0] < 8.0);
        out.sum(Kind::Float).backward();
        assert!(logits.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
        // CosFace: scale * m off the own class only
        let cosface = Margin::Cos { scale, m: 0.25 }.apply(&logits.detach(), &y);
        let got = Vec::<f64>::try_from(cosface.to_kind(Kind::Double).view([-1])).unwrap();
        for (g, w) in got.iter().zip([5.5, 1.0, -12.4, 3.0]) {
            assert!((g - w).abs() < 1e-4, "{got:?}");
        }
    }
}
