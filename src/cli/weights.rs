//! `runner weights convert IN.pth OUT.safetensors`: the one documented step that turns a
//! torchvision checkpoint (e.g. resnet34-b627a593.pth) into safetensors, using the
//! project's Python venv (PyTorch reads its own pickle format; we do not).
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

const CONVERT: &str = r#"
import sys, torch
from safetensors.torch import save_file
obj = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
    obj = obj["state_dict"]
if not isinstance(obj, dict):
    sys.exit(f"{sys.argv[1]} holds a {type(obj).__name__}, not a state_dict")
tensors = {k[7:] if k.startswith("module.") else k: v.contiguous() for k, v in obj.items()
           if torch.is_tensor(v) and not k.endswith("num_batches_tracked")}
save_file(tensors, sys.argv[2])
print(f"{len(tensors)} tensors")
"#;

/// The venv python: `RUNNER_PYTHON`, else `.venv` of the checkout holding the binary.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("RUNNER_PYTHON") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors().map(|d| d.join(".venv/bin/python")).find(|p| p.is_file()).unwrap_or_else(|| "python3".into())
}

pub fn convert(input: &Path, output: &Path) -> Result<()> {
    if !input.is_file() {
        bail!("no weights file {}", input.display());
    }
    let py = python();
    let out = std::process::Command::new(&py)
        .arg("-c")
        .arg(CONVERT)
        .arg(input)
        .arg(output)
        .output()
        .with_context(|| format!("cannot run {} (run scripts/bootstrap, or set RUNNER_PYTHON)", py.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("converting {} failed: {}", input.display(), err.lines().last().unwrap_or("unknown error"));
    }
    println!("wrote {} ({})", output.display(), String::from_utf8_lossy(&out.stdout).trim());
    Ok(())
}
