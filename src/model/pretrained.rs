//! The weights a body starts from, found as fastai finds them and recorded: by default the
//! arch's ImageNet weights (torchvision's `DEFAULT` file), looked for before anything is
//! downloaded in `RUNNER_WEIGHTS` (a shared folder, only read), the runner's cache and
//! torch's hub cache (only read, so that fastai's and torchvision's downloads are reused),
//! else downloaded into the runner's cache with the code `untar_data` uses. Every file is
//! checked against the sha256 prefix its name carries (and the size torchvision gives).
//! Offline, default weights fall back to random init, loudly, unless they are required.
use super::registry::{hash_prefix, Arch, Pretrained, TORCHVISION_URL};
use crate::data::datasets::{self, file_sha256};
use crate::data::download;
use crate::track::WeightsUse;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What a body was asked to start from.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// The arch's default weights; when they can be neither found nor downloaded, random
    /// init with a warning, or an error when `required`.
    Default { required: bool },
    /// Random init, quietly (`pretrained: false`); `why` is recorded.
    Random { why: String },
    /// One of the arch's tags (`IMAGENET1K_V1`): found or downloaded, else an error.
    Tag(String),
    /// A weights file.
    Path(PathBuf),
    /// A file to download: found by its name first when the name carries a hash prefix.
    Url(String),
}

impl Request {
    /// `weights:` as a script gives it: a URL, one of the arch's tags, else a path.
    pub fn parse(arch: &Arch, weights: &str) -> Request {
        if weights.contains("://") {
            Request::Url(weights.to_string())
        } else if weights == "DEFAULT" || arch.weights.iter().any(|w| w.tag == weights) {
            Request::Tag(weights.to_string())
        } else {
            Request::Path(weights.into())
        }
    }
}

/// `RUNNER_REQUIRE_WEIGHTS=1`: default weights that cannot be had are an error.
pub fn required_by_env() -> bool {
    std::env::var_os("RUNNER_REQUIRE_WEIGHTS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Where weights are looked for, in this order, and where downloads go.
#[derive(Debug, Clone)]
pub struct Places {
    /// `RUNNER_WEIGHTS`: a folder of weights files, only read.
    pub shared: Option<PathBuf>,
    /// The runner's own: `RUNNER_CACHE/weights`, else the user's cache + `runner/weights`.
    pub cache: PathBuf,
    /// torch's: `$TORCH_HOME/hub/checkpoints` (TORCH_HOME defaults to the user's cache +
    /// `torch`), only read.
    pub hub: PathBuf,
    /// Where the registry's files are downloaded from: `RUNNER_WEIGHTS_URL_BASE` (a mirror),
    /// else torchvision's.
    pub url_base: String,
    /// Whether (and by which signal) the run was asked to stop: a download ends at once.
    pub stop: fn() -> Option<&'static str>,
}

impl Places {
    pub fn from_env() -> Places {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let user_cache = || dirs::cache_dir().unwrap_or_else(std::env::temp_dir);
        let cache = var("RUNNER_CACHE").unwrap_or_else(|| user_cache().join("runner")).join("weights");
        let hub = var("TORCH_HOME").unwrap_or_else(|| user_cache().join("torch")).join("hub/checkpoints");
        let mut url_base = std::env::var("RUNNER_WEIGHTS_URL_BASE").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| TORCHVISION_URL.into());
        if !url_base.ends_with('/') {
            url_base.push('/');
        }
        Places { shared: var("RUNNER_WEIGHTS"), cache, hub, url_base, stop: || None }
    }

    /// The folders searched, with the name each is recorded under.
    pub fn folders(&self) -> Vec<(&'static str, &Path)> {
        let mut v = Vec::new();
        if let Some(s) = &self.shared {
            v.push(("RUNNER_WEIGHTS", s.as_path()));
        }
        v.push(("runner cache", self.cache.as_path()));
        v.push(("torch hub cache", self.hub.as_path()));
        v
    }
}

/// A file to find or download: its name, URL and what it must be.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub file: String,
    pub url: String,
    /// The start of its sha256, from its name.
    pub hash_prefix: Option<String>,
    /// torchvision's entry, for its size.
    pub entry: Option<&'static Pretrained>,
}

impl Wanted {
    pub fn registry(entry: &'static Pretrained, places: &Places) -> Wanted {
        Wanted {
            file: entry.file.into(),
            url: format!("{}{}", places.url_base, entry.file),
            hash_prefix: Some(entry.hash_prefix().into()),
            entry: Some(entry),
        }
    }

    pub fn url(url: &str) -> Result<Wanted> {
        let file = url.rsplit('/').next().filter(|f| !f.is_empty() && *f != "..").with_context(|| format!("no file name in URL {url}"))?;
        Ok(Wanted { file: file.into(), url: url.into(), hash_prefix: hash_prefix(file).map(String::from), entry: None })
    }

    /// Refuses a file whose sha256 or size is not what was asked for.
    fn check(&self, sha256: &str, bytes: u64) -> Result<()> {
        if let Some(p) = self.hash_prefix.as_deref().filter(|p| !sha256.starts_with(p)) {
            bail!("sha256 mismatch: its name {} promises a sha256 starting with {p}, the file's is {sha256}", self.file);
        }
        if let Some(e) = self.entry.filter(|e| !e.size_matches(bytes)) {
            bail!("it is {bytes} bytes ({:.3} MiB), torchvision's file is {} MiB", bytes as f64 / (1u64 << 20) as f64, e.size_mib);
        }
        Ok(())
    }
}

/// A file found or downloaded, checked.
#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    pub sha256: String,
    /// Where: a `Places::folders` name, or `downloaded`.
    pub source: &'static str,
}

/// Finds `wanted` in the folders, else downloads it into the runner's cache (unless
/// `RUNNER_OFFLINE`). A file found that fails its check is passed over; why goes to `notes`.
pub fn find_or_fetch(wanted: &Wanted, places: &Places, notes: &mut Vec<String>) -> Result<Found> {
    // A URL whose name carries no hash could name another file on another server: it is
    // kept apart, under a folder of its URL's hash, and never looked for elsewhere.
    let own = match wanted.hash_prefix {
        Some(_) => places.cache.join(&wanted.file),
        None => places.cache.join("urls").join(&hex::encode(Sha256::digest(wanted.url.as_bytes()))[..16]).join(&wanted.file),
    };
    let mut candidates: Vec<(&'static str, PathBuf)> = match wanted.hash_prefix {
        Some(_) => places.folders().into_iter().map(|(name, dir)| (name, dir.join(&wanted.file))).collect(),
        None => vec![("runner cache", own.clone())],
    };
    candidates.retain(|(_, p)| p.is_file());
    for (source, path) in candidates {
        let sha256 = file_sha256(&path)?;
        let bytes = std::fs::metadata(&path)?.len();
        match wanted.check(&sha256, bytes) {
            Ok(()) => return Ok(Found { path, sha256, source }),
            Err(e) => notes.push(format!("not using {} ({source}): {e}", path.display())),
        }
    }
    if datasets::offline() {
        bail!("RUNNER_OFFLINE is set: not downloading {}", wanted.url);
    }
    if let Some(parent) = own.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let sha256 = download::download(&wanted.url, &own, &wanted.file, download::Limits::default(), places.stop, |sha, bytes| {
        wanted.check(sha, bytes).with_context(|| format!("refusing what {} sent", wanted.url))
    })?;
    Ok(Found { path: own, sha256, source: "downloaded" })
}

/// What a body starts from: the file to load (none: random init) and its record.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub file: Option<PathBuf>,
    pub record: WeightsUse,
    /// Warnings for the user: files passed over, the fallback to random init and how to
    /// get the weights.
    pub notes: Vec<String>,
}

fn found_use(arch: &Arch, tag: Option<&str>, found: &Found, url: Option<&str>) -> WeightsUse {
    WeightsUse {
        arch: arch.name.into(),
        tag: tag.map(String::from),
        source: found.source.into(),
        file: Some(found.path.display().to_string()),
        sha256: Some(found.sha256.clone()),
        url: url.map(String::from),
        reason: None,
    }
}

/// How to get an arch's weights onto a machine that cannot download them.
pub fn how_to_get(arch: &Arch, wanted: &Wanted, places: &Places) -> String {
    let folders: Vec<String> = places.folders().iter().map(|(name, dir)| format!("{} ({name})", dir.display())).collect();
    let shared = if places.shared.is_none() { ", or a folder you name in RUNNER_WEIGHTS" } else { "" };
    format!(
        "to get them: `runner weights fetch {}` where there is network (it saves them in the runner's cache), or copy {} from {} into one of {}{shared}",
        arch.name,
        wanted.file,
        wanted.url,
        folders.join(", ")
    )
}

/// Finds the weights `request` asks for.
pub fn resolve(arch: &'static Arch, request: &Request, places: &Places) -> Result<Resolved> {
    let mut notes = Vec::new();
    let (file, record) = match request {
        Request::Random { why } => (None, WeightsUse::random(arch.name, why.clone())),
        Request::Path(p) => {
            if !p.is_file() {
                bail!("weights file {} not found", p.display());
            }
            let found = Found { path: p.clone(), sha256: file_sha256(p)?, source: "path" };
            (Some(found.path.clone()), found_use(arch, None, &found, None))
        }
        Request::Url(url) => {
            let found = find_or_fetch(&Wanted::url(url)?, places, &mut notes)?;
            (Some(found.path.clone()), found_use(arch, None, &found, Some(url)))
        }
        Request::Tag(tag) => {
            let entry = arch.pretrained(tag)?;
            let wanted = Wanted::registry(entry, places);
            let found = find_or_fetch(&wanted, places, &mut notes)
                .with_context(|| format!("cannot get {} weights {}; {}", arch.name, entry.tag, how_to_get(arch, &wanted, places)))?;
            (Some(found.path.clone()), found_use(arch, Some(entry.tag), &found, Some(&wanted.url)))
        }
        Request::Default { required } => {
            let entry = arch.pretrained(arch.default_tag)?;
            let wanted = Wanted::registry(entry, places);
            match find_or_fetch(&wanted, places, &mut notes) {
                Ok(found) => (Some(found.path.clone()), found_use(arch, Some(entry.tag), &found, Some(&wanted.url))),
                Err(e) if *required => {
                    bail!(
                        "{} needs its pretrained weights ({}), which cannot be had: {e:#}; {}",
                        arch.name,
                        entry.tag,
                        how_to_get(arch, &wanted, places)
                    )
                }
                Err(e) => {
                    notes.push(format!(
                        "{} starts from RANDOM weights, not ImageNet's ({}): {e:#}\n  {}\n  (`pretrained: false` asks for random init quietly; RUNNER_REQUIRE_WEIGHTS=1 makes this an error)",
                        arch.name,
                        entry.tag,
                        how_to_get(arch, &wanted, places)
                    ));
                    (None, WeightsUse::random(arch.name, format!("{} could not be had: {e:#}", entry.file)))
                }
            }
        }
    };
    Ok(Resolved { file, record, notes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::registry;

    fn places(root: &Path) -> Places {
        Places {
            shared: Some(root.join("shared")),
            cache: root.join("cache"),
            hub: root.join("torch/hub/checkpoints"),
            url_base: "http://127.0.0.1:9/".into(),
            stop: || None,
        }
    }

    /// A registry-like entry for a file of known content, whose name carries its hash.
    fn entry_for(dir: &Path, content: &[u8]) -> &'static Pretrained {
        let sha = hex::encode(Sha256::digest(content));
        let file: &'static str = Box::leak(format!("resnet18-{}.pth", &sha[..8]).into_boxed_str());
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), content).unwrap();
        Box::leak(Box::new(Pretrained { tag: "T", file, size_mib: content.len() as f64 / 1048576.0 }))
    }

    #[test]
    fn folders_are_searched_in_order_and_bad_files_passed_over() {
        let root = tempfile::tempdir().unwrap();
        let p = places(root.path());
        let entry = entry_for(&p.hub, b"weights");
        let wanted = Wanted::registry(entry, &p);
        let mut notes = vec![];
        let found = find_or_fetch(&wanted, &p, &mut notes).unwrap();
        assert_eq!((found.source, found.path.clone()), ("torch hub cache", p.hub.join(entry.file)));
        // A damaged copy earlier in the order is passed over, with a note naming both hashes.
        std::fs::create_dir_all(p.shared.as_ref().unwrap()).unwrap();
        std::fs::write(p.shared.as_ref().unwrap().join(entry.file), b"weighty").unwrap();
        let found = find_or_fetch(&wanted, &p, &mut notes).unwrap();
        assert_eq!(found.source, "torch hub cache");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("(RUNNER_WEIGHTS): sha256 mismatch") && notes[0].contains(&hex::encode(Sha256::digest(b"weighty"))), "{notes:?}");
        std::fs::write(p.shared.as_ref().unwrap().join(entry.file), b"weights").unwrap();
        assert_eq!(find_or_fetch(&wanted, &p, &mut vec![]).unwrap().source, "RUNNER_WEIGHTS");
    }

    #[test]
    fn default_weights_fall_back_to_random_loudly_unless_required() {
        let root = tempfile::tempdir().unwrap();
        let p = places(root.path());
        let arch = registry::arch("resnet34").unwrap();
        let r = resolve(arch, &Request::Default { required: false }, &p).unwrap();
        assert!(r.file.is_none() && r.record.is_random());
        assert!(r.record.reason.as_deref().unwrap().starts_with("resnet34-b627a593.pth could not be had: "), "{:?}", r.record);
        assert!(r.notes[0].contains("resnet34 starts from RANDOM weights") && r.notes[0].contains("runner weights fetch resnet34"), "{:?}", r.notes);
        let e = resolve(arch, &Request::Default { required: true }, &p).unwrap_err().to_string();
        assert!(e.starts_with("resnet34 needs its pretrained weights (IMAGENET1K_V1), which cannot be had"), "{e}");
        let quiet = resolve(arch, &Request::Random { why: "pretrained: false".into() }, &p).unwrap();
        assert!(quiet.notes.is_empty() && quiet.record.reason.as_deref() == Some("pretrained: false"));
        assert_eq!(Request::parse(arch, "IMAGENET1K_V1"), Request::Tag("IMAGENET1K_V1".into()));
        assert_eq!(Request::parse(arch, "https://h/x.pth"), Request::Url("https://h/x.pth".into()));
        assert_eq!(Request::parse(arch, "r34.pth"), Request::Path("r34.pth".into()));
    }
}
