//! Prototypical networks (Snell et al. 2017): a class is the mean of its support
//! embeddings (its prototype), and a query belongs to the nearest prototype. With one shot
//! and the cosine metric this is exactly the Siamese cosine model's nearest support image.
//! Plain tensor math below both the protonet model and the learner's N-way evaluation.
use super::layers::unit_rows;
use crate::opts::Choice;
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// How a query's closeness to a prototype is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Negative squared Euclidean distance (Snell et al.).
    Euclidean,
    /// Cosine similarity (what a cosine classifier trains embeddings for).
    Cosine,
}

impl std::str::FromStr for Metric {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Metric> {
        Ok(match s {
            "euclidean" => Metric::Euclidean,
            "cosine" => Metric::Cosine,
            other => bail!("unknown metric `{other}`: use cosine or euclidean"),
        })
    }
}

impl Choice for Metric {
    fn name(&self) -> &'static str {
        match self {
            Metric::Euclidean => "euclidean",
            Metric::Cosine => "cosine",
        }
    }
}

/// `[N, D]` prototypes from `[N * K, D]` support embeddings ordered class-major.
pub fn prototypes(support: &Tensor, n_way: usize) -> Result<Tensor> {
    let (rows, d) = match support.size()[..] {
        [r, d] => (r, d),
        ref s => bail!("support embeddings must be [N * K, D], got {s:?}"),
    };
    if n_way == 0 || rows % n_way as i64 != 0 || rows == 0 {
        bail!("{rows} support embeddings do not split into {n_way} classes of equal size");
    }
    Ok(support.view([n_way as i64, rows / n_way as i64, d]).mean_dim(1, false, Kind::Float))
}

/// `[Q, N]` scores of queries `[Q, D]` against prototypes `[N, D]`, higher = closer: the
/// logits of the prototypical loss.
pub fn proto_logits(protos: &Tensor, queries: &Tensor, metric: Metric) -> Tensor {
    match metric {
        Metric::Euclidean => {
            let d = queries.unsqueeze(1) - protos.unsqueeze(0);
            -d.square().sum_dim_intlist(2, false, Kind::Float)
        }
        Metric::Cosine => unit_rows(queries).matmul(&unit_rows(protos).tr()),
    }
}

/// One episode's `[Q, N]` query logits: `scale` (which a cosine metric needs to be
/// trainable) times the closeness of each query to the prototypes of `support`. The
/// prototypical loss, a protonet model's output and the nearest-prototype answer.
pub fn episode_logits(support: &Tensor, queries: &Tensor, n_way: usize, metric: Metric, scale: f64) -> Result<Tensor> {
    Ok(proto_logits(&prototypes(support, n_way)?, queries, metric) * scale)
}

/// The prototypical loss of one episode: cross-entropy of its query logits against each
/// query's class.
pub fn proto_loss(support: &Tensor, queries: &Tensor, query_y: &Tensor, n_way: usize, metric: Metric, scale: f64) -> Result<Tensor> {
    Ok(episode_logits(support, queries, n_way, metric, scale)?.cross_entropy_for_logits(query_y))
}

/// Each query's class: the index of its nearest prototype.
pub fn proto_predict(support: &Tensor, queries: &Tensor, n_way: usize, metric: Metric) -> Result<Vec<usize>> {
    let best = episode_logits(support, queries, n_way, metric, 1.0)?.argmax(1, false);
    Ok(Vec::<i64>::try_from(best.to_device(tch::Device::Cpu))?.into_iter().map(|i| i as usize).collect())
}
