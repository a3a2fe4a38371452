//! `crawl --build-sdists` end to end: the fake index serves a real recorded sdist that
//! only a build can tell about, and the recorded setuptools/wheel wheels its build needs (pip
//! fetches them from the same index); the crawl stores the built record and its method.
//! Needs `bwrap`: without it the test FAILS, telling to run `scripts/install-sandbox.sh`.

mod support;

use std::path::Path;

use crawler::state::State;
use db_format::MetadataSource;
use support::crawl_sampletext;

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
    let server = support::sampletext_index();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let tmp = dir.path().join("tmp");
    fs_err::create_dir(&tmp).expect("tmp");

    // Off by default: "unknown", waiting for a build.
    crawl_sampletext(&server, &state, &tmp, &[]);
    let (method, record) = method_and_record(&state);
    assert_eq!(method, "sdist-needs-build");
    assert_eq!(record.source, MetadataSource::Unknown);

    // On: the same state's sdist is built now, although its project page did not change.
    crawl_sampletext(
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
