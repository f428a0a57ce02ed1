//! A prototypical network (Snell et al.) as a model: each batch is one episode, and the
//! output is its queries' scaled closeness to the class means of its support embeddings,
//! so that the ordinary cross-entropy and accuracy apply. The math is `prototypes`'.
use super::layers::{embed, Seq};
use super::net::{Net, Output, SummaryRow};
use super::prototypes::{episode_logits, Metric};
use super::{BodySpec, Model};
use anyhow::{bail, Result};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

crate::options! {
    /// What a prototypical network reads from its batch of one episode: `n_way * k_shot`
    /// support images (class-major), then the queries; `scale` multiplies its logits.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct ProtoShape {
        /// classes per episode (as the episode loaders draw them)
        opt n_way: usize = 5,
        /// support images per class
        opt k_shot: usize = 1,
        /// closeness of a query to a prototype: euclidean (Snell et al.) or cosine
        opt metric: Metric = Metric::Euclidean,
        /// the logits' scale (cosine needs about 10 to train)
        opt scale: f64 = 1.0,
    }
}

struct ProtoNet {
    body: Seq,
    pool: bool,
    shape: ProtoShape,
}

impl Net for ProtoNet {
    fn kind(&self) -> &'static str {
        "ProtoNet"
    }

    fn output(&self) -> Output {
        Output::Logits
    }

    /// A batch must be one episode: the support images, then at least one query per class.
    fn check_batch(&self, xs: &[Tensor]) -> Result<()> {
        let shape = &self.shape;
        let (rows, support) = (xs[0].size().first().copied().unwrap_or(0) as usize, shape.n_way * shape.k_shot);
        if rows <= support || (rows - support) % shape.n_way != 0 {
            bail!(
                "a {}-way {}-shot protonet reads a batch as one episode ({support} support images, then queries, a multiple of {}); got {rows} images",
                shape.n_way,
                shape.k_shot,
                shape.n_way
            );
        }
        Ok(())
    }

    fn forward(&self, xs: &[Tensor], train: bool) -> Tensor {
        let shape = &self.shape;
        let e = embed(self.body.forward_t(&xs[0], train), self.pool);
        let support = (shape.n_way * shape.k_shot) as i64;
        let (s, q) = (e.narrow(0, 0, support), e.narrow(0, support, e.size()[0] - support));
        episode_logits(&s, &q, shape.n_way, shape.metric, shape.scale).expect("support rows checked by check_batch")
    }

    fn body(&self) -> &Seq {
        &self.body
    }

    fn summary_rows(&self, x: &Tensor, rows: &mut Vec<SummaryRow>) -> Result<()> {
        let shape = &self.shape;
        let f = self.body.trace(x, false, "body.", rows);
        let e = embed(f, self.pool);
        rows.push(("embed".into(), "embedding".into(), e.size()));
        let protos = vec![shape.n_way as i64, e.size()[1]];
        rows.push(("protos".into(), format!("class means of {} support embeddings each", shape.k_shot), protos));
        rows.push((
            "head".into(),
            format!("{} * {:?} closeness of each query to each prototype", shape.scale, shape.metric),
            vec![-1, shape.n_way as i64],
        ));
        Ok(())
    }

    fn episode_shape(&self) -> Option<(usize, usize)> {
        Some((self.shape.n_way, self.shape.k_shot))
    }
}

impl Model {
    /// A prototypical network over `body` (see `ProtoShape`); its output is
    /// `[n_way * n_query, n_way]`. It has no head: its body is what a cosine classifier's
    /// body is, for `embedding`, `siamese_from` and N-way evaluation.
    pub fn protonet(body: &BodySpec, shape: ProtoShape, device: Device) -> Result<Model> {
        if shape.n_way < 2 || shape.k_shot < 1 || shape.scale <= 0.0 || !shape.scale.is_finite() {
            bail!(
                "a protonet needs n_way >= 2, k_shot >= 1 and a positive scale, got n_way {}, k_shot {}, scale {}",
                shape.n_way,
                shape.k_shot,
                shape.scale
            );
        }
        let vs = nn::VarStore::new(device);
        let b = body.build(&(vs.root() / "body"))?;
        Model::finish(vs, ProtoNet { body: b, pool: body.outputs_feature_map(), shape }, body, None)
    }
}
