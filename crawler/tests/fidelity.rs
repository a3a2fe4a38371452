//! Fidelity of the extractors on recorded real files: no requirement is dropped silently, every
//! readable sdist is read, and hostile input ends in an `unknown` record, never an abort.
//! The files and where they come from: `tests/data/fidelity/SOURCES.md`.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use crawler::extract::Limits;
use crawler::extract::metadata::CoreMetadata;
use crawler::extract::sdist::{SdistMetadata, extract_sdist};
use db_format::MetadataSource;
use db_format::types::parse_requirement;

fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fidelity")
        .join(name);
    fs_err::read(&path).expect("recorded test file")
}

fn wheel_record(name: &str) -> db_format::DependencyRecord {
    CoreMetadata::parse(&data(name)).into_record(MetadataSource::WheelMetadata, None)
}

fn names(record: &db_format::DependencyRecord) -> Vec<String> {
    record
        .requires_dist
        .iter()
        .map(|text| {
            parse_requirement(text)
                .expect("stored strictly readable")
                .name
                .to_string()
        })
        .collect()
}

/// celery 3.1.0–5.2.0 publish `pytz (>dev)`; read strictly it was dropped and environments
/// built from the snapshot lacked pytz.
#[test]
fn regression_celery_keeps_pytz() {
    let record = wheel_record("celery-5.1.2-py3-none-any.whl.metadata");
    assert_eq!(record.source, MetadataSource::WheelMetadata);
    let names = names(&record);
    for wanted in ["pytz", "billiard", "kombu", "vine", "click"] {
        assert!(
            names.iter().any(|name| name == wanted),
            "{wanted} in {names:?}"
        );
    }
    assert!(
        record
            .requires_dist
            .contains(&"pytz>0.0.0.dev0".to_string())
    );
}

/// pandas 0.14–0.24 publish `pytz (>=2011k)`, a version PEP 440 does not know: the clause is
/// dropped (and said so in the detail), the dependency kept.
#[test]
fn regression_pandas_keeps_pytz() {
    let record = wheel_record("pandas-0.24.2-cp37-cp37m-manylinux1_x86_64.whl.metadata");
    assert_eq!(record.source, MetadataSource::WheelMetadata);
    assert_eq!(
        record.requires_dist,
        ["python-dateutil (>=2.5.0)", "pytz", "numpy (>=1.12.0)"]
    );
    assert!(
        record
            .detail
            .expect("relaxed clause noted")
            .contains(">=2011k")
    );
}

fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder
            .append_data(&mut header, path, *bytes)
            .expect("in memory");
    }
    let tar = builder.into_inner().expect("in memory");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&tar).expect("in memory");
    encoder.finish().expect("in memory")
}

/// ~5,000 nested parentheses in a Requires-Dist marker overflowed the stack and aborted the
/// crawler on every resume; through the real sdist and wheel extractors it is an `unknown`
/// record that says why.
#[test]
fn regression_deeply_nested_marker_is_an_unknown_record() {
    let deep = format!(
        "Metadata-Version: 2.2\nName: deep\nVersion: 1.0\nRequires-Dist: six; {}python_version > '3'{}\n",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let sdist = tar_gz(&[("deep-1.0/PKG-INFO", deep.as_bytes())]);
    let outcome = extract_sdist("deep-1.0.tar.gz", &sdist, &Limits::default()).expect("reads");
    let SdistMetadata::Static(record) = outcome else {
        panic!("decided from PKG-INFO")
    };
    assert_eq!(record.source, MetadataSource::Unknown);
    let detail = record.detail.expect("reason");
    assert!(
        detail.contains("nested") && detail.contains("Requires-Dist"),
        "{detail}"
    );
    assert!(
        detail.len() < 1000,
        "the bad line is quoted, not echoed whole"
    );

    let wheel =
        CoreMetadata::parse(deep.as_bytes()).into_record(MetadataSource::WheelMetadata, None);
    assert_eq!(wheel.source, MetadataSource::Unknown);
}

/// setuptools' release `69.3.0` has the sdist `setuptools-69.3.tar.gz`: the two files became two
/// releases, and `setuptools==69.3.0` picked the sdist where pip and uv take the wheel. Files
/// take the spelling of the release the index lists, and publishing groups equal versions.
#[test]
fn regression_setuptools_69_3_is_one_release() {
    let name = db_format::types::PackageName::from_str("setuptools").expect("valid");
    let url = url::Url::parse("https://pypi.org/simple/setuptools/").expect("valid");
    let page = crawler::pypi::project::parse_simple_page(
        &name,
        &url,
        &data("setuptools-69.3.simple.json"),
    )
    .expect("parses");
    let versions: Vec<&str> = page
        .files
        .iter()
        .map(|file| file.version.as_str())
        .collect();
    assert_eq!(versions, ["69.3.0", "69.3.0"]);

    // A state crawled before files took the listed spelling still publishes one release.
    let stored = |filename: &str, version: &str| crawler::state::StoredFile {
        filename: filename.into(),
        version: version.into(),
        kind: db_format::FileKind::of(filename),
        size: 1,
        sha256: Some([1; 32]),
        upload_time: Some(1),
        yanked: None,
        requires_python: None,
        url: format!("https://files.example/{filename}"),
        dependencies: None,
    };
    let project = crawler::publish::build_project(
        "setuptools",
        1,
        vec![
            stored("setuptools-69.3.tar.gz", "69.3"),
            stored("setuptools-69.3.0-py3-none-any.whl", "69.3.0"),
        ],
    );
    assert_eq!(project.releases.len(), 1);
    assert_eq!(project.releases[0].version, "69.3.0");
    assert_eq!(project.releases[0].files.len(), 2);
}

/// `lxml-4.6.3-cp39-cp39-win32.whl` has three bytes after its end record: Python's zipfile,
/// unzip and pip read it, the crawler called it corrupt. Read here from its recorded tail, the
/// way range requests see it.
#[test]
fn regression_lxml_win32_wheel_with_trailing_bytes_is_read() {
    use crawler::extract::zip;
    const SIZE: u64 = 3_209_427;
    let tail = data("lxml-4.6.3-cp39-cp39-win32.whl.tail");
    let tail_start = SIZE - tail.len() as u64;
    let directory = zip::locate_central_directory(&tail, tail_start).expect("end record found");
    assert_eq!(directory.shift, 0);
    let at = |offset: u64| usize::try_from(offset - tail_start).expect("in the tail");
    let directory_bytes = &tail[at(directory.offset)..at(directory.offset + directory.size)];
    let entries =
        zip::parse_central_directory(directory_bytes, directory.shift, &Limits::default())
            .expect("directory parses");
    let metadata = entries
        .iter()
        .find(|entry| entry.name == "lxml-4.6.3.dist-info/METADATA")
        .expect("METADATA listed");
    let header = &tail[at(metadata.local_header_offset)..];
    let data_offset = zip::local_data_offset(header).expect("local header");
    let bytes =
        zip::inflate(metadata, &header[data_offset as usize..], 1 << 20).expect("CRC-32 ok");
    let record = CoreMetadata::parse(&bytes).into_record(MetadataSource::WheelMetadata, None);
    assert_eq!(record.source, MetadataSource::WheelMetadata);
    assert!(
        record
            .provides_extra
            .iter()
            .any(|extra| extra == "cssselect"),
        "{record:?}"
    );
}

fn sdist_record(filename: &str, bytes: &[u8]) -> db_format::DependencyRecord {
    match extract_sdist(filename, bytes, &Limits::default()).expect("reads") {
        SdistMetadata::Static(record) => record,
        SdistMetadata::NeedsBuild(record) => panic!("{filename}: static expected, {record:?}"),
    }
}

/// `.tar.bz2` sdists (147 of 6,294 in a sample; every Twisted release 10–17) were not opened.
#[test]
fn regression_twisted_tar_bz2_is_read() {
    let record = sdist_record(
        "Twisted-16.4.1.tar.bz2",
        &data("Twisted-16.4.1.trimmed.tar.bz2"),
    );
    assert_eq!(record.source, MetadataSource::EggInfo);
    assert_eq!(record.requires_dist[0], "zope.interface >= 3.6.0");
    assert!(record.provides_extra.iter().any(|extra| extra == "tls"));
}

/// matplotlib 3.7.2 keeps its egg-info in `lib/`: only `top/` and `top/src/` were looked at.
#[test]
fn regression_matplotlib_egg_info_in_lib_is_found() {
    let record = sdist_record(
        "matplotlib-3.7.2.tar.gz",
        &data("matplotlib-3.7.2.trimmed.tar.gz"),
    );
    assert_eq!(record.source, MetadataSource::EggInfo);
    assert_eq!(
        record.detail.as_deref(),
        Some("matplotlib-3.7.2/lib/matplotlib.egg-info/requires.txt")
    );
    assert!(record.requires_dist.iter().any(|req| req == "numpy>=1.20"));
    assert!(
        record
            .build_requires
            .iter()
            .any(|req| req.starts_with("setuptools_scm"))
    );
}

/// A tar stream compressed with each format; `chunks` repeats of `tail` are appended as
/// separate compressed streams (cheap bombs, as concatenated gzip members are).
fn compressed(format: &str, tar: &[u8], tail: &[u8], chunks: usize) -> Vec<u8> {
    let compress = |bytes: &[u8]| -> Vec<u8> {
        match format {
            "bz2" => {
                let mut encoder =
                    bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                encoder.write_all(bytes).expect("in memory");
                encoder.finish().expect("in memory")
            }
            "xz" => {
                let mut encoder =
                    lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1))
                        .expect("encoder");
                encoder.write_all(bytes).expect("in memory");
                encoder.finish().expect("in memory")
            }
            other => panic!("no format {other}"),
        }
    };
    let mut out = compress(tar);
    if chunks > 0 {
        let chunk = compress(tail);
        for _ in 0..chunks {
            out.extend_from_slice(&chunk);
        }
    }
    out
}

/// A raw tar header: the name is written as given (the `tar` crate's builder refuses `..`).
fn raw_header(name: &str, size: u64, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    {
        let gnu = header.as_gnu_mut().expect("gnu header");
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(kind);
    header.set_cksum();
    header.as_bytes().to_vec()
}

fn raw_tar(members: &[(&str, &[u8], tar::EntryType, Option<&str>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data, kind, link) in members {
        out.extend(raw_header(name, data.len() as u64, *kind, *link));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// The hostile-archive limits hold for `.tar.bz2` and `.tar.xz` as for `.tar.gz`: escaping
/// paths and links are refused, and a member that expands past the archive cap is stopped.
#[test]
fn hostile_bz2_and_xz_archives_are_refused() {
    use crawler::extract::ExtractError;
    let regular = tar::EntryType::Regular;
    for format in ["bz2", "xz"] {
        let name = format!("x-1.0.tar.{format}");
        let error = |bytes: &[u8], limits: &Limits| match extract_sdist(&name, bytes, limits) {
            Err(err) => err,
            Ok(outcome) => panic!("{name}: expected an error, got {outcome:?}"),
        };
        let traversal = raw_tar(&[
            ("x-1.0/PKG-INFO", b"Metadata-Version: 2.1\n", regular, None),
            ("x-1.0/../../evil", b"x", regular, None),
        ]);
        assert!(matches!(
            error(&compressed(format, &traversal, b"", 0), &Limits::default()),
            ExtractError::UnsafePath { .. }
        ));
        let absolute = raw_tar(&[("/etc/cron.d/evil", b"x", regular, None)]);
        assert!(matches!(
            error(&compressed(format, &absolute, b"", 0), &Limits::default()),
            ExtractError::UnsafePath { .. }
        ));
        let link = raw_tar(&[(
            "x-1.0/PKG-INFO",
            b"",
            tar::EntryType::Symlink,
            Some("/etc/passwd"),
        )]);
        assert!(matches!(
            error(&compressed(format, &link, b"", 0), &Limits::default()),
            ExtractError::Link { .. }
        ));
        // A header declaring 1 GiB followed by 100 MiB of zeros in 1 MiB streams: a few KB
        // on disk, stopped at the 64 MiB cap.
        let header = raw_header("x-1.0/data.bin", 1 << 30, regular, None);
        let bomb = compressed(format, &header, &vec![0; 1 << 20], 100);
        assert!(bomb.len() < 2 << 20, "{format}: {} bytes", bomb.len());
        let limits = Limits {
            max_total_bytes: 64 << 20,
            ..Limits::default()
        };
        assert_eq!(
            error(&bomb, &limits),
            ExtractError::TooLarge { limit: 64 << 20 }
        );
        let mut truncated = compressed(format, &traversal, b"", 0);
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(
            error(&truncated, &Limits::default()),
            ExtractError::Corrupt(_)
        ));
    }
}

/// `len` incompressible bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut noise = Vec::with_capacity(len + 8);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    while noise.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.extend_from_slice(&state.to_le_bytes());
    }
    noise.truncate(len);
    noise
}

/// A sorted setuptools-style sdist: `before` incompressible bytes in a member sorting before
/// the members that decide its record (`PKG-INFO` 2.2, `setup.cfg`), `after` bytes after them.
fn sorted_sdist(before: usize, after: usize) -> Vec<u8> {
    tar_gz(&[
        ("streamed-1.0/LICENSE", &noise(before)),
        (
            "streamed-1.0/PKG-INFO",
            b"Metadata-Version: 2.2\nName: streamed\nVersion: 1.0\nRequires-Dist: six\n",
        ),
        ("streamed-1.0/setup.cfg", b"[egg_info]\ntag_build =\n"),
        ("streamed-1.0/tests/blob.bin", &noise(after)),
    ])
}

/// Bytes the server sent for `path` (ranges by their length, whole answers by `whole`).
fn bytes_sent(server: &support::FakePypi, path: &str, whole: u64) -> u64 {
    server
        .seen()
        .iter()
        .filter(|seen| seen.path.contains(path) && seen.method == "GET")
        .map(|seen| {
            match seen
                .range
                .as_deref()
                .and_then(|range| range.strip_prefix("bytes="))
            {
                Some(range) => {
                    let (start, end) = range.split_once('-').expect("start-end");
                    end.parse::<u64>().expect("end") - start.parse::<u64>().expect("start") + 1
                }
                None => whole,
            }
        })
        .sum()
}

fn crawled_record(server: &support::FakePypi) -> db_format::DependencyRecord {
    let dir = tempfile::tempdir().expect("tempdir");
    support::crawl(server, dir.path(), &["--packages", "streamed"]);
    let state = crawler::state::State::open(dir.path()).expect("state");
    let files = state.files("streamed").expect("files");
    files[0].dependencies.clone().expect("examined").record
}

/// Sdists were downloaded whole (93 % of a crawl's bytes); a tar sdist is now read in growing
/// parts until its first members decide the record, and those bytes are read twice to agree.
#[test]
fn a_sorted_sdist_is_read_only_as_far_as_its_deciding_members() {
    let sdist = sorted_sdist(0, 4 << 20);
    let size = sdist.len() as u64;
    let server = support::FakePypi::start();
    server.add_project("streamed", vec![("streamed-1.0.tar.gz".into(), sdist)]);
    let record = crawled_record(&server);
    assert_eq!(record.source, MetadataSource::SdistPkgInfo);
    assert_eq!(record.requires_dist, ["six"]);
    let sent = bytes_sent(&server, "streamed-1.0.tar.gz", size);
    assert!(sent <= 2 * (64 << 10), "{sent} of {size} bytes read");
}

/// A part corrupted on the way disagrees with its second read: the sdist is then downloaded
/// whole and checked against the index's sha256, never read from the corrupted bytes.
#[test]
fn a_corrupted_part_falls_back_to_a_checked_download() {
    let sdist = sorted_sdist(0, 4 << 20);
    let size = sdist.len() as u64;
    let server = support::FakePypi::start();
    server.add_project("streamed", vec![("streamed-1.0.tar.gz".into(), sdist)]);
    server.fault("streamed-1.0.tar.gz", vec![support::Fault::Corrupt]);
    let record = crawled_record(&server);
    assert_eq!(record.requires_dist, ["six"]);
    let whole_downloads = server
        .seen()
        .iter()
        .filter(|seen| seen.path.contains("streamed-1.0.tar.gz") && seen.range.is_none())
        .count();
    assert_eq!(whole_downloads, 1, "read whole after the parts disagreed");
    assert!(bytes_sent(&server, "streamed-1.0.tar.gz", size) > size);
}

/// The recorded sampletext sdist keeps its egg-info below its package directory
/// (`sampletext/src/sampletext.egg-info`): found now, it needs no build.
#[test]
fn an_egg_info_below_the_package_directory_is_found() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/build/sampletext-0.1.0.0.2.tar.gz");
    let bytes = fs_err::read(&path).expect("recorded");
    let record = sdist_record("sampletext-0.1.0.0.2.tar.gz", &bytes);
    assert_eq!(record.source, MetadataSource::EggInfo);
    assert_eq!(record.requires_dist, ["requests>=2.14.2"]);
}

/// Every platform wheel of a release cost one metadata request although most share one
/// `METADATA`: where the index states its sha256, each distinct file is fetched once.
#[test]
fn wheels_stating_the_same_metadata_hash_share_one_fetch() {
    let server = support::FakePypi::start();
    server.state_core_metadata(None);
    let metadata = b"Metadata-Version: 2.1\nName: streamed\nVersion: 1.0\nRequires-Dist: six\n";
    let mut files = Vec::new();
    for tag in ["manylinux1_x86_64", "win32", "macosx_10_9_x86_64"] {
        let wheel = format!("streamed-1.0-cp39-cp39-{tag}.whl");
        // Not a zip: reading a wheel instead of its metadata file would show as "unknown".
        files.push((wheel.clone(), format!("not a zip {tag}").into_bytes()));
        files.push((format!("{wheel}.metadata"), metadata.to_vec()));
    }
    server.add_project("streamed", files);
    let dir = tempfile::tempdir().expect("tempdir");
    support::crawl(&server, dir.path(), &["--packages", "streamed"]);
    let state = crawler::state::State::open(dir.path()).expect("state");
    let stored = state.files("streamed").expect("files");
    assert_eq!(stored.len(), 3);
    for file in stored {
        let extracted = file.dependencies.expect("examined");
        assert_eq!(extracted.record.requires_dist, ["six"], "{}", file.filename);
        assert_eq!(extracted.method, "pep658");
    }
    let fetched = server
        .seen()
        .iter()
        .filter(|seen| seen.path.ends_with(".metadata"))
        .count();
    assert_eq!(fetched, 1, "one metadata file, fetched once");
}

/// Decided past the middle of the file: reading the rest and checking the whole file's sha256
/// costs less than reading the decided bytes again, so a streamed sdist never costs more bytes
/// than downloading it.
#[test]
fn a_late_decision_reads_the_rest_instead_of_reading_twice() {
    let sdist = sorted_sdist(150 << 10, 150 << 10);
    let size = sdist.len() as u64;
    let server = support::FakePypi::start();
    server.add_project("streamed", vec![("streamed-1.0.tar.gz".into(), sdist)]);
    let record = crawled_record(&server);
    assert_eq!(record.requires_dist, ["six"]);
    assert_eq!(bytes_sent(&server, "streamed-1.0.tar.gz", size), size);
}
