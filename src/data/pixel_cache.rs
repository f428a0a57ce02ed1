//! The preprocessed cache on disk (the idea behind FFCV's files and fastai's presizing):
//! the deterministic part of the item pipeline, written once to a memory-mapped file and
//! shared by every run and sweep point on the machine. With `squish` or `pad` that is the
//! decoded image resized to the item size; with `crop`, whose box moves every epoch, the
//! decode at the smallest JPEG scale that covers the size. Random crops, flips, warps and
//! lighting run on top, so a cached epoch equals an uncached one. Memory stays bounded (the
//! page cache holds what fits), the folder's size on disk is bounded (least recently used
//! files go first), and a file is keyed by the images (path, length, modification time)
//! and the transform, so a changed image makes a new file, and a damaged file (a wrong
//! length, trailer or checksum) is found when it is opened and rebuilt.
//!
//! Layout: the images' bytes one after another, then an index of (offset, width, height,
//! crc32) per image (width 0: it could not be decoded), then a trailer (key, count, index
//! offset, version, magic, crc32 of index and trailer), written last and renamed into place.
use super::image::{decode_for, resize, Method, PadMode};
use super::pixels::Pixels;
use anyhow::{bail, Context, Result};
use memmap2::Mmap;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const MAGIC: &[u8; 8] = b"RUNNERPX";
const VERSION: u32 = 1;
const ENTRY: usize = 8 + 4 + 4 + 4;
const TRAILER: usize = 32 + 8 + 8 + 4 + 8 + 4;
/// Images decoded at once while building (the build's memory bound).
const CHUNK: usize = 256;

/// The folder the pixel caches of this machine live in: `pixels/` in the runner's cache
/// (`RUNNER_CACHE`, else the user's cache folder).
pub fn default_dir() -> PathBuf {
    super::datasets::Store::from_env().cache.join("pixels")
}

/// What is kept of an image: the transform's deterministic part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transform {
    pub channels: usize,
    pub method: Method,
    /// How `pad` fills (the augmentation's pad mode).
    pub pad: PadMode,
    pub size: u32,
}

impl Transform {
    /// The stored pixels of the image at `path`.
    pub fn stored(&self, path: &Path) -> Result<Pixels> {
        let decoded = decode_for(path, self.channels, self.method, self.size)?;
        match self.method {
            Method::Crop => Ok(decoded),
            m => resize(&decoded, m, self.pad, self.size, (0.5, 0.5)).with_context(|| format!("cannot resize {}", path.display())),
        }
    }

    /// The image at the loader's size, the crop at `at`, from what `stored` kept.
    pub fn sized(&self, stored: Pixels, at: (f64, f64)) -> Result<Pixels> {
        match self.method {
            Method::Crop => resize(&stored, Method::Crop, self.pad, self.size, at),
            _ => Ok(stored),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: u64,
    width: u32,
    height: u32,
    crc: u32,
}

/// An open cache file.
pub struct PixelCache {
    map: Mmap,
    entries: Vec<Entry>,
    channels: usize,
    pub path: PathBuf,
}

/// The key of `paths` under `t`: a changed image, list or transform is another file.
fn key(paths: &[PathBuf], t: Transform) -> Result<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(format!("v{VERSION} {} {:?} {:?} {}\n", t.channels, t.method, t.pad, t.size));
    for p in paths {
        let m = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        let mtime = m.modified().ok().and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).unwrap_or_default();
        h.update(format!("{}\0{}\0{}.{}\n", p.display(), m.len(), mtime.as_secs(), mtime.subsec_nanos()));
    }
    Ok(h.finalize().into())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl PixelCache {
    /// The cache of `paths` under `t` in `dir`: opened when a sound file is there, else
    /// built (decoding in `pool`; one process builds while others wait for it). None, with
    /// a warning, when it would not fit in `max_bytes`: the loader then reads the images
    /// uncached.
    pub fn open_or_build(dir: &Path, max_bytes: u64, paths: &[PathBuf], t: Transform, pool: &rayon::ThreadPool) -> Result<Option<PixelCache>> {
        let key = key(paths, t)?;
        let path = dir.join(format!("{}.px", hex::encode(&key[..16])));
        if let Ok(c) = PixelCache::open(&path, &key, paths.len(), t.channels) {
            touch(&path);
            return Ok(Some(c));
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the pixel cache folder {}", dir.display()))?;
        let _lock = Lock::take(&path.with_extension("lock"))?;
        match PixelCache::open(&path, &key, paths.len(), t.channels) {
            Ok(c) => return Ok(Some(c)),
            Err(e) if path.exists() => tracing::warn!("pixel cache {}: {e:#}; rebuilding it", path.display()),
            Err(_) => {}
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let built = build(&tmp, &key, paths, t, max_bytes, pool);
        let size = match built {
            Ok(Some(size)) => size,
            Ok(None) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!(
                    "the pixel cache of {} images would take more than cache_max_gb ({:.1} GB): reading them uncached",
                    paths.len(),
                    max_bytes as f64 / 1e9
                );
                return Ok(None);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        tracing::info!("pixel cache {}: {} images, {:.1} MB", path.display(), paths.len(), size as f64 / 1e6);
        evict(dir, max_bytes, &path);
        PixelCache::open(&path, &key, paths.len(), t.channels).map(Some)
    }

    /// Opens `path` if it is a sound cache of `n` images under `key`, every checksum checked.
    fn open(path: &Path, key: &[u8; 32], n: usize, channels: usize) -> Result<PixelCache> {
        let file = std::fs::File::open(path)?;
        // SAFETY: cache files are only ever replaced by rename, never written in place, so
        // the mapped bytes do not change under us.
        let map = unsafe { Mmap::map(&file)? };
        let len = map.len();
        if len < TRAILER {
            bail!("too short");
        }
        let t = &map[len - TRAILER..];
        let index_at = u64_at(t, 40) as usize;
        let sound_trailer = &t[52..60] == MAGIC && u32_at(t, 48) == VERSION && &t[..32] == key && u64_at(t, 32) == n as u64;
        if !sound_trailer || index_at.checked_add(n * ENTRY + TRAILER) != Some(len) {
            bail!("not a cache of these images (trailer)");
        }
        if crc32fast::hash(&map[index_at..len - 4]) != u32_at(t, 60) {
            bail!("damaged index");
        }
        let entries: Vec<Entry> = map[index_at..index_at + n * ENTRY]
            .chunks_exact(ENTRY)
            .map(|e| Entry { offset: u64_at(e, 0), width: u32_at(e, 8), height: u32_at(e, 12), crc: u32_at(e, 16) })
            .collect();
        let c = PixelCache { map, entries, channels, path: path.to_path_buf() };
        for (id, e) in c.entries.iter().enumerate() {
            match c.bytes(id) {
                Some(b) if crc32fast::hash(b) == e.crc => {}
                None if e.width == 0 => {}
                _ => bail!("damaged image {id}"),
            }
        }
        Ok(c)
    }

    /// The bytes of image `id`, None when it could not be decoded (or the index is wrong).
    fn bytes(&self, id: usize) -> Option<&[u8]> {
        let e = self.entries.get(id)?;
        let n = e.width as usize * e.height as usize * self.channels;
        let from = e.offset as usize;
        (e.width > 0).then_some(())?;
        self.map.get(from..from.checked_add(n)?)
    }

    /// The stored pixels of image `id`; None for an image that could not be decoded.
    pub fn get(&self, id: usize) -> Option<Pixels> {
        let e = self.entries[id];
        Some(Pixels { width: e.width, height: e.height, channels: self.channels, data: self.bytes(id)?.to_vec() })
    }

    /// The images that could not be decoded, in order.
    pub fn unreadable(&self) -> Vec<usize> {
        (0..self.entries.len()).filter(|&id| self.entries[id].width == 0).collect()
    }
}

/// Writes the cache of `paths` to `tmp`, a chunk of images at a time; returns its size,
/// or None as soon as it passes `max_bytes`.
fn build(tmp: &Path, key: &[u8; 32], paths: &[PathBuf], t: Transform, max_bytes: u64, pool: &rayon::ThreadPool) -> Result<Option<u64>> {
    let file = std::fs::File::create(tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut out = BufWriter::new(file);
    let mut index = Vec::with_capacity(paths.len() * ENTRY);
    let mut at = 0u64;
    for chunk in paths.chunks(CHUNK) {
        let done: Vec<Option<Pixels>> = pool.install(|| chunk.par_iter().map(|p| t.stored(p).ok()).collect());
        for px in done {
            let (w, h, crc) = match &px {
                Some(px) => {
                    out.write_all(&px.data)?;
                    (px.width, px.height, crc32fast::hash(&px.data))
                }
                None => (0, 0, 0),
            };
            index.extend_from_slice(&at.to_le_bytes());
            index.extend_from_slice(&w.to_le_bytes());
            index.extend_from_slice(&h.to_le_bytes());
            index.extend_from_slice(&crc.to_le_bytes());
            at += px.map_or(0, |p| p.data.len() as u64);
        }
        if at + (index.len() + TRAILER) as u64 > max_bytes {
            return Ok(None);
        }
    }
    let mut tail = index;
    tail.extend_from_slice(key);
    tail.extend_from_slice(&(paths.len() as u64).to_le_bytes());
    tail.extend_from_slice(&at.to_le_bytes());
    tail.extend_from_slice(&VERSION.to_le_bytes());
    tail.extend_from_slice(MAGIC);
    let crc = crc32fast::hash(&tail);
    tail.extend_from_slice(&crc.to_le_bytes());
    out.write_all(&tail)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(Some(at + tail.len() as u64))
}

/// Marks a cache as used now, for `evict`'s order.
fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Deletes the least recently used files of `dir` (never `keep`, nor a build younger than
/// an hour, which may be in progress) until the folder holds at most `max_bytes`.
fn evict(dir: &Path, max_bytes: u64, keep: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            let cache = name.ends_with(".px") || name.contains(".tmp-");
            (m.is_file() && cache).then(|| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (modified, len, path) in files {
        if total <= max_bytes {
            break;
        }
        let building = path.extension().is_some_and(|e| e != "px") && modified.elapsed().unwrap_or_default() < Duration::from_secs(3600);
        if path == keep || building {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
            tracing::info!("pixel cache {}: removed (cache_max_gb reached)", path.display());
        }
    }
}

/// An exclusive `flock` on a lock file while held: one process builds a cache at a time.
struct Lock {
    /// Held open: closing it releases the lock.
    _file: std::fs::File,
}

impl Lock {
    fn take(path: &Path) -> Result<Lock> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: flock on a file descriptor this process owns; released when it closes.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!("cannot lock {}: {}", path.display(), std::io::Error::last_os_error());
        }
        Ok(Lock { _file: f })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::image::PadMode;

    fn faces(n: usize) -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/orl_faces/s1");
        (1..=n).map(|i| root.join(format!("{i}.pgm"))).collect()
    }

    fn pool() -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap()
    }

    #[test]
    fn keeps_what_the_uncached_pipeline_computes_and_reuses_the_file() {
        let d = tempfile::tempdir().unwrap();
        let paths = faces(4);
        for (method, pad) in [(Method::Squish, PadMode::Zeros), (Method::Pad, PadMode::Reflection), (Method::Crop, PadMode::Zeros)] {
            let t = Transform { channels: 1, method, pad, size: 24 };
            let c = PixelCache::open_or_build(d.path(), u64::MAX, &paths, t, &pool()).unwrap().unwrap();
            for (id, p) in paths.iter().enumerate() {
                for at in [(0.5, 0.5), (0.0, 1.0)] {
                    let want = crate::data::image::load_resized(p, 1, method, pad, 24, at).unwrap();
                    assert_eq!(t.sized(c.get(id).unwrap(), at).unwrap(), want, "{method:?} image {id} at {at:?}");
                }
            }
            let again = PixelCache::open_or_build(d.path(), u64::MAX, &paths, t, &pool()).unwrap().unwrap();
            assert_eq!(again.path, c.path, "one file per images and transform");
        }
        let files = std::fs::read_dir(d.path()).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "px")).count();
        assert_eq!(files, 3);
        // A JPEG's uncached crop decodes only the rows its box reaches, which can differ from
        // the full decode by one level at the box's edge (see data::image's tests).
        let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/oxford-iiit-pet-sample/images/Abyssinian_101.jpg");
        let t = Transform { channels: 3, method: Method::Crop, pad: PadMode::Zeros, size: 64 };
        let c = PixelCache::open_or_build(d.path(), u64::MAX, std::slice::from_ref(&photo), t, &pool()).unwrap().unwrap();
        for at in [(0.5, 0.5), (0.1, 0.9)] {
            let (got, want) =
                (t.sized(c.get(0).unwrap(), at).unwrap(), crate::data::image::load_resized(&photo, 3, Method::Crop, PadMode::Zeros, 64, at).unwrap());
            assert!(got.data.iter().zip(&want.data).all(|(a, b)| a.abs_diff(*b) <= 1), "{at:?}");
        }
    }

    #[test]
    fn a_damaged_or_stale_file_is_rebuilt_and_a_bad_image_is_marked() {
        let d = tempfile::tempdir().unwrap();
        let mut paths = faces(3);
        let bad = d.path().join("bad.pgm");
        std::fs::write(&bad, b"P5 not an image").unwrap();
        paths.push(bad);
        let t = Transform { channels: 1, method: Method::Squish, pad: PadMode::Zeros, size: 16 };
        let c = PixelCache::open_or_build(d.path(), u64::MAX, &paths, t, &pool()).unwrap().unwrap();
        assert_eq!(c.unreadable(), [3]);
        assert!(c.get(3).is_none());
        let (file, good) = (c.path.clone(), c.get(1).unwrap());
        drop(c);
        // Flip one pixel byte: the checksum finds it and the file is rebuilt.
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[300] ^= 0xff;
        std::fs::write(&file, &bytes).unwrap();
        let key = key(&paths, t).unwrap();
        assert!(format!("{:#}", PixelCache::open(&file, &key, 4, 1).err().unwrap()).contains("damaged"));
        let c = PixelCache::open_or_build(d.path(), u64::MAX, &paths, t, &pool()).unwrap().unwrap();
        assert_eq!(c.get(1).unwrap(), good);
        // Truncated: the trailer is gone.
        std::fs::write(&file, &bytes[..bytes.len() - 10]).unwrap();
        assert!(PixelCache::open(&file, &key, 4, 1).is_err());
        // A changed image is another key, so another file.
        std::fs::write(&paths[3], std::fs::read(&paths[0]).unwrap()).unwrap();
        let c = PixelCache::open_or_build(d.path(), u64::MAX, &paths, t, &pool()).unwrap().unwrap();
        assert_ne!(c.path, file);
        assert!(c.unreadable().is_empty());
        assert_eq!(c.get(3).unwrap(), c.get(0).unwrap());
    }

    #[test]
    fn the_folder_stays_within_its_bound() {
        let d = tempfile::tempdir().unwrap();
        let paths = faces(4);
        let t = |size| Transform { channels: 1, method: Method::Squish, pad: PadMode::Zeros, size };
        // 4 images of 32 x 32 grey: 4 KB and the index; a bound of 6 KB holds one such file.
        let first = PixelCache::open_or_build(d.path(), 6000, &paths, t(32), &pool()).unwrap().unwrap().path;
        let second = PixelCache::open_or_build(d.path(), 6000, &paths, t(31), &pool()).unwrap().unwrap().path;
        assert!(!first.exists() && second.exists(), "the least recently used file went");
        assert!(PixelCache::open_or_build(d.path(), 1000, &paths, t(32), &pool()).unwrap().is_none(), "too big: uncached");
        assert!(std::fs::read_dir(d.path()).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().contains(".tmp-")));
    }
}
