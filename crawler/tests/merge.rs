//! `merge-state` end to end with recorded responses: the case where a state crawled without
//! builds (`sdist-needs-build`) met one crawled with `--build-sdists` (`build`), and the merge
//! kept the weaker record (seen with pycrypto 2.6.1; here the recorded `sampletext` sdist
//! without its egg-info, which only a build can tell about). Needs `bwrap` like `tests/build_crawl.rs`.

mod support;

use std::path::Path;

use crawler::state::State;
use db_format::MetadataSource;
use support::{FakePypi, fast_flags, publish, run};

fn recorded(path: &str) -> (String, Vec<u8>) {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/build")
        .join(path);
    let bytes = fs_err::read(&full).expect("recorded by scripts/record-build-sdists.sh");
    let name = full
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    (name, bytes)
}

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

fn copy_state(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).expect("mkdir");
    fs_err::copy(from.join("state.sqlite"), to.join("state.sqlite")).expect("copies");
}

// merge-state kept `sdist-needs-build` over the merged-in `build` record, and `gen` then
// found no dependency metadata.
#[test]
fn merging_a_built_state_gives_the_built_record_in_either_order() {
    let server = FakePypi::start();
    // Without its egg-info only a build can tell the sdist's dependencies.
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
    let tmp = dir.path().join("tmp");
    fs_err::create_dir(&tmp).expect("tmp");
    let (plain, built) = (dir.path().join("plain"), dir.path().join("built"));
    crawl(&server, &plain, &tmp, &[]);
    crawl(
        &server,
        &built,
        &tmp,
        &["--build-sdists", "--build-concurrency", "1"],
    );
    let built_hash = publish(&built, &dir.path().join("out-built"));

    let mut hashes = Vec::new();
    for (name, target, source) in [("ab", &plain, &built), ("ba", &built, &plain)] {
        let merged = dir.path().join(name);
        copy_state(target, &merged);
        let output = run(&[
            "merge-state",
            "--state",
            merged.to_str().expect("utf-8"),
            "--from",
            source.to_str().expect("utf-8"),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let files = State::open_existing(&merged)
            .expect("opens")
            .files("sampletext")
            .expect("files");
        let extracted = files[0].dependencies.clone().expect("examined");
        assert_eq!(extracted.method, "build", "{name}: {stderr}");
        assert_eq!(extracted.record.source, MetadataSource::Build);
        hashes.push(publish(&merged, &dir.path().join(format!("out-{name}"))));
    }
    assert_eq!(hashes, [built_hash.clone(), built_hash]);
}
