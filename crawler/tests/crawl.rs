//! End-to-end crawls of the fake PyPI (recorded real responses) with the real binary.

mod support;

use std::path::Path;

use crawler::state::State;
use db_format::{FileKind, MetadataSource, Snapshot};
use support::{FakePypi, Fault, fast_flags, publish, recorded_projects, run};

fn crawl(server: &FakePypi, state: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec!["crawl".into(), "--state".into(), state.display().to_string()];
    args.extend(fast_flags(server));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

fn all_packages() -> String {
    recorded_projects().join(",")
}

#[test]
fn explore() {
    let server = FakePypi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let state_dir = dir.path().join("state");
    crawl(&server, &state_dir, &["--packages", &all_packages()]);
    let state = State::open(&state_dir).expect("state");
    for name in state.project_names().expect("names") {
        for file in state.files(&name).expect("files") {
            let (record, method) = file.dependencies.clone().unwrap_or_default();
            println!("{name} {} {} {:?} {method} {:?} {:?} extras={:?} build={:?} {:?}", file.version, file.filename, file.kind, record.source, record.detail, record.provides_extra, record.build_requires, record.requires_dist);
        }
    }
}
