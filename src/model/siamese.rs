//! A Siamese model: one shared encoder on both images of a pair, then a head that turns the
//! two into an answer (fastai's concat head, Koch et al.'s weighted L1, a scaled cosine, or
//! the plain distance a contrastive loss wants).
use super::head;
use super::layers::{self, embed, Seq};
use super::net::{checked_forward, Net, Output, SummaryRow};
use super::spec::{KindSpec, PairHeadSpec};
use super::{BodySpec, Model};
use anyhow::{bail, Result};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// How a Siamese model turns two embeddings into an answer.
enum PairHead {
    Concat(Seq),
    L1(nn::Linear),
    Cosine { scale: Tensor, shift: Tensor },
    Distance,
}

struct Siamese {
    body: Seq,
    pool: bool,
    head: PairHead,
    output: Output,
}

impl Net for Siamese {
    fn kind(&self) -> &'static str {
        "SiameseModel"
    }

    fn output(&self) -> Output {
        self.output
    }

    fn n_inputs(&self) -> usize {
        2
    }

    fn forward(&self, xs: &[Tensor], train: bool) -> Tensor {
        let a = self.body.forward_t(&xs[0], train);
        let b = self.body.forward_t(&xs[1], train);
        let pool = self.pool;
        match &self.head {
            PairHead::Concat(h) => h.forward_t(&Tensor::cat(&[a, b], 1), train),
            PairHead::L1(fc) => (embed(a, pool) - embed(b, pool)).abs().apply(fc).squeeze_dim(1),
            PairHead::Cosine { scale, shift } => {
                let cos = Tensor::cosine_similarity(&embed(a, pool), &embed(b, pool), 1, 1e-8);
                cos * scale + shift
            }
            PairHead::Distance => {
                let d = embed(a, pool) - embed(b, pool);
                (d.square().sum_dim_intlist(1, false, Kind::Float) + 1e-9).sqrt()
            }
        }
    }

    fn body(&self) -> &Seq {
        &self.body
    }

    fn summary_rows(&self, x: &Tensor, rows: &mut Vec<SummaryRow>) -> Result<()> {
        let f = self.body.trace(x, false, "body.", rows);
        match &self.head {
            PairHead::Concat(h) => {
                let both = Tensor::cat(&[f.shallow_clone(), f], 1);
                rows.push(("cat".into(), "cat(encoder(x1), encoder(x2))".into(), both.size()));
                let _ = h.trace(&both, false, "head.", rows);
            }
            head => {
                let out = checked_forward(self, &[x.shallow_clone(), x.shallow_clone()], false)?;
                rows.push(("embed".into(), "embedding".into(), embed(f, self.pool).size()));
                let kind = match head {
                    PairHead::L1(_) => "|e1 - e2| -> Linear",
                    PairHead::Cosine { .. } => "scale * cos(e1, e2) + shift",
                    _ => "||e1 - e2||",
                };
                rows.push(("head".into(), kind.into(), out.size()));
            }
        }
        Ok(())
    }
}

impl Model {
    /// One shared encoder applied to both images, then `head`.
    pub fn siamese(body: &BodySpec, head: &PairHeadSpec, device: Device) -> Result<Model> {
        let kind_spec = KindSpec::Siamese { head: head.clone() };
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let encoder = body.build(&(&root / "body"))?;
        let c = body.out_channels();
        let pool = body.outputs_feature_map();
        let (head, output) = match head {
            PairHeadSpec::Concat(spec) => {
                if !pool {
                    bail!("the concat head pools feature maps; {} outputs vectors (use head \"l1\", \"cosine\" or \"distance\")", body.name());
                }
                body.check_nf(spec.nf, 2 * c, "siamese (two feature maps concatenated)")?;
                (PairHead::Concat(head::create_head(&(&root / "head"), spec)?), Output::Logits)
            }
            PairHeadSpec::L1 => (PairHead::L1(layers::linear(&root / "head" / "fc", c, 1, true)), Output::Logit),
            PairHeadSpec::Cosine => {
                let h = &root / "head";
                let scale = h.var("scale", &[1], nn::Init::Const(10.0));
                let shift = h.var("shift", &[1], nn::Init::Const(-5.0));
                (PairHead::Cosine { scale, shift }, Output::Logit)
            }
            PairHeadSpec::Distance => (PairHead::Distance, Output::Distance),
        };
        Model::finish(vs, Siamese { body: encoder, pool, head, output }, body, Some(kind_spec))
    }

    /// A Siamese model over this model's body, its trained weights copied: after
    /// classification pretraining, compare pairs with `head`.
    pub fn siamese_from(&self, head: &PairHeadSpec) -> Result<Model> {
        let m = Model::siamese(&self.body, head, self.device())?;
        let mine = self.vs.variables();
        tch::no_grad(|| {
            for (name, mut v) in m.vs.variables().into_iter().filter(|(n, _)| n.starts_with("body.")) {
                v.copy_(&mine[&name]);
            }
        });
        Ok(m)
    }
}
