//! What rebuilds a model without the script that made it: the body (a registry arch and
//! its cut, or a convnet's spec) and the kind over it with its head, as serde values, so
//! that an exported learner (`learn::export`) can hold its architecture beside its weights.
use super::convnet::ConvNetSpec;
use super::head::HeadSpec;
use super::{BodySpec, Model};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::Device;

/// The head of a Siamese model: fastai's over the two feature maps concatenated, or one
/// that compares the two embeddings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairHeadSpec {
    /// The fastai tutorial: concatenate the feature maps, then a fastai head (2 logits).
    Concat(HeadSpec),
    /// Koch et al.: weighted L1 distance of the embeddings -> one logit (sigmoid = same).
    L1,
    /// Cosine similarity, scaled and shifted by learned numbers -> one logit.
    Cosine,
    /// Euclidean distance of the embeddings, for the contrastive loss.
    Distance,
}

impl std::str::FromStr for PairHeadSpec {
    type Err = anyhow::Error;
    /// The named Siamese heads (`Concat` is built from a `create_head` instead).
    fn from_str(s: &str) -> Result<PairHeadSpec> {
        Ok(match s {
            "l1" => PairHeadSpec::L1,
            "cosine" => PairHeadSpec::Cosine,
            "distance" => PairHeadSpec::Distance,
            other => bail!("unknown Siamese head `{other}`: use a create_head(...), \"l1\", \"cosine\" or \"distance\""),
        })
    }
}

/// The kind of model over the body, with what its constructor was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KindSpec {
    /// Body + fastai head.
    Classifier { head: HeadSpec },
    /// Body + cosine head of `n_out` classes.
    CosineClassifier {
        n_out: i64,
        scale: f64,
        /// CosFace's margin (0: none).
        margin: f64,
        /// ArcFace's angular margin in radians (0: none; files before it have none).
        #[serde(default)]
        arc_margin: f64,
    },
    /// One encoder on both images, then a pair head.
    Siamese { head: PairHeadSpec },
}

/// The body as a file records it: weights are not named, they travel with the spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BodyRecipe {
    /// A registry arch, cut to its first `cut` children.
    Arch {
        arch: String,
        cut: i64,
    },
    Convnet {
        spec: ConvNetSpec,
    },
}

/// A model's architecture: enough to build it again, with fresh weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub body: BodyRecipe,
    pub model: KindSpec,
}

impl BodyRecipe {
    pub fn of(body: &BodySpec) -> BodyRecipe {
        match body {
            BodySpec::Arch { arch, kept, .. } => BodyRecipe::Arch { arch: arch.name.into(), cut: *kept as i64 },
            BodySpec::ConvNet(spec) => BodyRecipe::Convnet { spec: spec.clone() },
        }
    }

    /// The body, with random weights.
    pub fn body(&self) -> Result<BodySpec> {
        match self {
            BodyRecipe::Arch { arch, cut } => BodySpec::arch(arch, *cut, None),
            BodyRecipe::Convnet { spec } => {
                spec.check()?;
                Ok(BodySpec::ConvNet(spec.clone()))
            }
        }
    }
}

impl ModelSpec {
    /// The model on `device`, with random weights (load them next).
    pub fn build(&self, device: Device) -> Result<Model> {
        let body = self.body.body()?;
        match &self.model {
            KindSpec::Classifier { head } => Model::classifier(&body, head, device),
            KindSpec::CosineClassifier { n_out, scale, margin, arc_margin } => {
                let model = Model::cosine_classifier(&body, *n_out, *scale, device)?.with_cos_margin(*margin)?;
                if *arc_margin > 0.0 {
                    model.with_arc_margin(*arc_margin)
                } else {
                    Ok(model)
                }
            }
            KindSpec::Siamese { head } => Model::siamese(&body, head, device),
        }
    }
}

impl Model {
    /// What rebuilds this model; a kind that cannot be rebuilt from its spec alone (a
    /// protonet, which reads episodes) is refused by name.
    pub fn spec(&self) -> Result<ModelSpec> {
        let Some(model) = self.kind_spec.clone() else {
            bail!("a {} cannot be exported: it reads episodes, not single images (export a classifier or a Siamese model)", self.kind())
        };
        Ok(ModelSpec { body: BodyRecipe::of(&self.body), model })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec written as JSON and read back builds the same model, variable for variable.
    #[test]
    fn specs_round_trip_through_json() {
        let resnet = BodySpec::arch("resnet18", -2, None).unwrap();
        let models = [
            Model::classifier(&resnet, &HeadSpec { lin_ftrs: vec![64], ..HeadSpec::new(512, 3) }, Device::Cpu).unwrap(),
            Model::siamese(&resnet, &PairHeadSpec::L1, Device::Cpu).unwrap(),
            Model::cosine_classifier(&resnet, 4, 16.0, Device::Cpu).unwrap().with_cos_margin(0.2).unwrap(),
        ];
        for m in models {
            let spec = m.spec().unwrap();
            let back: ModelSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
            assert_eq!(back, spec);
            let rebuilt = back.build(Device::Cpu).unwrap();
            assert_eq!((rebuilt.kind(), &rebuilt.param_names), (m.kind(), &m.param_names));
            let shapes = |m: &Model| m.vs.variables().into_iter().map(|(k, v)| (k, v.size())).collect::<std::collections::BTreeMap<_, _>>();
            assert_eq!(shapes(&rebuilt), shapes(&m));
        }
        assert_eq!(BodyRecipe::of(&resnet), BodyRecipe::Arch { arch: "resnet18".into(), cut: 8 });
    }
}
