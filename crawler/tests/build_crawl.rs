//! `crawl --build-sdists` end to end: the fake index serves a real recorded sdist that
//! only a build can tell about, and the recorded setuptools/wheel wheels its build needs (pip
//! fetches them from the same index); the crawl stores the built record and its method.
//! Needs `bwrap`: without it the test FAILS, telling to run `scripts/install-sandbox.sh`.

mod support;

use std::path::Path;

use crawler::state::State;
use db_format::MetadataSource;
use support::{FakePypi, fast_flags};

fn recorded(path: &str) -> (String, Vec<u8>) {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/build")
        .join(path);
    let bytes = fs_err::read(&full)
        .unwrap_or_else(|err| panic!("{err}: record it with scripts/record-build-sdists.sh"));
    let name = full
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    (name, bytes)
}

/// `tmp` is the crawler's `TMPDIR`: its build environments are cached there, not in the
/// machine's temporary directory (the fake index's port, part of their key, changes every run).
fn crawl(server: &FakePypi, state: &Path, tmp: &Path, extra: &[&str]) {
    let output = std::process::Command::new(support::bin())
        .args(["crawl", "--state", state.to_str().expect("utf-8")])
        .args(["--packages", "sampletext"])
        .args(fast_flags(server))
        .args(extra)
        .env("RUST_LOG", "warn")
        .env("TMPDIR", tmp)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("install-sandbox.sh"),
        "the sandbox is missing: {stderr}"
    );
    assert!(output.status.success(), "{stderr}");
}

fn method_and_record(state: &Path) -> (String, db_format::DependencyRecord) {
    let state = State::open(state).expect("state");
    let files = state.files("sampletext").expect("files");
    let extracted = files
        .into_iter()
        .next()
        .and_then(|file| file.dependencies)
        .expect("the sdist was examined");
    (extracted.method, extracted.record)
}

#[test]
fn crawl_builds_sdists_only_when_asked() {
    let server = FakePypi::start();
    let (name, bytes) = recorded("sampletext-0.1.0.0.2.tar.gz");
    server.add_project(
        "sampletext",
        vec![(name, support::without_egg_info(&bytes))],
    );
    server.add_project(
        "setuptools",
        vec![recorded("wheels/setuptools-68.2.2-py3-none-any.whl")],
    );
    server.add_project(
        "wheel",
        vec![recorded("wheels/wheel-0.41.3-py3-none-any.whl")],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let tmp = dir.path().join("tmp");
    fs_err::create_dir(&tmp).expect("tmp");

    // Off by default: "unknown", waiting for a build.
    crawl(&server, &state, &tmp, &[]);
    let (method, record) = method_and_record(&state);
    assert_eq!(method, "sdist-needs-build");
    assert_eq!(record.source, MetadataSource::Unknown);

    // On: the same state's sdist is built now, although its project page did not change.
    crawl(
        &server,
        &state,
        &tmp,
        &["--build-sdists", "--build-concurrency", "1"],
    );
    assert!(
        fs_err::read_dir(tmp.join("mach-nix-build-envs"))
            .expect("build environments under TMPDIR")
            .count()
            > 0
    );
    let (method, record) = method_and_record(&state);
    assert_eq!(method, "build", "{record:?}");
    assert_eq!(record.source, MetadataSource::Build);
    assert_eq!(record.requires_dist, ["requests >=2.14.2"]);
}
