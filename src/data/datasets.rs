//! `untar_data`: known data sets by name (or any archive URL), found in the data folder or
//! its cache without network, else downloaded with progress, checked against sha256 and
//! extracted atomically (temp folder, then rename) refusing entries that would escape the
//! target (`../`, absolute paths, links).
//!
//! Folders: `RUNNER_DATA` is searched first and never written (it may be a shared folder);
//! archives are extracted, and downloads land, in `RUNNER_CACHE`, else the user's cache
//! dir + `runner/data` (which is also searched). A set with a sample bundled in the source
//! tree (`assets/data/`) falls back to it, loudly, when it can be neither found nor downloaded,
//! so that the first experiment runs on a fresh machine without network.
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
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
        return Ok(Source {
            name: stem.to_string(),
            url: name_or_url.to_string(),
            sha256: None,
            archive: file.to_string(),
            folder: stem.to_string(),
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

/// The folder of a data set, downloading and extracting it if needed. `sha256` overrides
/// (or supplies) the registry's hash.
pub fn untar_data(name_or_url: &str, sha256: Option<&str>, store: &Store) -> Result<Resolved> {
    let ds = lookup(name_or_url)?;
    let sha = sha256.or(ds.sha256.as_deref());
    let found = |folder: PathBuf, source| Ok(Resolved { name: ds.name.clone(), folder, source });
    for dir in store.dirs() {
        let folder = dir.join(&ds.folder);
        if folder.is_dir() {
            return found(folder, "full");
        }
    }
    for dir in store.dirs() {
        let archive = dir.join(&ds.archive);
        if archive.is_file() {
            check_sha(&archive, &file_sha256(&archive)?, sha, &ds.name)?;
            return found(extract(&archive, &store.cache.join(&ds.folder))?, "full");
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
    let fetched = download(&ds.url, &archive, &ds.name, |got, _| check_sha(Path::new(&ds.url), got, sha, &ds.name))
        .and_then(|_| extract(&archive, &store.cache.join(&ds.folder)));
    match (fetched, ds.bundled) {
        (Ok(folder), _) => found(folder, "full"),
        (Err(e), Some(b)) if Path::new(BUNDLED_DIR).join(b.folder).is_dir() => {
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

pub fn file_sha256(path: &Path) -> Result<String> {
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

/// Whether `RUNNER_OFFLINE` asks for no downloads (machines without network, tests).
pub fn offline() -> bool {
    std::env::var_os("RUNNER_OFFLINE").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Downloads `url` to `dest` through a partial file of this process's own (two processes
/// fetching the same file do not clash), hashing and counting as it goes; `check` is given
/// the sha256 and the size and may refuse them, and whatever goes wrong leaves nothing
/// behind. `RUNNER_OFFLINE=1` refuses at once. Returns the sha256.
pub fn download(url: &str, dest: &Path, name: &str, check: impl FnOnce(&str, u64) -> Result<()>) -> Result<String> {
    if offline() {
        bail!("RUNNER_OFFLINE is set: not downloading {url}");
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let resp = ureq::get(url).call().with_context(|| format!("cannot download {url}"))?;
    let len = resp.header("content-length").and_then(|l| l.parse::<u64>().ok());
    let bar = indicatif::ProgressBar::new(len.unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("downloading {name}"));
    static PARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = PARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let part = dest.with_extension(format!("{}-{n}.part", std::process::id()));
    let result = (|| -> Result<(String, u64)> {
        let mut out = std::fs::File::create(&part).with_context(|| format!("cannot write {}", part.display()))?;
        let mut reader = resp.into_reader();
        let mut h = Sha256::new();
        let mut bytes = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf).with_context(|| format!("download of {url} failed"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n]).with_context(|| format!("cannot write {}", part.display()))?;
            bytes += n as u64;
            bar.inc(n as u64);
        }
        out.sync_all()?;
        Ok((hex::encode(h.finalize()), bytes))
    })();
    bar.finish_and_clear();
    let checked = result.and_then(|(got, bytes)| {
        check(&got, bytes)?;
        std::fs::rename(&part, dest).with_context(|| format!("cannot move {} into place", dest.display()))?;
        Ok(got)
    });
    if checked.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    checked
}

/// A relative path inside the target, or an error for one that would escape it.
fn safe_path(name: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => bail!("archive entry `{}` escapes the target folder; refusing to extract", name.display()),
        }
    }
    Ok(out)
}

/// Extracts into a temp folder next to `dest`, then renames it into place; an archive
/// holding a single top folder has that folder's content become `dest`.
pub fn extract(archive: &Path, dest: &Path) -> Result<PathBuf> {
    let parent = dest.parent().context("extraction target has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(".tmp-{}-{}", dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let unpacked = unpack(archive, &tmp).with_context(|| format!("cannot extract {}", archive.display()));
    let result = unpacked.and_then(|()| {
        let entries: Vec<PathBuf> = std::fs::read_dir(&tmp)?.flatten().map(|e| e.path()).collect();
        let src = match entries.as_slice() {
            [only] if only.is_dir() => only.clone(),
            _ => tmp.clone(),
        };
        if dest.exists() {
            return Ok(()); // Extracted meanwhile by another process.
        }
        std::fs::rename(&src, dest).with_context(|| format!("cannot move the extracted files to {}", dest.display()))
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result.map(|()| dest.to_path_buf())
}

fn unpack(archive: &Path, into: &Path) -> Result<()> {
    let name = archive.to_string_lossy().to_lowercase();
    let file = std::fs::File::open(archive)?;
    if name.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(file)?;
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i)?;
            let rel = safe_path(Path::new(entry.name()))?;
            if entry.is_symlink() {
                bail!("archive entry `{}` is a link; refusing to extract", entry.name());
            }
            let out = into.join(&rel);
            if entry.is_dir() {
                std::fs::create_dir_all(&out)?;
            } else {
                if let Some(p) = out.parent() {
                    std::fs::create_dir_all(p)?;
                }
                std::io::copy(&mut entry, &mut std::fs::File::create(&out)?)?;
            }
        }
        return Ok(());
    }
    let reader: Box<dyn Read> = if name.ends_with(".tar") { Box::new(file) } else { Box::new(flate2::read::GzDecoder::new(file)) };
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let rel = safe_path(&path)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(into.join(&rel))?;
        } else if kind.is_file() {
            let out = into.join(&rel);
            if let Some(p) = out.parent() {
                std::fs::create_dir_all(p)?;
            }
            entry.unpack(&out)?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            bail!("archive entry `{}` is a link; refusing to extract", path.display());
        } else if !matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            bail!("archive entry `{}` is not a file or folder; refusing to extract", path.display());
        }
    }
    Ok(())
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
