//! untar_data through the real binary: downloads from a server on 127.0.0.1 (tests never
//! reach the internet), the cache, checksums, and archives that try to escape their folder.
mod common;
use common::{Ran, Sandbox};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Serves `files` by path over HTTP/1.1 on 127.0.0.1; returns the base URL and a request counter.
fn serve(files: HashMap<String, Vec<u8>>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            h.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let mut stream = stream;
            match files.get(&path) {
                Some(body) => {
                    let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = stream.write_all(body);
                }
                None => {
                    let _ = write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
            }
        }
    });
    (base, hits)
}

/// A .tgz whose entries are (raw name, bytes); names are written as-is, `../` included.
fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, data) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// Every path below `dir` (none when it is missing).
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        }
        out.push(p);
    }
    out
}

fn face() -> Vec<u8> {
    std::fs::read(common::datasets().join("orl_faces/s1/1.pgm")).unwrap()
}

fn run(sb: &Sandbox, text: &str) -> Ran {
    sb.write("d.rhai", text);
    sb.command(&["d.rhai"]).env("RUNNER_CACHE", sb.path().join("cache")).output().unwrap().into()
}

#[test]
fn downloads_over_http_extract_once_then_come_from_the_cache() {
    let face = face();
    let good = tgz(&[("faces/a/1.pgm", &face), ("faces/b/2.pgm", &face)]);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&good))
    };
    let (base, hits) = serve(HashMap::from([("/faces.tgz".to_string(), good)]));
    let sb = Sandbox::new();
    let script =
        format!("let p = untar_data(\"{base}/faces.tgz\", #{{ sha256: \"{sha}\" }});\nprint(p);\nprint(`n ${{get_image_files(p).len()}}`);\n");
    let r = run(&sb, &script);
    r.ok();
    // Kept under the URL's own folder: another URL with the same file name gets another.
    let folder = std::path::PathBuf::from(r.stdout.lines().next().unwrap());
    assert!(folder.starts_with(sb.path().join("cache/urls")) && folder.ends_with("faces") && r.stdout.contains("n 2"), "{}", r.stdout);
    assert!(folder.join("a/1.pgm").is_file());
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    run(&sb, &script).ok();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the second call uses the cache, no network");
    // Without a known hash the check is skipped, with a warning.
    let fresh = Sandbox::new();
    let r = run(&fresh, &format!("untar_data(\"{base}/faces.tgz\");\n"));
    r.ok();
    assert!(r.stderr.contains("no known sha256") && r.stderr.contains("not verified"), "{}", r.stderr);
}

#[test]
fn checksum_mismatch_is_an_error_and_leaves_nothing_behind() {
    let (base, _) = serve(HashMap::from([("/faces.tgz".to_string(), tgz(&[("faces/1.pgm", &face())]))]));
    let sb = Sandbox::new();
    let r = run(&sb, &format!("let x = 1;\nuntar_data(\"{base}/faces.tgz\", #{{ sha256: \"{}\" }});\n", "0".repeat(64)));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("d.rhai:2:") && r.stderr.contains("checksum mismatch"), "{}", r.stderr);
    let left: Vec<_> = walkdir(&sb.path().join("cache")).into_iter().filter(|p| p.is_file()).collect();
    assert!(left.is_empty(), "no archive, .part or folder left: {left:?}");

    // A registry archive found locally is checked too.
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("omniglot")).unwrap();
    std::fs::write(data.path().join("omniglot/images_background_small1.zip"), b"not the real zip").unwrap();
    sb.write("o.rhai", "untar_data(\"omniglot_small1\");\n");
    let r: Ran = sb.command(&["o.rhai"]).env("RUNNER_DATA", data.path()).env("RUNNER_CACHE", sb.path().join("cache")).output().unwrap().into();
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("o.rhai:1:") && r.stderr.contains("checksum mismatch") && r.stderr.contains("images_background_small1.zip"),
        "{}",
        r.stderr
    );
}

#[test]
fn archives_escaping_their_folder_are_refused() {
    let face = face();
    let mut link = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    link.append_link(&mut h, "x/passwd", "/etc/passwd").unwrap();
    let link = link.into_inner().unwrap().finish().unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("../evil.pgm", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(&face).unwrap();
    let zip = zip.finish().unwrap().into_inner();
    let (base, _) = serve(HashMap::from([
        ("/dots.tgz".to_string(), tgz(&[("ok/1.pgm", &face), ("../evil.pgm", &face)])),
        ("/abs.tgz".to_string(), tgz(&[("/tmp/runner-evil.pgm", &face)])),
        ("/link.tgz".to_string(), link),
        ("/dots.zip".to_string(), zip),
    ]));
    let sb = Sandbox::new();
    for (name, msg) in [
        ("dots.tgz", "escapes the target folder"),
        ("abs.tgz", "escapes the target folder"),
        ("link.tgz", "is a link"),
        ("dots.zip", "escapes the target folder"),
    ] {
        let r = run(&sb, &format!("\nuntar_data(\"{base}/{name}\");\n"));
        assert_eq!(r.code, 1, "{name}");
        assert!(r.stderr.contains("d.rhai:2:") && r.stderr.contains(msg), "{name}: {}", r.stderr);
    }
    assert!(!sb.path().join("evil.pgm").exists() && !sb.path().join("cache/evil.pgm").exists());
    assert!(!std::path::Path::new("/tmp/runner-evil.pgm").exists());
    let leftovers: Vec<_> = walkdir(&sb.path().join("cache"))
        .into_iter()
        .filter(|p| p.is_file() && !p.to_string_lossy().ends_with(".tgz") && !p.to_string_lossy().ends_with(".zip"))
        .collect();
    assert!(leftovers.is_empty(), "no partial extraction left: {leftovers:?}");
}

#[test]
fn unknown_names_list_the_registry() {
    let sb = Sandbox::new();
    let r = run(&sb, "untar_data(\"imagenette\");\n");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("unknown data set `imagenette`") && r.stderr.contains("pets, orl_faces"), "{}", r.stderr);
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

// Issue #25, 3: a 1 MB zip and a 1 MB tgz that expand to 1 GiB are refused while they
// stream (by the default ratio limit), naming the member, leaving nothing extracted.
#[test]
fn archive_bombs_are_refused_while_they_stream() {
    let gib = 1u64 << 30;
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best()));
    let mut h = tar::Header::new_gnu();
    h.set_size(gib);
    h.set_mode(0o644);
    b.append_data(&mut h, "bomb/zeros.pgm", std::io::repeat(0).take(gib)).unwrap();
    let bomb_tgz = b.into_inner().unwrap().finish().unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_level(Some(9)).large_file(true);
    zip.start_file("bomb/zeros.pgm", opts).unwrap();
    std::io::copy(&mut std::io::repeat(0).take(gib), &mut zip).unwrap();
    let zip = zip.finish().unwrap().into_inner();
    assert!(bomb_tgz.len() < 2 << 20 && zip.len() < 2 << 20, "small archives: {} and {} bytes", bomb_tgz.len(), zip.len());
    let (base, _) = serve(HashMap::from([("/bomb.tgz".to_string(), bomb_tgz), ("/bomb.zip".to_string(), zip)]));
    let sb = Sandbox::new();
    for name in ["bomb.tgz", "bomb.zip"] {
        let t = std::time::Instant::now();
        let r = run(&sb, &format!("\nuntar_data(\"{base}/{name}\");\n"));
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        assert!(r.stderr.contains("d.rhai:2:") && r.stderr.contains("times its size at member `bomb/zeros.pgm`"), "{name}: {}", r.stderr);
        assert!(r.stderr.contains("max_ratio"), "the option that raises the limit is named: {}", r.stderr);
        assert!(t.elapsed() < std::time::Duration::from_secs(60), "{name}: stopped early, not after 1 GiB");
        let left: Vec<_> = walkdir(&sb.path().join("cache"))
            .into_iter()
            .filter(|p| p.is_file() && !p.to_string_lossy().ends_with(".tgz") && !p.to_string_lossy().ends_with(".zip"))
            .collect();
        assert!(left.is_empty(), "{name}: nothing half-extracted: {left:?}");
    }
    // The limits are options: a member over max_entry_bytes, refused by name.
    let small = tgz(&[("faces/a/1.pgm", &face())]);
    let (base, _) = serve(HashMap::from([("/faces.tgz".to_string(), small)]));
    let r = run(&sb, &format!("untar_data(\"{base}/faces.tgz\", #{{ max_entry_bytes: 100 }});\n"));
    assert!(r.code == 1 && r.stderr.contains("member `faces/a/1.pgm` expands past 100 bytes (untar_data option max_entry_bytes)"), "{}", r.stderr);
    run(&sb, &format!("untar_data(\"{base}/faces.tgz\", #{{ max_entry_bytes: 1000000, max_ratio: 2.0 }});\n")).ok();
}

// Issue #25, 4: the gzip trailer is checked: cut or with a wrong CRC, the archive is refused.
#[test]
fn a_tgz_with_a_cut_trailer_or_a_wrong_crc_is_refused() {
    let good = tgz(&[("faces/a/1.pgm", &face())]);
    let mut crc = good.clone();
    let at = crc.len() - 7;
    crc[at] ^= 0xff;
    let (base, _) = serve(HashMap::from([("/cut.tgz".to_string(), good[..good.len() - 8].to_vec()), ("/crc.tgz".to_string(), crc)]));
    let sb = Sandbox::new();
    for name in ["cut.tgz", "crc.tgz"] {
        let r = run(&sb, &format!("untar_data(\"{base}/{name}\");\n"));
        assert!(r.code == 1 && r.stderr.contains(name) && r.stderr.contains("the gzip stream is damaged"), "{name}: {}", r.stderr);
    }
}

// Issue #25, 5: two URLs with the same file name are two data sets, and a cached folder is
// checked against the sha256 a later call gives.
#[test]
fn cached_archives_are_keyed_by_url_and_checked_against_the_hash_given() {
    let (a, b) = (tgz(&[("faces/a/1.pgm", &face())]), tgz(&[("faces/a/1.pgm", &face()), ("faces/b/2.pgm", &face())]));
    let (sha_a, sha_b) = (sha256(&a), sha256(&b));
    let (base, hits) = serve(HashMap::from([("/a/faces.tgz".to_string(), a), ("/b/faces.tgz".to_string(), b)]));
    let sb = Sandbox::new();
    let count =
        |url: &str, sha: &str| format!("let p = untar_data(\"{base}{url}\", #{{ sha256: \"{sha}\" }});\nprint(`n ${{get_image_files(p).len()}}`);\n");
    let r = run(&sb, &count("/a/faces.tgz", &sha_a));
    r.ok();
    assert!(r.stdout.contains("n 1"), "{}", r.stdout);
    let r = run(&sb, &count("/b/faces.tgz", &sha_b));
    r.ok();
    assert!(r.stdout.contains("n 2"), "the other URL's archive, not the first one's folder: {}", r.stdout);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let r = run(&sb, &count("/a/faces.tgz", &sha_b));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!("was extracted from an archive with sha256 {sha_a}"))
            && r.stderr.contains(&format!("not the sha256 {sha_b} asked for")),
        "{}",
        r.stderr
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2, "checked against what was kept, no download");
}

/// Answers every request with a 1 MB body sent one byte a second; returns the base URL.
fn serve_slowly() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let mut stream = stream;
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n");
                while stream.write_all(b"x").and_then(|()| stream.flush()).is_ok() {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            });
        }
    });
    base
}

// Issue #25, 6: a download that trickles fails after timeout_s under min_rate, and SIGTERM
// stops one at once: the run is recorded `interrupted` and no `.part` file is left.
#[test]
fn downloads_that_never_finish_are_stopped() {
    let base = serve_slowly();
    let sb = Sandbox::new();
    let t = std::time::Instant::now();
    let r = run(&sb, &format!("untar_data(\"{base}/slow.tgz\", #{{ timeout_s: 2.0 }});\n"));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("is too slow") && r.stderr.contains("under the minimum of 1024 bytes/s") && r.stderr.contains("min_rate"),
        "{}",
        r.stderr
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(30), "{:?}", t.elapsed());
    let part = |sb: &Sandbox| walkdir(&sb.path().join("cache")).into_iter().filter(|p| p.to_string_lossy().ends_with(".part")).collect::<Vec<_>>();
    assert!(part(&sb).is_empty(), "{:?}", part(&sb));

    let sb = Sandbox::new();
    sb.write("d.rhai", &format!("untar_data(\"{base}/slow.tgz\");\n"));
    let child = sb.command(&["d.rhai"]).env("RUNNER_CACHE", sb.path().join("cache")).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let t = std::time::Instant::now();
    while part(&sb).is_empty() {
        assert!(t.elapsed() < std::time::Duration::from_secs(60), "the download never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success());
    let stopped = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stopped.elapsed() < std::time::Duration::from_secs(5), "stopped at once, not at the next byte or timeout: {:?}", stopped.elapsed());
    assert!(stderr.contains("interrupted by SIGTERM while downloading"), "{stderr}");
    let rec = sb.record(&sb.last_run());
    assert_eq!(rec["status"].as_str(), Some("interrupted"), "{rec:?}");
    assert!(part(&sb).is_empty(), "the partial file is removed: {:?}", part(&sb));
}
