//! `summary()`: one row per child with output shape, parameter count and whether it
//! trains, then totals, like fastai's `learn.summary()`. Runs one eval-mode batch of 2.
use super::Model;
use crate::text_table::render;
use anyhow::Result;
use tch::{Kind, Tensor};

impl Model {
    pub fn summary(&self, input: &[i64]) -> Result<String> {
        let x = Tensor::zeros([&[2i64][..], input].concat(), (Kind::Float, self.device()));
        let mut rows = Vec::new();
        tch::no_grad(|| self.net.summary_rows(&x, &mut rows))?;
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
            self.kind(),
            self.n_inputs(),
            if self.n_inputs() > 1 { "s" } else { "" },
            render(&["layer", "type", "output shape", "params", "trains"].map(String::from), &table),
            total - trainable
        ))
    }
}
