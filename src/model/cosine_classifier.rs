//! A cosine classifier: `scale * cos(embedding, class weight)`. It trains embeddings that
//! separate classes by angle, so a Siamese cosine head over the same body can compare
//! classes it never saw (classification pretraining for one-shot learning); with CosFace's
//! margin, one class's embeddings gather tighter still.
use super::layers::{embed, unit_rows, Seq};
use super::net::{checked_forward, Net, Output, SummaryRow};
use super::{BodySpec, Model};
use anyhow::{bail, Result};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

struct CosineClassifier {
    body: Seq,
    pool: bool,
    weight: Tensor,
    scale: f64,
    /// A cosine (CosFace's `m`), for training only: see `train_margin`.
    margin: f64,
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

    /// The margin in logits: `scale * m`, since the logits are scaled cosines.
    fn train_margin(&self) -> Option<f64> {
        (self.margin > 0.0).then_some(self.scale * self.margin)
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
        Model::finish(vs, CosineClassifier { body: b, pool: body.outputs_feature_map(), weight, scale, margin: 0.0 }, body)
    }

    /// A cosine classifier trained with CosFace's additive margin `m` (a cosine, in [0, 1)):
    /// its default loss takes `scale * m` off each image's own-class logit, so that
    /// embeddings of one class gather tighter than the plain cosine classifier gathers them.
    pub fn with_cos_margin(mut self, m: f64) -> Result<Model> {
        let kind = self.kind();
        let Some(net) = self.net_mut::<CosineClassifier>() else { bail!("a margin needs a cosine classifier, this is a {kind}") };
        if !(0.0..1.0).contains(&m) {
            bail!("a cosine margin must be in [0, 1), got {m}");
        }
        net.margin = m;
        Ok(self)
    }
}
