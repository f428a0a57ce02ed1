//! Extracting a data set's archive (.tgz, .tar.gz, .tar, .zip) so that nothing in it can
//! hurt: entries that would escape the target (`../`, absolute paths, links, devices) are
//! refused; what it expands to is bounded (total bytes, bytes per member, and a ratio to
//! the archive's own size) while it streams, so a 1 MB archive of zeros cannot fill the
//! disk; a gzip stream is read to its end, so its CRC and length are checked; and it all
//! goes into a temp folder renamed into place, so a refused archive leaves nothing behind.
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Default `max_bytes`: more than any data set we know of (ImageNet's train set is ~140 GB).
pub const DEFAULT_MAX_BYTES: u64 = 200 << 30;
/// Default `max_entry_bytes`.
pub const DEFAULT_MAX_ENTRY_BYTES: u64 = 16 << 30;
/// Default `max_ratio`: photos barely compress, text about 10:1; zeros (a bomb) 1000:1.
pub const DEFAULT_MAX_RATIO: f64 = 100.0;
/// Archives smaller than this count as this big for `max_ratio`: expanding to a few MB is
/// never a bomb, whatever the ratio.
const RATIO_FLOOR_BYTES: u64 = 1 << 20;

/// How much an archive may expand to; each is an `untar_data` option of the same name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// All members together, in bytes.
    pub max_bytes: u64,
    /// One member, in bytes.
    pub max_entry_bytes: u64,
    /// What all members together may take, as a multiple of the archive's size.
    pub max_ratio: f64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_bytes: DEFAULT_MAX_BYTES, max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES, max_ratio: DEFAULT_MAX_RATIO }
    }
}

/// Counts what an extraction has written against the limits.
struct Budget {
    limits: Limits,
    archive_bytes: u64,
    total: u64,
}

impl Budget {
    fn ratio_allowance(&self) -> f64 {
        self.limits.max_ratio * self.archive_bytes.max(RATIO_FLOOR_BYTES) as f64
    }

    /// Takes `n` more bytes of member `name` (of which `entry` so far), or says which limit they pass.
    fn take(&mut self, name: &str, entry: u64, n: u64) -> Result<()> {
        self.total += n;
        let l = &self.limits;
        if entry > l.max_entry_bytes {
            bail!("archive member `{name}` expands past {} bytes (untar_data option max_entry_bytes); refusing to extract", l.max_entry_bytes);
        }
        if self.total > l.max_bytes {
            bail!("the archive expands past {} bytes at member `{name}` (untar_data option max_bytes); refusing to extract", l.max_bytes);
        }
        if self.total as f64 > self.ratio_allowance() {
            bail!(
                "the archive ({} bytes) expands past {} times its size at member `{name}`, a decompression bomb? \
                 (untar_data option max_ratio, {}); refusing to extract",
                self.archive_bytes,
                l.max_ratio,
                l.max_ratio
            );
        }
        Ok(())
    }

    /// Copies member `name` from `from` into `to` (`None`: read and dropped), counting as it goes.
    fn copy(&mut self, name: &str, from: &mut dyn Read, mut to: Option<&mut dyn Write>) -> Result<()> {
        let mut buf = vec![0u8; 1 << 16];
        let mut entry = 0u64;
        loop {
            let n = from.read(&mut buf).with_context(|| format!("cannot read archive member `{name}`"))?;
            if n == 0 {
                return Ok(());
            }
            entry += n as u64;
            self.take(name, entry, n as u64)?;
            if let Some(w) = to.as_deref_mut() {
                w.write_all(&buf[..n]).with_context(|| format!("cannot write archive member `{name}`"))?;
            }
        }
    }
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

/// Extracts `archive` into a temp folder next to `dest`, then renames it into place; an
/// archive holding a single top folder has that folder's content become `dest`. `mark`
/// writes what to remember about the archive into the extracted folder before it moves.
pub fn extract(archive: &Path, dest: &Path, limits: Limits, mark: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let parent = dest.parent().context("extraction target has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(".tmp-{}-{}", dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let unpacked = unpack(archive, &tmp, limits).with_context(|| format!("cannot extract {}", archive.display()));
    let result = unpacked.and_then(|()| {
        let entries: Vec<PathBuf> = std::fs::read_dir(&tmp)?.flatten().map(|e| e.path()).collect();
        let src = match entries.as_slice() {
            [only] if only.is_dir() => only.clone(),
            _ => tmp.clone(),
        };
        mark(&src)?;
        if dest.exists() {
            return Ok(()); // Extracted meanwhile by another process.
        }
        std::fs::rename(&src, dest).with_context(|| format!("cannot move the extracted files to {}", dest.display()))
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result.map(|()| dest.to_path_buf())
}

fn unpack(archive: &Path, into: &Path, limits: Limits) -> Result<()> {
    if !(limits.max_ratio > 0.0) {
        bail!("untar_data option max_ratio must be a positive number, got {}", limits.max_ratio);
    }
    let name = archive.to_string_lossy().to_lowercase();
    let file = std::fs::File::open(archive)?;
    let mut budget = Budget { limits, archive_bytes: file.metadata()?.len(), total: 0 };
    let create = |rel: &Path| -> Result<std::fs::File> {
        let out = into.join(rel);
        if let Some(p) = out.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::File::create(&out).with_context(|| format!("cannot create {}", out.display()))
    };
    if name.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(file)?;
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i)?;
            let member = entry.name().to_string();
            let rel = safe_path(Path::new(&member))?;
            if entry.is_symlink() {
                bail!("archive entry `{member}` is a link; refusing to extract");
            }
            if entry.is_dir() {
                std::fs::create_dir_all(into.join(&rel))?;
            } else {
                // Read to its end, so that the zip reader checks the member's CRC.
                budget.copy(&member, &mut entry, Some(&mut create(&rel)?))?;
            }
        }
        return Ok(());
    }
    let gzip = !name.ends_with(".tar");
    let reader: Box<dyn Read> = if gzip { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let rel = safe_path(&path)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(into.join(&rel))?;
        } else if kind.is_file() {
            budget.copy(&path.display().to_string(), &mut entry, Some(&mut create(&rel)?))?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            bail!("archive entry `{}` is a link; refusing to extract", path.display());
        } else if !matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            bail!("archive entry `{}` is not a file or folder; refusing to extract", path.display());
        }
    }
    if gzip {
        // The tar reader stops at the end-of-archive blocks; the gzip trailer (CRC and
        // length) is only checked once the stream is read to its end.
        budget.copy("(after the last member)", &mut tar.into_inner(), None).context("the gzip stream is damaged")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    fn extract_bytes(dir: &Path, file: &str, bytes: &[u8], limits: Limits) -> Result<PathBuf> {
        let archive = dir.join(file);
        std::fs::write(&archive, bytes).unwrap();
        extract(&archive, &dir.join("out"), limits, |_| Ok(()))
    }

    fn only_archives_left(dir: &Path) {
        let left: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name()).filter(|n| !n.to_string_lossy().contains(".t")).collect();
        assert!(left.is_empty(), "nothing half-extracted: {left:?}");
    }

    #[test]
    fn a_cut_or_damaged_gzip_stream_is_refused() {
        let good = tgz(&[("d/a.txt", b"hello"), ("d/b.txt", &[7u8; 5000])]);
        let d = tempfile::tempdir().unwrap();
        let out = extract_bytes(d.path(), "good.tgz", &good, Limits::default()).unwrap();
        assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"hello");
        std::fs::remove_dir_all(&out).unwrap();
        // The trailer (CRC32 and length, 8 bytes) cut, then one CRC byte flipped.
        let cut = &good[..good.len() - 8];
        let e = format!("{:#}", extract_bytes(d.path(), "cut.tgz", cut, Limits::default()).unwrap_err());
        assert!(e.contains("cut.tgz") && e.contains("gzip stream is damaged"), "{e}");
        let mut flipped = good.clone();
        let at = flipped.len() - 6;
        flipped[at] ^= 0x55;
        let e = format!("{:#}", extract_bytes(d.path(), "crc.tgz", &flipped, Limits::default()).unwrap_err());
        assert!(e.contains("crc.tgz") && e.contains("gzip stream is damaged"), "{e}");
        only_archives_left(d.path());
    }

    #[test]
    fn every_limit_stops_extraction_while_it_streams_and_names_the_member() {
        let d = tempfile::tempdir().unwrap();
        let data = vec![0u8; 300_000];
        let archive = tgz(&[("big/ok.bin", &data[..1000]), ("big/zeros.bin", &data), ("big/more.bin", &data)]);
        let cases = [
            (
                Limits { max_entry_bytes: 100_000, ..Limits::default() },
                "member `big/zeros.bin` expands past 100000 bytes (untar_data option max_entry_bytes)",
            ),
            (Limits { max_bytes: 400_000, ..Limits::default() }, "expands past 400000 bytes at member `big/more.bin` (untar_data option max_bytes)"),
            (Limits { max_ratio: 0.2, ..Limits::default() }, "expands past 0.2 times its size at member `big/zeros.bin`"),
        ];
        for (limits, want) in cases {
            let e = format!("{:#}", extract_bytes(d.path(), "a.tgz", &archive, limits).unwrap_err());
            assert!(e.contains(want), "{e}");
            only_archives_left(d.path());
        }
        let out = extract_bytes(d.path(), "a.tgz", &archive, Limits::default()).unwrap();
        assert_eq!(std::fs::metadata(out.join("more.bin")).unwrap().len(), 300_000, "under the limits it all comes out");
    }
}
