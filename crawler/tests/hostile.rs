//! Hostile archives, generated here: zip bombs, `../` and absolute tar paths, symlinks, a
//! 1 GB member, broken gzip, too many members. Reading them is bounded by the caps, ends in a
//! typed error that the crawl records as the file's "unknown" reason, and writes nothing.

mod support;

use std::io::Write;

use crawler::extract::sdist::extract_sdist;
use crawler::extract::{ExtractError, Limits};
use crawler::state::State;
use db_format::MetadataSource;
use support::{FakePypi, fast_flags};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("in memory");
    encoder.finish().expect("in memory")
}

/// A raw tar header: the name is written as given (the `tar` crate's builder refuses `..`).
fn tar_header(name: &str, size: u64, kind: tar::EntryType, link: Option<&str>) -> tar::Header {
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
    header
}

fn tar_gz(entries: &[(&str, &[u8], tar::EntryType, Option<&str>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data, kind, link) in entries {
        let header = tar_header(name, data.len() as u64, *kind, *link);
        builder.append(&header, *data).expect("in memory");
    }
    gzip(&builder.into_inner().expect("in memory"))
}

fn file(
    name: &'static str,
    data: &'static [u8],
) -> (
    &'static str,
    &'static [u8],
    tar::EntryType,
    Option<&'static str>,
) {
    (name, data, tar::EntryType::Regular, None)
}

/// A zip with one deflated member whose declared size is a lie.
fn zip_bomb(name: &str, real: usize, declared: u32) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..real / chunk.len() {
        encoder.write_all(&chunk).expect("in memory");
    }
    let data = encoder.finish().expect("in memory");
    let mut out = Vec::new();
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    out.extend_from_slice(&[20, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&declared.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&data);
    let central_offset = out.len() as u32;
    let mut central = Vec::new();
    central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    central.extend_from_slice(&[20, 3, 20, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    central.extend_from_slice(&(data.len() as u32).to_le_bytes());
    central.extend_from_slice(&declared.to_le_bytes());
    central.extend_from_slice(&(name.len() as u16).to_le_bytes());
    central.extend_from_slice(&[0; 8]);
    central.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes());
    central.extend_from_slice(&0u32.to_le_bytes());
    central.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A `.tar.gz` whose first member declares 1 GiB and whose stream really holds `real_mib` MiB
/// of zeros, as concatenated gzip members (cheap to build, ~1 KB each).
fn huge_member(real_mib: usize) -> Vec<u8> {
    let header = tar_header("big-1.0/data.bin", 1 << 30, tar::EntryType::Regular, None);
    let mut out = gzip(header.as_bytes());
    let zeros = gzip(&vec![0u8; 1 << 20]);
    for _ in 0..real_mib {
        out.extend_from_slice(&zeros);
    }
    out
}

fn expect_error(filename: &str, bytes: &[u8], limits: &Limits) -> ExtractError {
    match extract_sdist(filename, bytes, limits) {
        Err(err) => err,
        Ok(outcome) => panic!("{filename}: expected an error, got {outcome:?}"),
    }
}

#[test]
fn zip_bombs_are_stopped_at_their_declared_size() {
    let bomb = zip_bomb("bomb-1.0/PKG-INFO", 32 << 20, 1024);
    assert!(
        bomb.len() < 200_000,
        "the bomb is small: {} bytes",
        bomb.len()
    );
    assert!(matches!(
        expect_error("bomb-1.0.zip", &bomb, &Limits::default()),
        ExtractError::SizeMismatch { declared: 1024, .. }
    ));
    // Declaring its real size instead: over the member cap, refused before inflating.
    let honest = zip_bomb("bomb-1.0/PKG-INFO", 32 << 20, 32 << 20);
    assert!(matches!(
        expect_error("bomb-1.0.zip", &honest, &Limits::default()),
        ExtractError::MemberTooLarge { .. }
    ));
    // Declared sizes that add up past the archive cap are refused without reading anything.
    let huge = zip_bomb("bomb-1.0/other.bin", 1 << 20, u32::MAX - 1);
    let limits = Limits {
        max_total_bytes: 1 << 30,
        ..Limits::default()
    };
    assert!(matches!(
        expect_error("bomb-1.0.zip", &huge, &limits),
        ExtractError::TooLarge { .. }
    ));
}

#[test]
fn escaping_paths_and_links_are_refused() {
    let parent = tar_gz(&[
        file("x-1.0/PKG-INFO", b"Metadata-Version: 2.2\n"),
        file("x-1.0/../../evil", b"x"),
    ]);
    assert!(matches!(
        expect_error("x-1.0.tar.gz", &parent, &Limits::default()),
        ExtractError::UnsafePath { path } if path.contains("..")
    ));
    let absolute = tar_gz(&[file("/etc/cron.d/evil", b"x")]);
    assert!(matches!(
        expect_error("x-1.0.tar.gz", &absolute, &Limits::default()),
        ExtractError::UnsafePath { path } if path.starts_with('/')
    ));
    let symlinked = tar_gz(&[(
        "x-1.0/PKG-INFO",
        b"",
        tar::EntryType::Symlink,
        Some("/etc/passwd"),
    )]);
    assert!(matches!(
        expect_error("x-1.0.tar.gz", &symlinked, &Limits::default()),
        ExtractError::Link { target, .. } if target == "/etc/passwd"
    ));
    let escaping_link = tar_gz(&[(
        "x-1.0/docs/link",
        b"",
        tar::EntryType::Symlink,
        Some("../../../../root"),
    )]);
    assert!(matches!(
        expect_error("x-1.0.tar.gz", &escaping_link, &Limits::default()),
        ExtractError::Link { .. }
    ));
    // A harmless link elsewhere in the tree is skipped, not followed.
    let harmless = tar_gz(&[
        (
            "x-1.0/docs/README",
            b"",
            tar::EntryType::Symlink,
            Some("../README"),
        ),
        file(
            "x-1.0/PKG-INFO",
            b"Metadata-Version: 2.2\nRequires-Dist: six\n",
        ),
    ]);
    let record = extract_sdist("x-1.0.tar.gz", &harmless, &Limits::default())
        .expect("reads")
        .into_record();
    assert_eq!(record.requires_dist, ["six"]);
}

#[test]
fn a_one_gigabyte_member_is_bounded_by_the_archive_cap() {
    // 1.1 GiB of zeros behind a header that declares 1 GiB: the walk stops at the cap.
    let archive = huge_member(1100);
    assert!(archive.len() < 8 << 20, "{} bytes", archive.len());
    let limits = Limits {
        max_total_bytes: 64 << 20,
        ..Limits::default()
    };
    assert_eq!(
        expect_error("big-1.0.tar.gz", &archive, &limits),
        ExtractError::TooLarge { limit: 64 << 20 }
    );
    // A member we would read that declares 1 GiB is refused from its header alone.
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append(
            &tar_header("big-1.0/PKG-INFO", 1 << 30, tar::EntryType::Regular, None),
            &b""[..],
        )
        .expect("in memory");
    let claimed = gzip(&builder.into_inner().expect("in memory"));
    assert!(matches!(
        expect_error("big-1.0.tar.gz", &claimed, &Limits::default()),
        ExtractError::MemberTooLarge { size, .. } if size == 1 << 30
    ));
}

#[test]
fn broken_gzip_and_member_floods_are_errors() {
    let mut broken = gzip(b"not really a tar, and cut short");
    broken.truncate(broken.len() / 2);
    assert!(matches!(
        expect_error("x-1.0.tar.gz", &broken, &Limits::default()),
        ExtractError::Corrupt(_)
    ));
    let garbage = [
        0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff,
    ];
    assert!(matches!(
        expect_error("x-1.0.tar.gz", &garbage, &Limits::default()),
        ExtractError::Corrupt(_)
    ));
    assert!(matches!(
        expect_error("x-1.0.zip", b"PK\x03\x04 nope", &Limits::default()),
        ExtractError::Corrupt(_)
    ));
    let names: Vec<String> = (0..50).map(|i| format!("x-1.0/f{i}")).collect();
    let entries: Vec<(&str, &[u8], tar::EntryType, Option<&str>)> = names
        .iter()
        .map(|name| (name.as_str(), &b"x"[..], tar::EntryType::Regular, None))
        .collect();
    let flood = tar_gz(&entries);
    let limits = Limits {
        max_members: 20,
        ..Limits::default()
    };
    assert_eq!(
        expect_error("x-1.0.tar.gz", &flood, &limits),
        ExtractError::TooManyMembers { limit: 20 }
    );
    assert!(matches!(
        expect_error("x-1.0.tar.bz2", b"BZh9", &Limits::default()),
        ExtractError::Corrupt(_)
    ));
    assert!(matches!(
        expect_error("x-1.0.tar.Z", b"\x1f\x9d", &Limits::default()),
        ExtractError::Unsupported(_)
    ));
}

#[test]
fn a_crawl_of_hostile_sdists_records_errors_and_writes_nothing() {
    let server = FakePypi::start();
    let symlink = tar_gz(&[(
        "hostile-3.0/PKG-INFO",
        b"",
        tar::EntryType::Symlink,
        Some("/etc/passwd"),
    )]);
    let mut broken = gzip(b"broken");
    broken.truncate(8);
    server.add_project(
        "hostile",
        vec![
            (
                "hostile-1.0.zip".into(),
                zip_bomb("hostile-1.0/PKG-INFO", 16 << 20, 100),
            ),
            (
                "hostile-2.0.tar.gz".into(),
                tar_gz(&[file("hostile-2.0/../../../tmp/evil", b"x")]),
            ),
            ("hostile-3.0.tar.gz".into(), symlink),
            ("hostile-4.0.tar.gz".into(), broken),
            (
                "hostile-5.0.tar.gz".into(),
                tar_gz(&[file("/tmp/hostile-evil", b"x")]),
            ),
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let workdir = dir.path().join("cwd");
    std::fs::create_dir(&workdir).expect("mkdir");
    let state_dir = dir.path().join("state");
    let output = std::process::Command::new(support::bin())
        .current_dir(&workdir)
        .args([
            "crawl",
            "--state",
            state_dir.to_str().expect("utf-8"),
            "--packages",
            "hostile",
        ])
        .args(fast_flags(&server))
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_dir(&workdir).expect("cwd").count(),
        0,
        "nothing was written"
    );
    assert!(
        !std::path::Path::new("/tmp/hostile-evil").exists()
            && !std::path::Path::new("/tmp/evil").exists()
    );
    let state = State::open(&state_dir).expect("state");
    let reasons: Vec<(String, String)> = state
        .files("hostile")
        .expect("files")
        .into_iter()
        .map(|file| {
            let record = file.dependencies.expect("examined").record;
            assert_eq!(record.source, MetadataSource::Unknown, "{}", file.filename);
            (file.filename, record.detail.expect("a reason"))
        })
        .collect();
    let expected = [
        ("hostile-1.0.zip", "expands past its declared size"),
        ("hostile-2.0.tar.gz", "escapes the archive"),
        ("hostile-3.0.tar.gz", "is a link"),
        ("hostile-4.0.tar.gz", "corrupt archive"),
        ("hostile-5.0.tar.gz", "escapes the archive"),
    ];
    for ((filename, reason), (want_name, want_reason)) in reasons.iter().zip(expected) {
        assert_eq!(filename, want_name);
        assert!(reason.contains(want_reason), "{filename}: {reason}");
    }
}
