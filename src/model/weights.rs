//! Moving weights in and out of a model: torchvision state_dicts (as safetensors) into a
//! body, and whole-model save/load with every name and shape checked.
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{nn::VarStore, Tensor};

/// Reads named tensors from a `.safetensors` file (or a plain-dict `.pth` as a fallback).
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.is_file() {
        bail!("weights file {} not found", path.display());
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let res = match ext {
        "safetensors" => Tensor::read_safetensors(path),
        _ => Tensor::loadz_multi(path),
    };
    res.map_err(|e| {
        let hint = if ext == "safetensors" {
            String::new()
        } else {
            format!("; convert it once with `runner weights convert {} out.safetensors`", path.display())
        };
        anyhow::anyhow!("cannot read weights {}: {e}{hint}", path.display())
    })
}

/// Copies a state_dict into the variables under `prefix` (e.g. torchvision resnet34 keys
/// into `body.`). Keys the model does not have (fc, pooled layers a cut removed,
/// `num_batches_tracked`) are skipped; missing or wrongly shaped variables are errors.
pub fn load_prefixed(vs: &VarStore, prefix: &str, path: &Path) -> Result<usize> {
    let file: HashMap<String, Tensor> = read_tensors(path)?.into_iter().collect();
    let vars = vs.variables();
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    let mut wanted: Vec<(&String, &Tensor, &Tensor)> = Vec::new();
    for (name, var) in &vars {
        let Some(key) = name.strip_prefix(prefix).and_then(|k| k.strip_prefix('.')) else { continue };
        match file.get(key) {
            None => missing.push(key.to_string()),
            Some(t) if t.size() != var.size() => mismatched.push(format!("{key}: file {:?}, model {:?}", t.size(), var.size())),
            Some(t) => wanted.push((name, var, t)),
        }
    }
    missing.sort();
    mismatched.sort();
    if !missing.is_empty() || !mismatched.is_empty() {
        let mut msg = format!("weights {} do not fit the model's `{prefix}`", path.display());
        if !missing.is_empty() {
            msg += &format!("; missing {} tensor(s): {}", missing.len(), list(&missing));
        }
        if !mismatched.is_empty() {
            msg += &format!("; wrong shape: {}", list(&mismatched));
        }
        bail!(msg);
    }
    tch::no_grad(|| {
        for (name, var, t) in &wanted {
            let mut v = var.shallow_clone();
            v.f_copy_(&t.to_kind(v.kind()).to_device(v.device())).with_context(|| format!("cannot copy {name}"))?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(wanted.len())
}

fn list(items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().take(8).map(String::as_str).collect();
    let more = if items.len() > 8 { format!(", ... ({} more)", items.len() - 8) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// Saves every variable (BatchNorm statistics included) as contiguous safetensors.
pub fn save(vs: &VarStore, path: &Path) -> Result<()> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let named: Vec<(String, Tensor)> = vars.into_iter().map(|(k, v)| (k, v.to_device(tch::Device::Cpu).contiguous())).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    Tensor::write_safetensors(&named, path).with_context(|| format!("cannot save weights to {}", path.display()))
}

/// Loads a file written by `save`: names and shapes must match exactly.
pub fn load(vs: &VarStore, path: &Path) -> Result<()> {
    let file: BTreeMap<String, Tensor> = read_tensors(path)?.into_iter().collect();
    let vars = vs.variables();
    let unexpected: Vec<String> = file.keys().filter(|k| !vars.contains_key(*k)).cloned().collect();
    if !unexpected.is_empty() {
        bail!("weights {} hold tensors this model lacks: {}", path.display(), list(&unexpected));
    }
    load_prefixed_exact(&vars, &file, path)
}

fn load_prefixed_exact(vars: &HashMap<String, Tensor>, file: &BTreeMap<String, Tensor>, path: &Path) -> Result<()> {
    let mut missing: Vec<String> = vars.keys().filter(|k| !file.contains_key(*k)).cloned().collect();
    missing.sort();
    if !missing.is_empty() {
        bail!("weights {} lack {} tensor(s) of this model: {}", path.display(), missing.len(), list(&missing));
    }
    let mut bad: Vec<String> = vars
        .iter()
        .filter(|(k, v)| file[*k].size() != v.size())
        .map(|(k, v)| format!("{k}: file {:?}, model {:?}", file[k].size(), v.size()))
        .collect();
    bad.sort();
    if !bad.is_empty() {
        bail!("weights {} have the wrong shape for: {}", path.display(), list(&bad));
    }
    tch::no_grad(|| {
        for (k, v) in vars {
            let mut v = v.shallow_clone();
            v.f_copy_(&file[k].to_kind(v.kind()).to_device(v.device()))?;
        }
        Ok::<_, tch::TchError>(())
    })?;
    Ok(())
}
