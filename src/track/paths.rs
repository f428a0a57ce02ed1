//! Where a run's artifacts go, decided in one place: a bare model name (`best`) is
//! `<run>/models/best.safetensors`, a model path with a folder is taken as given (with
//! `.safetensors` added when it has no extension); a relative output file (`batch.png`)
//! is inside the run folder, an absolute one as given.
use std::path::{Path, PathBuf};

/// A model checkpoint's file (`.safetensors`), given a bare name or a path.
pub fn model_file(run_dir: Option<&Path>, name: &str) -> PathBuf {
    let p = PathBuf::from(name);
    if p.components().count() > 1 || p.extension().is_some() {
        return if p.extension().is_some() { p } else { p.with_extension("safetensors") };
    }
    run_dir.map(|d| d.join("models")).unwrap_or_else(|| PathBuf::from("models")).join(format!("{name}.safetensors"))
}

/// The optimizer state saved beside a model checkpoint: `x.safetensors` -> `x.opt.safetensors`.
pub fn optimizer_file(model_file: &Path) -> PathBuf {
    model_file.with_extension("").with_extension("opt.safetensors")
}

/// An output file (a picture, a table) of the run; relative paths land in the run folder.
pub fn output_file(run_dir: Option<&Path>, p: &str) -> PathBuf {
    match run_dir {
        Some(d) if Path::new(p).is_relative() => d.join(p),
        _ => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_models_and_outputs() {
        let run = Path::new("/runs/r1");
        assert_eq!(model_file(Some(run), "best"), Path::new("/runs/r1/models/best.safetensors"));
        assert_eq!(model_file(None, "best"), Path::new("models/best.safetensors"));
        assert_eq!(model_file(Some(run), "w/x.safetensors"), Path::new("w/x.safetensors"));
        assert_eq!(model_file(Some(run), "/tmp/m"), Path::new("/tmp/m.safetensors"));
        assert_eq!(model_file(Some(run), "x.pt"), Path::new("x.pt"));
        assert_eq!(optimizer_file(Path::new("/runs/r1/models/best.safetensors")), Path::new("/runs/r1/models/best.opt.safetensors"));
        assert_eq!(output_file(Some(run), "batch.png"), Path::new("/runs/r1/batch.png"));
        assert_eq!(output_file(Some(run), "/tmp/b.png"), Path::new("/tmp/b.png"));
        assert_eq!(output_file(None, "b.png"), Path::new("b.png"));
    }
}
