//! An image classifier as fastai builds it: the body, then `create_head`'s pooling and
//! BatchNorm/Dropout/Linear stack, `[N, C]` class logits.
use super::head::{self, HeadSpec};
use super::layers::Seq;
use super::net::{Net, Output, SummaryRow};
use super::{BodySpec, KindSpec, Model};
use anyhow::{bail, Result};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

struct Classifier {
    body: Seq,
    head: Seq,
}

impl Net for Classifier {
    fn kind(&self) -> &'static str {
        "Classifier"
    }

    fn output(&self) -> Output {
        Output::Logits
    }

    fn forward(&self, xs: &[Tensor], train: bool) -> Tensor {
        self.head.forward_t(&self.body.forward_t(&xs[0], train), train)
    }

    fn body(&self) -> &Seq {
        &self.body
    }

    fn summary_rows(&self, x: &Tensor, rows: &mut Vec<SummaryRow>) -> Result<()> {
        let f = self.body.trace(x, false, "body.", rows);
        let _ = self.head.trace(&f, false, "head.", rows);
        Ok(())
    }
}

impl Model {
    /// Body + fastai head: an image classifier.
    pub fn classifier(body: &BodySpec, head: &HeadSpec, device: Device) -> Result<Model> {
        if !body.outputs_feature_map() {
            bail!("a classifier head pools a feature map; {} outputs a vector (use a ResNet body with cut -2)", body.name());
        }
        body.check_nf(head.nf, body.out_channels(), "classifier")?;
        let vs = nn::VarStore::new(device);
        let b = body.build(&(vs.root() / "body"))?;
        let h = head::create_head(&(vs.root() / "head"), head)?;
        Model::finish(vs, Classifier { body: b, head: h }, body, Some(KindSpec::Classifier { head: head.clone() }))
    }
}
