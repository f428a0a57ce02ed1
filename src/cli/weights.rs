//! `runner weights convert IN.pth OUT.safetensors`: a torchvision checkpoint (or any
//! state_dict torch.save wrote) as safetensors, read natively (no Python).
use crate::model::weights;
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
