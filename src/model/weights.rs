//! Moving weights in and out of a model: torchvision state_dicts (`.pth` as torch.save
//! writes them, or safetensors) into a body, and whole-model save/load with every name and
//! shape checked.
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use tch::{nn::VarStore, Tensor};

/// Reads named tensors from a `.safetensors` file or a `.pth`/`.pt` file that `torch.save`
/// wrote (torchvision's weights); `module.` prefixes (DataParallel) are dropped. A file
/// that is neither, or is damaged, is one clear error naming it.
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if !path.is_file() {
        bail!("weights file {} not found", path.display());
    }
    let read = if is_zip(path)? { super::pth::read(path) } else { read_safetensors(path) };
    let tensors = read.with_context(|| format!("cannot read weights {}", path.display()))?;
    let all_prefixed = !tensors.is_empty() && tensors.iter().all(|(k, _)| k.starts_with("module."));
    Ok(if all_prefixed { tensors.into_iter().map(|(k, t)| (k["module.".len()..].to_string(), t)).collect() } else { tensors })
}

/// torch.save (1.6 and later) writes zip archives; safetensors files start with a length.
fn is_zip(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open weights {}", path.display()))?;
    let n = std::io::Read::read(&mut f, &mut magic).with_context(|| format!("cannot read weights {}", path.display()))?;
    Ok(n == 4 && &magic == b"PK\x03\x04")
}

/// A safetensors file, its header checked against the file's length first, so that a
/// truncated file says so.
fn read_safetensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let len = std::fs::metadata(path)?.len();
    let mut f = std::fs::File::open(path)?;
    let mut n = [0u8; 8];
    if len < 8 || std::io::Read::read_exact(&mut f, &mut n).is_err() {
        bail!("it is neither a torch.save zip nor a safetensors file ({len} bytes)");
    }
    let header_len = u64::from_le_bytes(n);
    if header_len > len - 8 || header_len > 100 << 20 {
        bail!("it is neither a torch.save zip nor a safetensors file (its first 8 bytes say a {header_len}-byte header, the file has {len} bytes)");
    }
    let mut header = vec![0u8; header_len as usize];
    std::io::Read::read_exact(&mut f, &mut header)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| anyhow::anyhow!("it is not a safetensors file (its header is not JSON: {e})"))?;
    let data_end = header.values().filter_map(|v| v.get("data_offsets")?.get(1)?.as_u64()).max().unwrap_or(0);
    if 8 + header_len + data_end > len {
        bail!("its safetensors header describes {data_end} bytes of tensor data, the file holds {}: truncated?", len - 8 - header_len);
    }
    Ok(Tensor::read_safetensors(path)?)
}

/// Copies a state_dict into the variables under `prefix` (e.g. torchvision resnet34 keys
/// into `body.`). Tensors of the children in `cut_off` (fc, the pooling a cut removed) and
/// `num_batches_tracked` are skipped; missing, wrongly shaped and unexpected tensors (those
/// of another arch) are errors, each listed.
pub fn load_prefixed(vs: &VarStore, prefix: &str, path: &Path, cut_off: &[&str]) -> Result<usize> {
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
    let names: HashSet<&str> = vars.keys().filter_map(|n| n.strip_prefix(prefix)?.strip_prefix('.')).collect();
    let mut unexpected: Vec<String> = file
        .keys()
        .filter(|k| !names.contains(k.as_str()) && !k.ends_with("num_batches_tracked") && !cut_off.contains(&k.split('.').next().unwrap_or("")))
        .cloned()
        .collect();
    for v in [&mut missing, &mut mismatched, &mut unexpected] {
        v.sort();
    }
    if !missing.is_empty() || !mismatched.is_empty() || !unexpected.is_empty() {
        let mut msg = format!("weights {} do not fit the model's `{prefix}`", path.display());
        if !missing.is_empty() {
            msg += &format!("; missing {} tensor(s): {}", missing.len(), list(&missing));
        }
        if !mismatched.is_empty() {
            msg += &format!("; wrong shape: {}", list(&mismatched));
        }
        if !unexpected.is_empty() {
            msg += &format!("; the file has {} tensor(s) the model lacks: {} (weights of another arch?)", unexpected.len(), list(&unexpected));
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
    load_named(vs, read_tensors(path)?.into_iter().collect(), path)
}

/// Copies `file`'s tensors (read from `path`) into the variables: names and shapes must
/// match exactly.
pub fn load_named(vs: &VarStore, file: BTreeMap<String, Tensor>, path: &Path) -> Result<()> {
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
