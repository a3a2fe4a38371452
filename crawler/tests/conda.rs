//! Conda channels end to end: the real intel/free repodata of `tests/data/conda/` served by a
//! local HTTP server (anaconda.org is not reachable here), crawled with `--conda` (ETag, zstd),
//! published into a snapshot, read back; and every match spec of that data parsed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use db_format::Snapshot;
use sha2::{Digest, Sha256};

const TARGETS: [&str; 4] = [
    "free/noarch",
    "intel/linux-64",
    "intel/noarch",
    "intel/osx-64",
];

fn conda_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/conda")
}

/// A channel server: `/CH/SUB/repodata.json` from `tests/data/conda/CH/SUB.repodata.json`,
/// `/free/noarch/repodata.json.zst` compressed (the other channels offer no `.zst`: 404),
/// strong ETags and `If-None-Match` → 304. Records (path, status) of every request.
struct ChannelServer {
    port: u16,
    seen: Arc<Mutex<Vec<(String, u16)>>>,
}

impl ChannelServer {
    fn start() -> Self {
        let data = conda_data();
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for target in TARGETS {
            let (channel, subdir) = target.split_once('/').expect("CH/SUB");
            let json = std::fs::read(data.join(channel).join(format!("{subdir}.repodata.json")))
                .expect("repodata readable");
            if channel == "free" {
                files.insert(
                    format!("/{target}/repodata.json.zst"),
                    ruzstd::encoding::compress_to_vec(
                        json.as_slice(),
                        ruzstd::encoding::CompressionLevel::Fastest,
                    ),
                );
            }
            if target == "intel/noarch" {
                files.insert(format!("/{target}/current_repodata.json"), json.clone());
            }
            files.insert(format!("/{target}/repodata.json"), json);
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let files = Arc::new(files);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                // One thread per connection: the client keeps idle connections open.
                let (files, log) = (files.clone(), log.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let mut if_none_match = None;
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0
                                || header.trim().is_empty()
                            {
                                break;
                            }
                            if let Some((name, value)) = header.split_once(':')
                                && name.eq_ignore_ascii_case("if-none-match")
                            {
                                if_none_match = Some(value.trim().to_string());
                            }
                        }
                        let (status, body, etag) = match files.get(&path) {
                            Some(body) => {
                                let etag = format!("\"{}\"", hex::encode(Sha256::digest(body)));
                                if if_none_match.as_deref() == Some(etag.as_str()) {
                                    (304, Vec::new(), Some(etag))
                                } else {
                                    (200, body.clone(), Some(etag))
                                }
                            }
                            None => (404, b"not found".to_vec(), None),
                        };
                        log.lock().expect("log").push((path, status));
                        let mut head =
                            format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                        if let Some(etag) = etag {
                            head.push_str(&format!("etag: {etag}\r\n"));
                        }
                        head.push_str("\r\n");
                        if stream.write_all(head.as_bytes()).is_err()
                            || stream.write_all(&body).is_err()
                        {
                            break;
                        }
                    }
                });
            }
        });
        ChannelServer { port, seen }
    }

    fn take_seen(&self) -> Vec<(String, u16)> {
        std::mem::take(&mut *self.seen.lock().expect("log"))
    }
}

fn crawler(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mach-nix-crawler"))
        .args(args)
        .output()
        .expect("crawler runs");
    assert!(
        output.status.success(),
        "mach-nix-crawler {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Records per (channel/subdir) in the raw JSON, counted independently of the crawler.
fn raw_counts() -> BTreeMap<String, (usize, usize)> {
    let data = conda_data();
    TARGETS
        .iter()
        .map(|target| {
            let (channel, subdir) = target.split_once('/').expect("CH/SUB");
            let mut text = String::new();
            std::fs::File::open(data.join(channel).join(format!("{subdir}.repodata.json")))
                .and_then(|mut file| file.read_to_string(&mut text))
                .expect("readable");
            let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let mut records = 0;
            let mut with_sha256 = 0;
            for key in ["packages", "packages.conda"] {
                if let Some(packages) = json.get(key).and_then(|p| p.as_object()) {
                    records += packages.len();
                    with_sha256 += packages
                        .values()
                        .filter(|r| r.get("sha256").is_some())
                        .count();
                }
            }
            (target.to_string(), (records, with_sha256))
        })
        .collect()
}

#[test]
fn conda_channels_crawl_with_etags_and_publish_into_the_snapshot() {
    let server = ChannelServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    let base = format!("http://127.0.0.1:{}", server.port);
    let crawl = [
        "crawl",
        "--state",
        state.to_str().expect("utf-8"),
        "--conda",
        &TARGETS.join(","),
        "--conda-url",
        &base,
        "--rate",
        "0",
        "--retries",
        "0",
    ];
    crawler(&crawl);
    let first = server.take_seen();
    // free/noarch came compressed; intel offers no .zst and was fetched as JSON.
    assert!(
        first.contains(&("/free/noarch/repodata.json.zst".into(), 200)),
        "{first:?}"
    );
    assert!(
        !first
            .iter()
            .any(|(path, _)| path == "/free/noarch/repodata.json"),
        "{first:?}"
    );
    assert!(
        first.contains(&("/intel/linux-64/repodata.json.zst".into(), 404)),
        "{first:?}"
    );
    assert!(
        first.contains(&("/intel/linux-64/repodata.json".into(), 200)),
        "{first:?}"
    );
    let stored = state.join("conda/free/noarch/repodata.json");
    assert_eq!(
        std::fs::read(&stored).expect("stored decompressed"),
        std::fs::read(conda_data().join("free/noarch.repodata.json")).expect("repodata")
    );

    // Again: every channel answers 304 to the stored ETag; nothing is downloaded.
    crawler(&crawl);
    let second = server.take_seen();
    let downloads: Vec<_> = second.iter().filter(|(_, status)| *status == 200).collect();
    assert!(
        downloads.is_empty(),
        "re-crawl downloaded again: {second:?}"
    );
    assert_eq!(
        second.iter().filter(|(_, status)| *status == 304).count(),
        4,
        "{second:?}"
    );

    let hash = crawler(&[
        "publish-db",
        "--state",
        state.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let pin = db_format::blob::BlobHash::from_hex(hash.trim()).expect("a pin");
    let snapshot = Snapshot::from_source(&pin, Box::new(db_format::blob::DirSource::new(&out)))
        .expect("opens");
    snapshot.verify().expect("verifies");
    let counts = raw_counts();
    let expected: usize = counts.values().map(|(records, _)| records).sum();
    assert_eq!(snapshot.meta().conda_record_count, expected as u64);
    assert_eq!(counts["intel/linux-64"].0, 4548, "the README's figure");
    let mut per_target: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for record in snapshot.conda_records_all() {
        let record = record.expect("decodes");
        let entry = per_target
            .entry(format!("{}/{}", record.channel, record.subdir))
            .or_default();
        entry.0 += 1;
        entry.1 += usize::from(record.sha256.is_some());
        assert!(
            record.md5.is_some() || record.sha256.is_some(),
            "{}",
            record.filename
        );
        assert_eq!(
            record.url,
            format!(
                "{base}/{}/{}/{}",
                record.channel, record.subdir, record.filename
            )
        );
    }
    assert_eq!(per_target, counts);
    assert_eq!(
        counts["intel/linux-64"].1, 547,
        "the README's sha256 figure"
    );

    let numpy = snapshot.conda_records("numpy").expect("lookup");
    let py39 = numpy
        .iter()
        .find(|r| r.subdir == "linux-64" && r.depends.iter().any(|d| d.starts_with("python >=3.9")))
        .expect("an intel numpy for python 3.9");
    assert_eq!(py39.channel, "intel");
    assert!(
        py39.depends.iter().any(|d| d.starts_with("mkl")),
        "{:?}",
        py39.depends
    );
    assert!(py39.timestamp.is_some() && py39.size > 0);
}

#[test]
fn conda_current_fetches_current_repodata() {
    let server = ChannelServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    crawler(&[
        "crawl",
        "--state",
        state.to_str().expect("utf-8"),
        "--conda",
        "intel/noarch",
        "--conda-current",
        "--conda-url",
        &format!("http://127.0.0.1:{}", server.port),
        "--retries",
        "0",
    ]);
    let seen = server.take_seen();
    assert_eq!(
        seen,
        [
            ("/intel/noarch/current_repodata.json.zst".to_string(), 404),
            ("/intel/noarch/current_repodata.json".to_string(), 200)
        ]
    );
    assert!(state.join("conda/intel/noarch/repodata.json").is_file());
}

#[test]
fn a_channel_that_is_not_there_fails_the_crawl_with_its_name() {
    let server = ChannelServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_mach-nix-crawler"))
        .args(["crawl", "--state"])
        .arg(dir.path())
        .args([
            "--conda",
            "nosuch/linux-64",
            "--retries",
            "0",
            "--conda-url",
        ])
        .arg(format!("http://127.0.0.1:{}", server.port))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nosuch/linux-64") && stderr.contains("404"),
        "{stderr}"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_mach-nix-crawler"))
        .args(["crawl", "--state"])
        .arg(dir.path())
        .args(["--conda", "../etc/linux-64"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--conda"));
}

/// Every `depends`/`constrains` string of the shared repodata parses with rattler_conda_types,
/// or is reported; the figures are pinned so that a parser change is noticed.
#[test]
fn every_match_spec_of_the_real_repodata_parses_or_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = conda_data();
    for target in TARGETS {
        let (channel, subdir) = target.split_once('/').expect("CH/SUB");
        let into = dir.path().join("conda").join(channel).join(subdir);
        std::fs::create_dir_all(&into).expect("mkdir");
        std::fs::copy(
            data.join(channel).join(format!("{subdir}.repodata.json")),
            into.join("repodata.json"),
        )
        .expect("copy");
    }
    let (records, skipped) = crawler::conda::all_records(dir.path()).expect("records");
    assert_eq!(skipped, vec![], "every record of the real data is usable");
    let specs: usize = records
        .iter()
        .map(|r| r.depends.len() + r.constrains.len())
        .sum();
    let problems = crawler::conda::check_specs(&records);
    for problem in &problems {
        eprintln!(
            "{}: {:?}: {}",
            problem.filename, problem.spec, problem.error
        );
        assert!(!problem.error.is_empty());
    }
    eprintln!(
        "{} records, {specs} match specs, {} do not parse",
        records.len(),
        problems.len()
    );
    assert_eq!((records.len(), specs, problems.len()), (7953, 42636, 0));
}
