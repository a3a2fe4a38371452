//! `merge-state` end to end with recorded responses: the case where a state crawled without
//! builds (`sdist-needs-build`) met one crawled with `--build-sdists` (`build`), and the merge
//! kept the weaker record (seen with pycrypto 2.6.1; here the recorded `sampletext` sdist
//! without its egg-info, which only a build can tell about). Needs `bwrap` like `tests/build_crawl.rs`.

mod support;

use std::path::Path;

use crawler::state::State;
use db_format::MetadataSource;
use support::{crawl_sampletext, publish, run};

fn copy_state(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).expect("mkdir");
    fs_err::copy(from.join("state.sqlite"), to.join("state.sqlite")).expect("copies");
}

// merge-state kept `sdist-needs-build` over the merged-in `build` record, and `gen` then
// found no dependency metadata.
#[test]
fn merging_a_built_state_gives_the_built_record_in_either_order() {
    let server = support::sampletext_index();
    let dir = tempfile::tempdir().expect("tempdir");
    let tmp = dir.path().join("tmp");
    fs_err::create_dir(&tmp).expect("tmp");
    let (plain, built) = (dir.path().join("plain"), dir.path().join("built"));
    crawl_sampletext(&server, &plain, &tmp, &[]);
    crawl_sampletext(
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
