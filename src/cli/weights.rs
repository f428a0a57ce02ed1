//! `runner weights`: `convert IN.pth OUT.safetensors` (a torchvision checkpoint, or any
//! state_dict torch.save wrote, read natively), `list` (the registry's weights and where
//! they are) and `fetch ARCH...` (get them ahead of an offline run).
use crate::model::pretrained::{find_or_fetch, Places, Wanted};
use crate::model::registry::{self, ARCHS};
use crate::model::weights;
use crate::text_table::render;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::Tensor;

pub fn convert(input: &Path, output: &Path) -> Result<()> {
    if !input.is_file() {
        bail!("no weights file {}", input.display());
    }
    let tensors: Vec<(String, Tensor)> = weights::read_tensors(input)?.into_iter().map(|(k, t)| (k, t.contiguous())).collect();
    Tensor::write_safetensors(&tensors, output).with_context(|| format!("cannot write {}", output.display()))?;
    println!("wrote {} ({} tensors)", output.display(), tensors.len());
    Ok(())
}

/// `runner weights list`: the registry, and which files are where.
pub fn list() -> Result<()> {
    let places = Places::from_env();
    println!("searched in this order:");
    if places.shared.is_none() {
        println!("  {:<16} (not set)", "RUNNER_WEIGHTS");
    }
    for (name, dir) in places.folders() {
        println!("  {name:<16} {}", dir.display());
    }
    println!("downloaded from    {}\n", places.url_base);
    let mut rows = Vec::new();
    for a in ARCHS {
        for w in a.weights {
            let cached: Vec<&str> = places.folders().into_iter().filter(|(_, dir)| dir.join(w.file).is_file()).map(|(name, _)| name).collect();
            rows.push(vec![
                a.name.to_string(),
                if w.tag == a.default_tag { format!("{} (default)", w.tag) } else { w.tag.to_string() },
                w.file.to_string(),
                format!("{:.1}", w.size_mib),
                format!("{} {} {}", a.stats.name, a.cut, a.split.name()),
                if cached.is_empty() { "-".into() } else { cached.join(", ") },
            ]);
        }
    }
    println!("{}", render(&["arch", "tag", "file", "MiB", "stats cut split", "found in"].map(String::from), &rows));
    Ok(())
}

/// `runner weights fetch ARCH[:TAG]...`: gets the files ahead (on a cluster's login node
/// before an offline job, say), found or downloaded and checked as `create_body` does.
pub fn fetch(archs: &[String]) -> Result<()> {
    if archs.is_empty() {
        bail!("name the archs to fetch (resnet34, resnet50:IMAGENET1K_V1, ...; `runner weights list` shows them)");
    }
    let places = Places::from_env();
    for spec in archs {
        let (name, tag) = spec.split_once(':').unwrap_or((spec, "DEFAULT"));
        let arch = registry::arch(name)?;
        let entry = arch.pretrained(tag)?;
        let wanted = Wanted::registry(entry, &places);
        let mut notes = Vec::new();
        let found = find_or_fetch(&wanted, &places, &mut notes);
        for n in &notes {
            eprintln!("runner: warning: {n}");
        }
        let found = found.with_context(|| format!("cannot fetch {name} {}", entry.tag))?;
        let how = if found.source == "downloaded" { "downloaded to" } else { "found in the" };
        let place = if found.source == "downloaded" { String::new() } else { format!("{}: ", found.source) };
        println!("{name} {}: {how} {place}{} (sha256 {})", entry.tag, found.path.display(), found.sha256);
    }
    Ok(())
}
