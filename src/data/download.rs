//! Downloading an archive so that it always ends: a server that stalls, or trickles a
//! byte a second, fails the download after `timeout_s` with a message naming the option;
//! a stop request (Ctrl-C, SIGTERM) ends it at once. The body goes through a `.part` file,
//! hashed as it comes, and whatever stops the download removes that file.
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Default `timeout_s`: connecting, and each window the rate is measured over.
pub const DEFAULT_TIMEOUT_S: f64 = 60.0;
/// Default `min_rate` in bytes per second: a slow line gives far more, a stalled one less.
pub const DEFAULT_MIN_RATE: f64 = 1024.0;

/// How slow a download may be; each is an `untar_data` option of the same name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Seconds to connect, and the window over which at least `min_rate` must arrive.
    pub timeout_s: f64,
    /// Bytes per second, averaged over each `timeout_s` window (0: any trickle will do,
    /// but not silence).
    pub min_rate: f64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { timeout_s: DEFAULT_TIMEOUT_S, min_rate: DEFAULT_MIN_RATE }
    }
}

/// How often the download looks at the clock and at stop requests.
const TICK: Duration = Duration::from_millis(100);

/// Downloads `url` to `dest` through `dest.part`; `check` is given the body's sha256 and
/// may refuse it (nothing is left behind then). `stop` says whether (and by which signal)
/// the run was asked to stop. Returns the sha256.
pub fn download(
    url: &str,
    dest: &Path,
    name: &str,
    limits: Limits,
    stop: fn() -> Option<&'static str>,
    check: impl FnOnce(&str) -> Result<()>,
) -> Result<String> {
    if !(limits.timeout_s > 0.0 && limits.timeout_s.is_finite()) || !(limits.min_rate >= 0.0 && limits.min_rate.is_finite()) {
        bail!("untar_data options: timeout_s must be a positive number of seconds and min_rate a number of bytes per second >= 0");
    }
    let part = dest.with_extension("part");
    let result = fetch(url, &part, name, limits, stop).and_then(|sha| {
        check(&sha)?;
        std::fs::rename(&part, dest).with_context(|| format!("cannot move {} into place", dest.display()))?;
        Ok(sha)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

fn fetch(url: &str, part: &Path, name: &str, limits: Limits, stop: fn() -> Option<&'static str>) -> Result<String> {
    let timeout = Duration::from_secs_f64(limits.timeout_s);
    let agent = ureq::AgentBuilder::new().timeout_connect(timeout).timeout_read(timeout).build();
    let resp = agent.get(url).call().with_context(|| format!("cannot download {url}"))?;
    let len = resp.header("content-length").and_then(|l| l.parse::<u64>().ok());
    let bar = indicatif::ProgressBar::new(len.unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("downloading {name}"));
    // The body is read on its own thread, so that this one sees a stop request or a
    // stalled server at once, whatever the socket does; an abandoned reader ends at its
    // next read (its receiver is gone) or its read timeout.
    let (tx, rx) = crossbeam_channel::bounded::<std::io::Result<Vec<u8>>>(8);
    let mut reader = resp.into_reader();
    std::thread::spawn(move || loop {
        let mut buf = vec![0u8; 1 << 16];
        let got = reader.read(&mut buf).map(|n| {
            buf.truncate(n);
            buf
        });
        let last = !matches!(&got, Ok(b) if !b.is_empty());
        if tx.send(got).is_err() || last {
            return;
        }
    });
    let mut out = std::fs::File::create(part).with_context(|| format!("cannot write {}", part.display()))?;
    let mut hash = Sha256::new();
    let (mut window_start, mut window_bytes) = (Instant::now(), 0u64);
    let result = loop {
        if let Some(sig) = stop() {
            break Err(anyhow::anyhow!("interrupted by {sig} while downloading {url}"));
        }
        match rx.recv_timeout(TICK) {
            Ok(Ok(chunk)) if chunk.is_empty() => break Ok(()),
            Ok(Ok(chunk)) => {
                hash.update(&chunk);
                out.write_all(&chunk).with_context(|| format!("cannot write {}", part.display()))?;
                window_bytes += chunk.len() as u64;
                bar.inc(chunk.len() as u64);
            }
            Ok(Err(e)) => break Err(anyhow::Error::new(e).context(format!("download of {url} failed"))),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break Err(anyhow::anyhow!("download of {url} failed: the reader stopped")),
        }
        let spent = window_start.elapsed().as_secs_f64();
        if spent >= limits.timeout_s {
            if window_bytes == 0 {
                break Err(anyhow::anyhow!("download of {url} stalled: nothing arrived for {} s (untar_data option timeout_s)", limits.timeout_s));
            }
            let rate = window_bytes as f64 / spent;
            if rate < limits.min_rate {
                break Err(anyhow::anyhow!(
                    "download of {url} is too slow: {rate:.0} bytes/s over the last {spent:.0} s, under the minimum of {} bytes/s \
                     (untar_data options min_rate and timeout_s)",
                    limits.min_rate
                ));
            }
            (window_start, window_bytes) = (Instant::now(), 0);
        }
    };
    bar.finish_and_clear();
    result?;
    out.sync_all().with_context(|| format!("cannot write {}", part.display()))?;
    Ok(hex::encode(hash.finalize()))
}
