//! Which weights each body of a run started from: the arch, torchvision's tag, the file
//! and its sha256, where it was found; or that it started from random weights, and why.
//! `show` prints it, the MLflow mirror sends it, and `rerun` refuses to start a body from
//! other weights than the recorded run did.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// `source` of a body that started from random weights.
pub const RANDOM: &str = "random";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsUse {
    pub arch: String,
    /// torchvision's tag of the weights (`IMAGENET1K_V1`), for an arch's own weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `random`, or where the file was: `path` (given), `RUNNER_WEIGHTS`, `runner cache`,
    /// `torch hub cache` or `downloaded`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Why the body started from random weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl WeightsUse {
    pub fn random(arch: &str, reason: impl Into<String>) -> WeightsUse {
        WeightsUse { arch: arch.into(), tag: None, source: RANDOM.into(), file: None, sha256: None, url: None, reason: Some(reason.into()) }
    }

    pub fn is_random(&self) -> bool {
        self.source == RANDOM
    }

    /// `resnet34 IMAGENET1K_V1 b627a593 (torch hub cache)`, `resnet34 random (pretrained: false)`.
    pub fn short(&self) -> String {
        if self.is_random() {
            return format!("{} random ({})", self.arch, self.reason.as_deref().unwrap_or("no weights asked for"));
        }
        let tag = self.tag.as_deref().map(|t| format!(" {t}")).unwrap_or_default();
        let sha = self.sha256.as_deref().map(|s| format!(" {}", &s[..8.min(s.len())])).unwrap_or_default();
        format!("{}{tag}{sha} ({})", self.arch, self.source)
    }

    /// Refuses a rerun body that would start from other weights than the recorded one
    /// (`recorded`, of run `run`): another arch, another file content, random instead of a
    /// file or the other way round.
    pub fn check_rerun(&self, recorded: &WeightsUse, run: &str) -> Result<()> {
        if self.arch == recorded.arch && self.sha256 == recorded.sha256 {
            return Ok(());
        }
        let how = match (&recorded.file, &recorded.sha256) {
            (Some(file), Some(sha)) => format!(
                "; put that file (sha256 {sha}) back at {file}, or in RUNNER_WEIGHTS or the runner's cache (`runner weights fetch {}` when it is the arch's own)",
                recorded.arch
            ),
            _ => String::new(),
        };
        bail!("this rerun would start the {} body from {}, but {run} started it from {}{how}", self.arch, self.short(), recorded.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(sha: &str) -> WeightsUse {
        WeightsUse {
            arch: "resnet34".into(),
            tag: Some("IMAGENET1K_V1".into()),
            source: "torch hub cache".into(),
            file: Some("/hub/resnet34-b627a593.pth".into()),
            sha256: Some(sha.into()),
            url: None,
            reason: None,
        }
    }

    #[test]
    fn reruns_need_the_same_file_content() {
        let a = found("b627a593aaaa");
        assert_eq!(a.short(), "resnet34 IMAGENET1K_V1 b627a593 (torch hub cache)");
        let moved = WeightsUse { source: "runner cache".into(), file: Some("/c/resnet34-b627a593.pth".into()), ..a.clone() };
        moved.check_rerun(&a, "run-1").unwrap();
        let random = WeightsUse::random("resnet34", "RUNNER_OFFLINE is set");
        assert_eq!(random.short(), "resnet34 random (RUNNER_OFFLINE is set)");
        let e = random.check_rerun(&a, "run-1").unwrap_err().to_string();
        assert!(e.starts_with("this rerun would start the resnet34 body from resnet34 random (RUNNER_OFFLINE is set), but run-1 started it from resnet34 IMAGENET1K_V1 b627a593 (torch hub cache); put that file (sha256 b627a593aaaa) back at /hub/resnet34-b627a593.pth"), "{e}");
        assert!(found("0000").check_rerun(&a, "run-1").is_err());
        WeightsUse::random("resnet34", "pretrained: false").check_rerun(&random, "run-1").unwrap();
    }
}
