//! `untar_data`: known data sets by name (or any archive URL), found in the data folder or
//! its cache without network, else downloaded with progress (`download`), checked against
//! sha256 and extracted (`archive`: atomically, bounded, refusing entries that would escape
//! the target). An archive URL's files are kept under `urls/<hash of the URL>/`, so two
//! URLs with the same file name never share a folder, and every extracted folder keeps the
//! sha256 of its archive (`.runner-archive.toml`), against which a later call's hash is checked.
//!
//! Folders: `RUNNER_DATA` is searched first and never written (it may be a shared folder);
//! archives are extracted, and downloads land, in `RUNNER_CACHE`, else the user's cache
//! dir + `runner/data` (which is also searched). A set with a sample bundled in the source
//! tree (`assets/data/`) falls back to it, loudly, when it can be neither found nor downloaded,
//! so that the first experiment runs on a fresh machine without network.
use super::{archive, download};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};

/// A known data set. `archive` and `folder` are relative to the data folder.
pub struct Dataset {
    pub name: &'static str,
    pub url: &'static str,
    /// None where the archive's hash is not known to us: the check is skipped with a warning.
    pub sha256: Option<&'static str>,
    pub archive: &'static str,
    pub folder: &'static str,
    /// Folders accepted in place of `folder` when it is absent (a sample of the full set).
    pub aliases: &'static [&'static str],
    /// A small sample shipped in `assets/data/` (same layout), the last resort.
    pub bundled: Option<Bundled>,
    pub layout: &'static str,
}

/// A sample of a data set shipped with the source.
pub struct Bundled {
    /// Folder under `assets/data/`.
    pub folder: &'static str,
    /// What it is, for the warning (`148-photo sample`).
    pub what: &'static str,
}

/// Where the bundled samples are: the source tree this binary was built from.
pub const BUNDLED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/data");

/// A data set as `untar_data` found it.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub name: String,
    pub folder: PathBuf,
    /// `full`, `sample` (a sample folder in place of the full set) or `bundled sample`.
    pub source: &'static str,
}

/// A file of the Omniglot repository at the commit the shared copies come from.
macro_rules! omniglot {
    ($file:literal) => {
        concat!("https://raw.githubusercontent.com/brendenlake/omniglot/057f034baf2ecb8530bc5710e5a23584d2a519cc/python/", $file)
    };
}

pub const REGISTRY: &[Dataset] = &[
    Dataset {
        name: "pets",
        url: "https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz",
        sha256: None,
        archive: "oxford-iiit-pet.tgz",
        folder: "oxford-iiit-pet",
        aliases: &["oxford-iiit-pet-sample"],
        bundled: Some(Bundled { folder: "oxford-iiit-pet-sample148", what: "148-photo sample (37 breeds x 4)" }),
        layout: "images/<Breed>_<n>.jpg (cat breeds capitalised, dog breeds lower-case), annotations/",
    },
    Dataset {
        name: "orl_faces",
        // The original AT&T Laboratories Cambridge archive; it may no longer be served.
        url: "https://www.cl.cam.ac.uk/Research/DTG/attarchive/pub/data/att_faces.zip",
        sha256: None,
        archive: "att_faces.zip",
        folder: "orl_faces",
        aliases: &[],
        bundled: None,
        layout: "s1..s40/1..10.pgm: 40 people, 10 greyscale 92x112 images each",
    },
    Dataset {
        name: "omniglot_small1",
        url: omniglot!("images_background_small1.zip"),
        sha256: Some("f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4"),
        archive: "omniglot/images_background_small1.zip",
        folder: "omniglot/images_background_small1",
        aliases: &[],
        bundled: None,
        layout: "<Alphabet>/characterNN/XXXX_YY.png: 5 alphabets (Balinese, Early_Aramaic, Greek, Korean, Latin), 105x105",
    },
    Dataset {
        name: "omniglot_small2",
        url: omniglot!("images_background_small2.zip"),
        sha256: Some("3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f"),
        archive: "omniglot/images_background_small2.zip",
        folder: "omniglot/images_background_small2",
        aliases: &[],
        bundled: None,
        layout:
            "<Alphabet>/characterNN/XXXX_YY.png: 5 alphabets (Greek, Japanese_(katakana), Latin, Sanskrit, Tagalog); Greek and Latin equal small1's",
    },
    Dataset {
        name: "omniglot_runs",
        url: omniglot!("one-shot-classification/all_runs.zip"),
        sha256: Some("437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325"),
        archive: "omniglot/all_runs.zip",
        folder: "omniglot/all_runs",
        aliases: &[],
        bundled: None,
        layout: "runNN/{training/classNN.png, test/itemNN.png, class_labels.txt}: the 20 official 20-way one-shot runs",
    },
];

/// Where data sets are looked for (`data`) and where new files go (`cache`).
#[derive(Clone, Debug)]
pub struct Store {
    pub data: PathBuf,
    pub cache: PathBuf,
}

fn user_cache() -> PathBuf {
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("runner/data")
}

impl Store {
    /// `RUNNER_DATA` is only read (it may be a shared folder, and a probe for write access
    /// says yes to root whatever the permissions); everything new goes to the cache.
    pub fn from_env() -> Store {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let cache = var("RUNNER_CACHE").unwrap_or_else(user_cache);
        let data = var("RUNNER_DATA").unwrap_or_else(|| cache.clone());
        Store { data, cache }
    }

    fn dirs(&self) -> Vec<&Path> {
        let mut v = vec![self.data.as_path()];
        if self.cache != self.data {
            v.push(&self.cache);
        }
        v
    }
}

/// Where one data set comes from: a registry entry, or an ad-hoc one for a URL.
struct Source {
    name: String,
    url: String,
    sha256: Option<String>,
    archive: String,
    folder: String,
    aliases: &'static [&'static str],
    bundled: Option<&'static Bundled>,
}

fn lookup(name_or_url: &str) -> Result<Source> {
    if name_or_url.starts_with("http://") || name_or_url.starts_with("https://") {
        let file = name_or_url.rsplit('/').next().filter(|f| !f.is_empty()).with_context(|| format!("no file name in URL {name_or_url}"))?;
        let stem = [".tar.gz", ".tgz", ".zip", ".tar"]
            .iter()
            .find_map(|ext| file.strip_suffix(ext))
            .with_context(|| format!("{name_or_url}: only .tgz, .tar.gz, .tar and .zip archives are supported"))?;
        // The stem becomes a folder name in the data folder: `..` or `` would name a folder outside it.
        if stem.is_empty() || stem.starts_with('.') || !matches!(Path::new(stem).components().collect::<Vec<_>>()[..], [Component::Normal(_)]) {
            bail!("{name_or_url}: the archive name `{file}` gives no usable folder name");
        }
        let key = &hex::encode(Sha256::digest(name_or_url.as_bytes()))[..16];
        return Ok(Source {
            name: stem.to_string(),
            url: name_or_url.to_string(),
            sha256: None,
            archive: format!("urls/{key}/{file}"),
            folder: format!("urls/{key}/{stem}"),
            aliases: &[],
            bundled: None,
        });
    }
    let d = REGISTRY.iter().find(|d| d.name == name_or_url || d.folder == name_or_url).with_context(|| {
        let names: Vec<&str> = REGISTRY.iter().map(|d| d.name).collect();
        format!("unknown data set `{name_or_url}`: known are {}, or give an archive URL", names.join(", "))
    })?;
    Ok(Source {
        name: d.name.to_string(),
        url: d.url.to_string(),
        sha256: d.sha256.map(String::from),
        archive: d.archive.to_string(),
        folder: d.folder.to_string(),
        aliases: d.aliases,
        bundled: d.bundled.as_ref(),
    })
}

/// What `untar_data` is given besides the name: the archive's expected sha256 (over the
/// registry's), how far extraction and a download may go, and whether the run was asked
/// to stop (a download ends at once then).
#[derive(Clone, Debug)]
pub struct Fetch {
    pub sha256: Option<String>,
    pub archive: archive::Limits,
    pub download: download::Limits,
    pub stop: fn() -> Option<&'static str>,
}

impl Default for Fetch {
    fn default() -> Fetch {
        Fetch { sha256: None, archive: archive::Limits::default(), download: download::Limits::default(), stop: || None }
    }
}

/// Kept in every folder the runner extracts: the archive's URL and sha256.
pub const ARCHIVE_NOTE: &str = ".runner-archive.toml";

/// The folder of a data set, downloading and extracting it if needed.
pub fn untar_data(name_or_url: &str, opts: &Fetch, store: &Store) -> Result<Resolved> {
    let ds = lookup(name_or_url)?;
    let sha = opts.sha256.as_deref().or(ds.sha256.as_deref());
    let found = |folder: PathBuf, source| Ok(Resolved { name: ds.name.clone(), folder, source });
    for dir in store.dirs() {
        let folder = dir.join(&ds.folder);
        if folder.is_dir() {
            check_extracted(&folder, sha, opts.sha256.is_some())?;
            return found(folder, "full");
        }
    }
    let dest = store.cache.join(&ds.folder);
    for dir in store.dirs() {
        let archive = dir.join(&ds.archive);
        if archive.is_file() {
            let got = file_sha256(&archive)?;
            check_sha(&archive, &got, sha, &ds.name)?;
            return found(extract(&archive, &dest, &ds.url, &got, opts)?, "full");
        }
    }
    for alias in ds.aliases {
        for dir in store.dirs() {
            let folder = dir.join(alias);
            if folder.is_dir() {
                tracing::warn!("untar_data(\"{}\"): the full set is absent, using {} instead", ds.name, folder.display());
                return found(folder, "sample");
            }
        }
    }
    let archive = store.cache.join(&ds.archive);
    let fetched = fetch(&ds, &archive, sha, opts).and_then(|got| extract(&archive, &dest, &ds.url, &got, opts));
    match (fetched, ds.bundled) {
        (Ok(folder), _) => found(folder, "full"),
        // Asked to stop: the run ends, it does not carry on with the sample.
        (Err(e), Some(b)) if (opts.stop)().is_none() && Path::new(BUNDLED_DIR).join(b.folder).is_dir() => {
            let folder = Path::new(BUNDLED_DIR).join(b.folder);
            tracing::warn!(
                "untar_data(\"{}\"): {e:#}\n  using the bundled {}: {}\n  it shows the pipeline working, not real accuracy; the full set: {} \
                 (put it, or its extracted folder {}, in {})",
                ds.name,
                b.what,
                folder.display(),
                ds.url,
                ds.folder,
                store.data.display()
            );
            found(folder, "bundled sample")
        }
        (Err(e), _) => Err(e),
    }
}

/// A folder found already extracted: the archive it came from must have the sha256 asked
/// for. A folder put there by hand has no note; a hash the caller gave cannot be checked then.
fn check_extracted(folder: &Path, want: Option<&str>, asked: bool) -> Result<()> {
    let note = folder.join(ARCHIVE_NOTE);
    let Ok(text) = std::fs::read_to_string(&note) else {
        if asked {
            tracing::warn!(
                "untar_data: {} was not extracted by the runner (it has no {ARCHIVE_NOTE}), so the sha256 given is not checked",
                folder.display()
            );
        }
        return Ok(());
    };
    let had: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is damaged; delete {} to fetch it again", note.display(), folder.display()))?;
    let had_sha = had.get("sha256").and_then(|v| v.as_str()).unwrap_or_default();
    match want {
        Some(want) if !want.eq_ignore_ascii_case(had_sha) => bail!(
            "{} was extracted from an archive with sha256 {had_sha} ({}), not the sha256 {want} asked for; delete the folder to fetch it again",
            folder.display(),
            had.get("url").and_then(|v| v.as_str()).unwrap_or("unknown URL")
        ),
        _ => Ok(()),
    }
}

/// Extracts `archive` (from `url`, with sha256 `sha`) to `dest` within the limits, noting where it came from.
fn extract(archive: &Path, dest: &Path, url: &str, sha: &str, opts: &Fetch) -> Result<PathBuf> {
    archive::extract(archive, dest, opts.archive, |folder| {
        let mut note = toml::Table::new();
        note.insert("url".into(), url.into());
        note.insert("sha256".into(), sha.into());
        note.insert("extracted".into(), chrono::Local::now().to_rfc3339().into());
        std::fs::write(folder.join(ARCHIVE_NOTE), toml::to_string(&note)?)
            .with_context(|| format!("cannot write {}", folder.join(ARCHIVE_NOTE).display()))
    })
}

fn file_sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}

fn check_sha(what: &Path, got: &str, want: Option<&str>, name: &str) -> Result<()> {
    match want {
        Some(want) if !want.eq_ignore_ascii_case(got) => {
            bail!("checksum mismatch for {}: expected sha256 {want}, got {got}", what.display())
        }
        Some(_) => Ok(()),
        None => {
            tracing::warn!("no known sha256 for `{name}`: {} not verified (sha256 {got})", what.display());
            Ok(())
        }
    }
}

/// Downloads a data set's archive to `dest`, its hash checked; `RUNNER_OFFLINE=1` refuses
/// at once (machines without network, tests). Returns the archive's sha256.
fn fetch(ds: &Source, dest: &Path, sha: Option<&str>, opts: &Fetch) -> Result<String> {
    if std::env::var_os("RUNNER_OFFLINE").is_some_and(|v| !v.is_empty() && v != "0") {
        bail!("RUNNER_OFFLINE is set: not downloading {}", ds.url);
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    download::download(&ds.url, dest, &ds.name, opts.download, opts.stop, |got| check_sha(Path::new(&ds.url), got, sha, &ds.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_url_must_name_a_folder_inside_the_data_folder() {
        assert_eq!(lookup("http://host/x.zip").unwrap().folder, "x");
        for url in ["http://host/.zip", "http://host/..zip", "http://host/...tgz"] {
            let e = lookup(url).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("no usable folder name"), "{url}: {e}");
        }
    }
}
