//! untar_data through the real binary: downloads from a server on 127.0.0.1 (tests never
//! reach the internet), the cache, checksums, and archives that try to escape their folder.
mod common;
use common::{Ran, Sandbox};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
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
    assert!(r.stdout.contains("cache/faces\n") && r.stdout.contains("n 2"), "{}", r.stdout);
    assert!(sb.path().join("cache/faces/a/1.pgm").is_file());
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
    let left: Vec<_> = std::fs::read_dir(sb.path().join("cache")).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "no archive or partial file left: {left:?}");
    assert!(!sb.path().join("cache/faces").exists());

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
    let leftovers: Vec<_> = std::fs::read_dir(sb.path().join("cache"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".tgz") && !n.to_string_lossy().ends_with(".zip"))
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
