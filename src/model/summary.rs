//! `summary()`: one row per child with output shape, parameter count and whether it
//! trains, then totals, like fastai's `learn.summary()`. Runs one eval-mode batch of 2.
use super::{embed, ClassHead, Model, Net, PairHead};
use crate::text_table::render;
use anyhow::Result;
use tch::{Kind, Tensor};

impl Model {
    pub fn summary(&self, input: &[i64]) -> Result<String> {
        let x = Tensor::zeros([&[2i64][..], input].concat(), (Kind::Float, self.device()));
        let mut rows: Vec<(String, String, Vec<i64>)> = Vec::new();
        tch::no_grad(|| -> Result<()> {
            match &self.net {
                Net::Classifier { body, head: ClassHead::Fastai(head) } => {
                    let f = body.trace(&x, false, "body.", &mut rows);
                    let _ = head.trace(&f, false, "head.", &mut rows);
                }
                Net::Classifier { body, head: ClassHead::Cosine { pool, .. } } => {
                    let f = body.trace(&x, false, "body.", &mut rows);
                    rows.push(("embed".into(), "embedding".into(), embed(f, *pool).size()));
                    rows.push(("head".into(), "scale * cos(e, class weights)".into(), self.forward(&[x.shallow_clone()], false)?.size()));
                }
                Net::Prototypes { body, pool, shape } => {
                    let f = body.trace(&x, false, "body.", &mut rows);
                    let e = embed(f, *pool);
                    rows.push(("embed".into(), "embedding".into(), e.size()));
                    let protos = vec![shape.n_way as i64, e.size()[1]];
                    rows.push(("protos".into(), format!("class means of {} support embeddings each", shape.k_shot), protos));
                    rows.push((
                        "head".into(),
                        format!("{} * {:?} closeness of each query to each prototype", shape.scale, shape.metric),
                        vec![-1, shape.n_way as i64],
                    ));
                }
                Net::Siamese { encoder, pool, head } => {
                    let f = encoder.trace(&x, false, "body.", &mut rows);
                    match head {
                        PairHead::Concat(h) => {
                            let both = Tensor::cat(&[f.shallow_clone(), f], 1);
                            rows.push(("cat".into(), "cat(encoder(x1), encoder(x2))".into(), both.size()));
                            let _ = h.trace(&both, false, "head.", &mut rows);
                        }
                        _ => {
                            let out = self.forward(&[x.shallow_clone(), x.shallow_clone()], false)?;
                            let e = embed(f, *pool);
                            rows.push(("embed".into(), "embedding".into(), e.size()));
                            let kind = match head {
                                PairHead::L1(_) => "|e1 - e2| -> Linear",
                                PairHead::Cosine { .. } => "scale * cos(e1, e2) + shift",
                                _ => "||e1 - e2||",
                            };
                            rows.push(("head".into(), kind.into(), out.size()));
                        }
                    }
                }
            }
            Ok(())
        })?;
        let vars = self.vs.variables();
        let count = |prefix: &str| -> (i64, i64) {
            let mut total = 0;
            let mut trainable = 0;
            for n in self.param_names.iter().filter(|n| n.starts_with(prefix)) {
                let t = &vars[n];
                total += t.numel() as i64;
                if t.requires_grad() {
                    trainable += t.numel() as i64;
                }
            }
            (total, trainable)
        };
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|(name, kind, shape)| {
                let (total, trainable) = count(&format!("{name}."));
                let train = match (total, trainable) {
                    (0, _) => String::new(),
                    (t, tr) if t == tr => "yes".into(),
                    (_, 0) => "no".into(),
                    _ => "partly".into(),
                };
                let shape = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" x ");
                vec![name.clone(), kind.clone(), shape, if total > 0 { total.to_string() } else { String::new() }, train]
            })
            .collect();
        let (total, trainable) = count("");
        let input_s = input.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" x ");
        Ok(format!(
            "{} ({} input{} of 2 x {input_s})\n{}\n\nTotal params: {total}\nTrainable params: {trainable}\nFrozen params: {}",
            self.kind,
            self.n_inputs(),
            if self.n_inputs() > 1 { "s" } else { "" },
            render(&["layer", "type", "output shape", "params", "trains"].map(String::from), &table),
            total - trainable
        ))
    }
}
