//! Sandboxed sdist metadata builds: real sdists recorded from PyPI
//! (`tests/data/build/`, recorded by `scripts/record-build-sdists.sh`) and synthetic sdists that
//! misbehave on purpose, built in the real bubblewrap sandbox with the recorded setuptools wheel
//! as the only build requirement source (no network).
//!
//! These tests need `bwrap`; without it they FAIL, telling to run `scripts/install-sandbox.sh`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crawler::build::{BuildError, BuildOptions, Builder, WheelSource, build_sdist, check_sandbox};
use crawler::extract::Limits;
use crawler::extract::sdist::{SdistMetadata, extract_sdist};
use db_format::{DependencyRecord, MetadataSource};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/build")
}

/// Options for a test: recorded wheels only, a private cache, short limits.
fn options(cache: &Path) -> BuildOptions {
    let mut options = BuildOptions::new(
        WheelSource::FindLinks(data().join("wheels")),
        cache.to_path_buf(),
    );
    options.time_limit = Duration::from_secs(60);
    options.memory_bytes = 1 << 30;
    if let Err(err) = check_sandbox(&options) {
        panic!("{err}");
    }
    options
}

/// A `.tar.gz` sdist `name-1.0/` holding `files`.
fn sdist(name: &str, files: &[(&str, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("{name}-1.0/{path}"), text.as_bytes())
            .expect("tar member");
    }
    let gz = tar.into_inner().expect("tar");
    gz.finish().expect("gzip")
}

/// Static extraction must say "needs a build"; the hint it returns goes to the build.
fn needs_build(filename: &str, bytes: &[u8]) -> DependencyRecord {
    match extract_sdist(filename, bytes, &Limits::default()).expect("sdist reads") {
        SdistMetadata::NeedsBuild(record) => record,
        SdistMetadata::Static(record) => panic!("{filename} is static: {record:?}"),
    }
}

/// What static extraction says about a recorded sdist, as the build's hint.
fn hint_of(filename: &str, bytes: &[u8]) -> DependencyRecord {
    extract_sdist(filename, bytes, &Limits::default())
        .expect("sdist reads")
        .into_record()
}

fn recorded(filename: &str) -> Vec<u8> {
    let path = data().join(filename);
    fs_err::read(&path)
        .unwrap_or_else(|err| panic!("{err}: record it with scripts/record-build-sdists.sh"))
}

fn setup_py(body: &str) -> String {
    format!("from setuptools import setup\n{body}\n")
}

#[test]
fn missing_sandbox_is_a_clear_error() {
    let cache = tempfile::tempdir().expect("tempdir");
    let mut options = BuildOptions::new(
        WheelSource::FindLinks(data().join("wheels")),
        cache.path().to_path_buf(),
    );
    options.bwrap = PathBuf::from("/nonexistent/bwrap");
    let err = Builder::new(options, 1).expect_err("no sandbox, no builder");
    assert!(matches!(err, BuildError::Sandbox(_)));
    assert!(
        err.to_string().contains("scripts/install-sandbox.sh"),
        "{err}"
    );
}

/// Real: setup.py-only, `install_requires` held in a variable (no PKG-INFO Requires-Dist; its
/// egg-info removed): static reading cannot tell, the legacy backend's egg_info run can.
#[test]
fn real_setup_py_with_computed_install_requires() {
    let cache = tempfile::tempdir().expect("tempdir");
    let filename = "sampletext-0.1.0.0.2.tar.gz";
    let bytes = support::without_egg_info(&recorded(filename));
    let hint = needs_build(filename, &bytes);
    assert!(
        hint.detail
            .as_deref()
            .unwrap_or_default()
            .contains("setup.py"),
        "{hint:?}"
    );
    let record = build_sdist(&options(cache.path()), filename, &bytes, &hint).expect("builds");
    assert_eq!(record.source, MetadataSource::Build);
    assert_eq!(record.requires_dist, ["requests >=2.14.2"]);
    assert!(
        record
            .detail
            .as_deref()
            .unwrap_or_default()
            .starts_with("prepare_metadata_for_build_wheel of setuptools.build_meta:__legacy__"),
        "{record:?}"
    );
}

/// Real: hatchling with the hatch-requirements-txt metadata hook (`dynamic = ["dependencies"]`);
/// the build must give what the author's own build wrote into PKG-INFO.
#[test]
fn real_pep517_backend_with_dynamic_dependencies() {
    let cache = tempfile::tempdir().expect("tempdir");
    let filename = "openapi_markdown-0.0.6.tar.gz";
    let bytes = recorded(filename);
    let stated = hint_of(filename, &bytes);
    assert_eq!(stated.build_backend.as_deref(), Some("hatchling.build"));
    let record = build_sdist(&options(cache.path()), filename, &bytes, &stated).expect("builds");
    assert_eq!(record.source, MetadataSource::Build);
    assert_eq!(record.requires_dist, stated.requires_dist);
    assert_eq!(record.requires_dist.len(), 3, "{record:?}");
    assert_eq!(record.requires_python.as_deref(), Some(">=3.7"));
}

/// Real: `distribute_setup.use_setuptools()` downloads distribute when it is missing; in the
/// sandbox there is no network, so the build fails, cleanly and with the reason.
#[test]
fn real_build_that_needs_the_network_fails_cleanly() {
    let cache = tempfile::tempdir().expect("tempdir");
    let filename = "plug-0.1.0.tar.gz";
    let bytes = recorded(filename);
    let hint = hint_of(filename, &bytes);
    let err = build_sdist(&options(cache.path()), filename, &bytes, &hint).expect_err("no network");
    let BuildError::Failed(reason) = &err else {
        panic!("a failed build expected, got {err:?}")
    };
    assert!(
        reason.contains("URLError") && reason.contains("name resolution"),
        "the failure should name the missing network: {reason}"
    );
    let record = crawler::build::failed_record(&hint, &err);
    assert_eq!(record.source, MetadataSource::Unknown);
    assert!(record.requires_dist.is_empty());
}

#[test]
fn computed_install_requires_synthetic() {
    let cache = tempfile::tempdir().expect("tempdir");
    let bytes = sdist(
        "computed",
        &[(
            "setup.py",
            &setup_py(
                "import sys\ndeps = ['requests>=2'] + (['tomli'] if sys.version_info < (3, 11) else [])\n\
                 setup(name='computed', version='1.0', install_requires=deps + ['attrs'],\n\
                 extras_require={'fast': ['orjson']})",
            ),
        )],
    );
    let hint = needs_build("computed-1.0.tar.gz", &bytes);
    let record =
        build_sdist(&options(cache.path()), "computed-1.0.tar.gz", &bytes, &hint).expect("builds");
    assert_eq!(record.source, MetadataSource::Build);
    assert_eq!(
        record.requires_dist,
        ["requests >=2", "attrs", "orjson ; extra == 'fast'"]
    );
    assert_eq!(record.provides_extra, ["fast"]);
}

#[test]
fn endless_loop_is_killed_at_the_time_limit() {
    let cache = tempfile::tempdir().expect("tempdir");
    let bytes = sdist("loop", &[("setup.py", "while True:\n    pass\n")]);
    let hint = needs_build("loop-1.0.tar.gz", &bytes);
    let mut options = options(cache.path());
    options.time_limit = Duration::from_secs(3);
    let started = std::time::Instant::now();
    let err = build_sdist(&options, "loop-1.0.tar.gz", &bytes, &hint).expect_err("killed");
    assert_eq!(err, BuildError::TimeLimit(3));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the kill took too long"
    );
}

#[test]
fn unbounded_allocation_is_stopped_at_the_memory_limit() {
    let cache = tempfile::tempdir().expect("tempdir");
    let bytes = sdist(
        "hog",
        &[(
            "setup.py",
            "hog = []\nwhile True:\n    hog.append(bytearray(50 * 1024 * 1024))\n",
        )],
    );
    let hint = needs_build("hog-1.0.tar.gz", &bytes);
    let mut options = options(cache.path());
    options.memory_bytes = 512 << 20;
    let err = build_sdist(&options, "hog-1.0.tar.gz", &bytes, &hint).expect_err("stopped");
    assert!(matches!(err, BuildError::MemoryLimit(_)), "{err:?}");
}

/// A (bounded, to spare the machine) fork bomb: 200 children that sleep. As a normal user the
/// process limit (32 here) stops it with EAGAIN; as root the kernel does not enforce
/// RLIMIT_NPROC, so the time limit ends it. Either way no process survives the build.
#[test]
fn fork_bomb_is_contained() {
    let cache = tempfile::tempdir().expect("tempdir");
    let marker = format!("fork-marker-{}", std::process::id());
    // Each child becomes `sh -c "sleep 120; : MARKER"`, so survivors can be found by name.
    let script = format!(
        "import os, time\nfor _ in range(200):\n    if os.fork() == 0:\n        os.execv('/bin/sh', ['sh', '-c', 'sleep 120; : {marker}'])\ntime.sleep(120)\n"
    );
    let bytes = sdist("forks", &[("setup.py", &script)]);
    let hint = needs_build("forks-1.0.tar.gz", &bytes);
    let mut options = options(cache.path());
    options.max_processes = 32;
    options.time_limit = Duration::from_secs(5);
    let err = build_sdist(&options, "forks-1.0.tar.gz", &bytes, &hint).expect_err("stopped");
    let root = fs_err::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"));
    if root {
        assert_eq!(err, BuildError::TimeLimit(5));
    } else {
        let BuildError::Failed(reason) = &err else {
            panic!("fork should fail at the process limit, got {err:?}")
        };
        assert!(
            reason.contains("Resource temporarily unavailable"),
            "{reason}"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let survivors = fs_err::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .map(|cmdline| String::from_utf8_lossy(&cmdline).contains(&marker))
                .unwrap_or(false)
        })
        .count();
    assert_eq!(survivors, 0, "sandboxed processes survived the build");
}

/// The build reports, through its own install_requires, what the sandbox let it do; the host
/// must be untouched.
#[test]
fn writes_outside_and_sockets_are_denied() {
    let cache = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let target = outside.path().join("escaped");
    let home_target = std::env::var("HOME")
        .map(|home| format!("{home}/.mach-nix-escape"))
        .unwrap_or_default();
    let script = format!(
        r#"import os, socket
def attempt(label, action):
    try:
        action()
        return label + "-allowed"
    except OSError:
        return label + "-denied"
def write(path):
    with open(path, "w") as f:
        f.write("escaped")
def connect():
    socket.create_connection(("151.101.0.223", 443), timeout=5).close()
def resolve():
    socket.getaddrinfo("pypi.org", 443)
results = [
    attempt("tmpwrite", lambda: write({target:?})),
    attempt("homewrite", lambda: write({home_target:?})),
    attempt("etcwrite", lambda: write("/etc/mach-nix-escape")),
    attempt("connect", connect),
    attempt("dns", resolve),
    attempt("localwrite", lambda: write("inside.txt")),
]
setup(name="escape", version="1.0", install_requires=results)
"#
    );
    let bytes = sdist("escape", &[("setup.py", &setup_py(&script))]);
    let hint = needs_build("escape-1.0.tar.gz", &bytes);
    let record = build_sdist(&options(cache.path()), "escape-1.0.tar.gz", &bytes, &hint)
        .expect("the build itself succeeds");
    assert_eq!(
        record.requires_dist,
        [
            "tmpwrite-denied",
            // $HOME is an empty tmpfs in the sandbox: the write lands there and vanishes.
            "homewrite-allowed",
            "etcwrite-denied",
            "connect-denied",
            "dns-denied",
            "localwrite-allowed"
        ]
    );
    assert!(!target.exists());
    assert!(!Path::new("/etc/mach-nix-escape").exists());
    assert!(home_target.is_empty() || !Path::new(&home_target).exists());
}

#[test]
fn a_failing_build_gives_a_normalized_error() {
    let cache = tempfile::tempdir().expect("tempdir");
    let bytes = sdist(
        "broken",
        &[(
            "setup.py",
            "raise RuntimeError('gcc 12.2.0 failed at /usr/include/x.h, line 40 (code 3)')\n",
        )],
    );
    let hint = needs_build("broken-1.0.tar.gz", &bytes);
    let err =
        build_sdist(&options(cache.path()), "broken-1.0.tar.gz", &bytes, &hint).expect_err("fails");
    let record = crawler::build::failed_record(&hint, &err);
    assert_eq!(record.source, MetadataSource::Unknown);
    assert_eq!(
        record.detail.as_deref(),
        Some(
            "sdist build: build failed: RuntimeError: gcc <version> failed at <path>, line <n> (code <n>)"
        )
    );
}
