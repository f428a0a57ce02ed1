//! fastai's `learn.export()` and `load_learner()`: one file holding what predictions need
//! and nothing else, so that a second script or `runner predict` works with no training
//! data present. The file is a safetensors file (any safetensors reader opens its weights)
//! whose metadata holds the learner: the format version and the runner that wrote it, the
//! architecture (body and model kind with its head), the target kind with its vocabulary,
//! the decision threshold where one was set, the loss's decoding and the item pipeline
//! (size, method, channels, normalisation). Only the model's variables are stored, never
//! the optimizer state. A sha256 over the learner and the tensor data finds damage; a file
//! of another format version, truncated or damaged, or no learner at all, is refused in
//! one line that names it.
use super::learner::{Learner, LearnerOptions, RunOut};
use super::loss::{CustomLoss, Loss};
use crate::data::pipeline::ItemPipeline;
use crate::data::targets::TargetKind;
use crate::data::DataLoaders;
use crate::model::{ModelSpec, Output};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

/// The layout of the learner this runner writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// The metadata keys: the learner (JSON) and the sha256 of it and the tensor data.
const LEARNER_KEY: &str = "runner.learner";
const SHA_KEY: &str = "runner.sha256";

/// What the model's outputs are predictions of, with the names that decode them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// One class per item, named by `vocab` (pairs: `different`, `same`).
    Classes { vocab: Vec<String> },
    /// Any number of labels per item, out of `vocab`, those over the threshold predicted.
    MultiHot { vocab: Vec<String> },
    /// Numbers, one per output, named after their label columns.
    Floats { names: Vec<String> },
}

impl Target {
    fn new(kind: TargetKind, vocab: Vec<String>) -> Target {
        match kind {
            TargetKind::Classes => Target::Classes { vocab },
            TargetKind::MultiHot => Target::MultiHot { vocab },
            TargetKind::Floats => Target::Floats { names: vocab },
        }
    }

    fn parts(self) -> (TargetKind, Vec<String>) {
        match self {
            Target::Classes { vocab } => (TargetKind::Classes, vocab),
            Target::MultiHot { vocab } => (TargetKind::MultiHot, vocab),
            Target::Floats { names } => (TargetKind::Floats, names),
        }
    }
}

/// The loss the learner trained with, by name, and what turning outputs into
/// probabilities needs of it: a distance head's margin, and whether the outputs are read
/// raw (a script's loss closure, which has no activation and is not stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossRecord {
    pub name: String,
    pub contrastive_margin: Option<f64>,
    #[serde(default)]
    pub raw_outputs: bool,
}

/// The learner as the file's metadata holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exported {
    pub format_version: u64,
    pub runner_version: String,
    pub runner_commit: String,
    pub architecture: ModelSpec,
    /// Image batches one prediction takes (2: a pair).
    pub n_inputs: usize,
    pub target: Target,
    /// The decision threshold of a two-class model, where one was set.
    pub threshold: Option<f64>,
    pub loss: LossRecord,
    pub pipeline: ItemPipeline,
}

fn dtype(kind: Kind) -> Result<&'static str> {
    Ok(match kind {
        Kind::Float => "F32",
        Kind::Double => "F64",
        Kind::Half => "F16",
        Kind::BFloat16 => "BF16",
        Kind::Int64 => "I64",
        k => bail!("cannot export a tensor of kind {k:?}"),
    })
}

fn kind_of(dtype: &str) -> Option<Kind> {
    Some(match dtype {
        "F32" => Kind::Float,
        "F64" => Kind::Double,
        "F16" => Kind::Half,
        "BF16" => Kind::BFloat16,
        "I64" => Kind::Int64,
        _ => return None,
    })
}

impl Learner {
    /// What `export` writes as the learner's metadata.
    pub fn exported(&self) -> Result<Exported> {
        let pipeline = self.data.pipeline().context("export_learner needs loaders that read image files (image_loaders or pair_loaders)")?;
        let contrastive_margin = match self.loss {
            Loss::Contrastive { margin } => Some(margin),
            _ => None,
        };
        Ok(Exported {
            format_version: FORMAT_VERSION,
            runner_version: env!("CARGO_PKG_VERSION").into(),
            runner_commit: env!("RUNNER_GIT_COMMIT").into(),
            architecture: self.model.spec()?,
            n_inputs: self.model.n_inputs(),
            target: Target::new(self.targets, self.data.vocab()),
            threshold: self.threshold_set(),
            loss: LossRecord { name: self.loss.to_string(), contrastive_margin, raw_outputs: matches!(self.loss, Loss::Custom(_)) },
            pipeline,
        })
    }

    /// fastai's `learn.export(path)`: the learner for inference in one file (see the module
    /// comment), written to a temporary file first. Returns the bytes written.
    pub fn export(&self, path: &Path) -> Result<u64> {
        let meta = serde_json::to_string(&self.exported()?)?;
        let vars: BTreeMap<String, Tensor> = self.model.vs.variables().into_iter().collect();
        let mut entries = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, v) in &vars {
            let t = v.detach().to_device(Device::Cpu).contiguous();
            let start = data.len();
            let bytes = t.numel() * t.kind().elt_size_in_bytes();
            data.resize(start + bytes, 0);
            t.f_copy_data_u8(&mut data[start..], t.numel())?;
            entries.insert(name.clone(), serde_json::json!({ "dtype": dtype(t.kind())?, "shape": t.size(), "data_offsets": [start, data.len()] }));
        }
        let sha = hex::encode(Sha256::new().chain_update(meta.as_bytes()).chain_update(&data).finalize());
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!({ LEARNER_KEY: meta, SHA_KEY: sha }));
        header.extend(entries);
        let mut header = serde_json::to_vec(&header)?;
        header.resize(header.len().div_ceil(8) * 8, b' ');
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend(header);
        out.extend(data);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp = path.with_extension("learner.tmp");
        std::fs::write(&tmp, &out).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(out.len() as u64)
    }
}

/// A learner file read and checked: its metadata and its tensors.
pub struct LearnerFile {
    pub exported: Exported,
    pub tensors: BTreeMap<String, Tensor>,
}

impl LearnerFile {
    /// Reads `path`; every way it can be wrong is one error naming it.
    pub fn read(path: &Path) -> Result<LearnerFile> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read learner file {}", path.display()))?;
        parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
    }
}

/// Why bytes that are not a learner file are not one.
fn not_a_learner(bytes: &[u8], why: &str) -> anyhow::Error {
    let what = if bytes.starts_with(b"PK\x03\x04") { " (it is a zip archive: a torch.save file?)" } else { "" };
    anyhow::anyhow!("not a runner learner file{what}: {why} (learn.export_learner(path) writes one)")
}

fn parse(bytes: &[u8]) -> Result<LearnerFile> {
    let Some(n) = bytes.get(..8) else { return Err(not_a_learner(bytes, &format!("it has only {} bytes", bytes.len()))) };
    let header_len = u64::from_le_bytes(n.try_into()?);
    let body = (bytes.len() - 8) as u64;
    if header_len > body {
        let start = &bytes[8..bytes.len().min(8 + 64)];
        if start.windows(LEARNER_KEY.len()).any(|w| w == LEARNER_KEY.as_bytes()) {
            bail!("truncated: its header alone should have {header_len} bytes, the file has {body} after the first 8");
        }
        return Err(not_a_learner(bytes, &format!("its first 8 bytes say a {header_len}-byte header, the file has {body} more")));
    }
    let (header, data) = bytes[8..].split_at(header_len as usize);
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|_| not_a_learner(bytes, "it does not start with a safetensors header"))?;
    let meta = header.get("__metadata__").and_then(|m| m.as_object());
    let Some(learner) = meta.and_then(|m| m.get(LEARNER_KEY)).and_then(|v| v.as_str()) else {
        return Err(not_a_learner(bytes, "a safetensors file without a learner in its metadata (weights saved with save? load them with load)"));
    };
    let value: serde_json::Value = serde_json::from_str(learner).context("damaged: its learner metadata is not JSON")?;
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if version != Some(FORMAT_VERSION) {
        let by = value.get("runner_version").and_then(|v| v.as_str()).unwrap_or("an unknown runner");
        let version = version.map_or("no".to_string(), |v| v.to_string());
        bail!(
            "a learner file of format version {version} (written by runner {by}); this runner ({}) reads format version {FORMAT_VERSION}: load it with the runner that wrote it, or export the learner again",
            env!("CARGO_PKG_VERSION")
        );
    }
    let mut tensors = BTreeMap::new();
    let mut end = 0;
    for (name, entry) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        let bad = || anyhow::anyhow!("damaged: tensor `{name}`'s entry in the header cannot be read");
        let kind = entry.get("dtype").and_then(|d| d.as_str()).and_then(kind_of).ok_or_else(bad)?;
        let shape: Vec<i64> = serde_json::from_value(entry.get("shape").cloned().ok_or_else(bad)?).map_err(|_| bad())?;
        let [a, b]: [usize; 2] = serde_json::from_value(entry.get("data_offsets").cloned().ok_or_else(bad)?).map_err(|_| bad())?;
        let numel: i64 = shape.iter().product();
        if a > b || b - a != numel as usize * kind.elt_size_in_bytes() {
            return Err(bad());
        }
        end = end.max(b);
        if b <= data.len() {
            tensors.insert(name.clone(), Tensor::f_from_data_size(&data[a..b], &shape, kind)?);
        }
    }
    if end > data.len() {
        bail!("truncated: its header describes {end} bytes of tensor data, the file holds {}", data.len());
    }
    let sha = hex::encode(Sha256::new().chain_update(learner.as_bytes()).chain_update(&data[..end]).finalize());
    let recorded = meta.and_then(|m| m.get(SHA_KEY)).and_then(|v| v.as_str()).unwrap_or("none");
    if sha != recorded || end != data.len() {
        bail!("damaged: the sha256 of its learner and tensor data is {sha}, the file records {recorded}");
    }
    let exported: Exported = serde_json::from_value(value).context("holds a learner this runner cannot rebuild")?;
    Ok(LearnerFile { exported, tensors })
}

/// fastai's `load_learner(path)`: a learner that predicts as the exported one did, on
/// `device`, with loaders that prepare image files by the stored pipeline and hold no data.
pub fn load_learner(path: &Path, device: Device, out: RunOut, seed: u64) -> Result<Learner> {
    let LearnerFile { exported: e, tensors } = LearnerFile::read(path)?;
    let model = e.architecture.build(device).with_context(|| format!("{}: cannot rebuild its model", path.display()))?;
    crate::model::weights::load_named(&model.vs, tensors, path)?;
    let (kind, vocab) = e.target.parts();
    let data =
        DataLoaders::for_inference(&e.pipeline, kind, vocab, e.n_inputs, device).with_context(|| format!("{}: its item pipeline", path.display()))?;
    let loss = match (model.output(), e.loss.contrastive_margin) {
        _ if e.loss.raw_outputs => stored_closure(&e.loss.name),
        (Output::Distance, Some(margin)) => Loss::Contrastive { margin },
        _ => Loss::default_for(&model, kind),
    };
    let opts = LearnerOptions { loss: Some(loss), threshold: e.threshold, ..LearnerOptions::default() };
    Learner::new(Rc::new(model), Rc::new(data), opts, out, seed).with_context(|| format!("{}: cannot make its learner", path.display()))
}

/// A loss closure's place in a loaded learner: outputs are read raw, as they were in
/// training, and training again asks for a loss, since the closure is not in the file.
fn stored_closure(name: &str) -> Loss {
    let name = name.to_string();
    Loss::Custom(CustomLoss::new(name.clone(), move |_: &Tensor, _: &Tensor| {
        bail!("this learner was trained with the loss closure `{name}`, which an exported file does not hold; predictions need no loss, training again needs a learner made with one")
    }))
}
