//! The conda provider on the real intel/free repodata of `tests/data/conda/` (2023-08-28),
//! put into a version-2 snapshot as `publish-db` does.

mod conda_common;

use std::str::FromStr;

use conda_common::snapshot;
use db_format::{CondaRecord, Snapshot, SnapshotMeta, Writer};
use rattler_conda_types::{MatchSpec, ParseStrictness, Version};
use resolver::conda::{self, CondaError, CondaOptions, CondaResolution, VirtualPackages};
use resolver::target::System;

fn options(system: System, allow_md5_only: bool) -> CondaOptions {
    CondaOptions {
        channels: vec!["intel".into()],
        system,
        virtual_packages: VirtualPackages::for_target(system, "2.39", "10.12", None),
        allow_md5_only,
    }
}

fn specs(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| text.to_string()).collect()
}

/// Every dependency of every chosen package is met by the chosen package of that name (or is a
/// virtual package the target has); an independent check of the solver's answer.
fn assert_consistent(resolution: &CondaResolution, system: System) {
    let virtuals = VirtualPackages::for_target(system, "2.39", "10.12", None);
    for package in &resolution.packages {
        for text in &package.record.depends {
            let spec = MatchSpec::from_str(text, ParseStrictness::Lenient).expect("parses");
            let name = spec
                .name
                .as_exact()
                .expect("exact")
                .as_normalized()
                .to_string();
            let version = if name.starts_with("__") {
                virtuals
                    .packages
                    .iter()
                    .find(|(known, _)| *known == name)
                    .map(|(_, version)| version.clone())
                    .unwrap_or_else(|| panic!("{} needs {text}", package.record.filename))
            } else {
                let chosen = resolution
                    .packages
                    .iter()
                    .find(|other| other.record.name == name)
                    .unwrap_or_else(|| {
                        panic!("{} needs {text}: not chosen", package.record.filename)
                    });
                if let Some(build) = &spec.build {
                    assert!(
                        build.matches(&chosen.record.build),
                        "{text} vs {}",
                        chosen.record.filename
                    );
                }
                chosen.record.version.clone()
            };
            if let Some(range) = &spec.version {
                let version = Version::from_str(&version).expect("version");
                assert!(
                    range.matches(&version),
                    "{}: {text} not met by {version}",
                    package.record.filename
                );
            }
        }
    }
}

fn find<'a>(resolution: &'a CondaResolution, name: &str) -> &'a CondaRecord {
    &resolution
        .packages
        .iter()
        .find(|package| package.record.name == name)
        .unwrap_or_else(|| panic!("{name} not in the resolution"))
        .record
}

#[test]
fn python_3_9_numpy_scipy_from_intel_for_x86_64_linux() {
    let snapshot = snapshot();
    // Most intel records carry only md5 (README: 547 of 4548 have sha256), among them every
    // libffi that python needs: this channel resolves only with md5-only records allowed.
    let err = conda::resolve(
        &snapshot,
        &specs(&["python=3.9", "numpy", "scipy"]),
        &options(System::X86_64Linux, false),
    )
    .expect_err("python needs libffi, which has no sha256 record");
    assert!(err.to_string().contains("lack a sha256"), "{err}");
    let resolution = conda::resolve(
        &snapshot,
        &specs(&["python=3.9", "numpy", "scipy"]),
        &options(System::X86_64Linux, true),
    )
    .expect("resolves");
    for package in &resolution.packages {
        eprintln!("{}", package.record.filename);
    }
    assert_consistent(&resolution, System::X86_64Linux);
    let python = find(&resolution, "python");
    assert!(python.version.starts_with("3.9."), "{}", python.filename);
    for name in ["numpy", "scipy"] {
        let record = find(&resolution, name);
        assert_eq!(
            (record.channel.as_str(), record.subdir.as_str()),
            ("intel", "linux-64")
        );
        assert!(record.build.starts_with("py39"), "{}", record.filename);
    }
    // The intel numpy links MKL.
    assert!(resolution.packages.iter().any(|p| p.record.name == "mkl"));
    let numpy = resolution
        .packages
        .iter()
        .find(|p| p.record.name == "numpy")
        .expect("numpy");
    assert_eq!(numpy.pypi_name, "numpy");
    assert!(
        numpy.dependencies.contains(&"python".to_string()),
        "{:?}",
        numpy.dependencies
    );
}

#[test]
fn md5_only_records_are_used_when_allowed_and_the_highest_build_wins() {
    let snapshot = snapshot();
    let resolution = conda::resolve(
        &snapshot,
        &specs(&["python=3.9", "numpy"]),
        &options(System::X86_64Linux, true),
    )
    .expect("resolves");
    assert_consistent(&resolution, System::X86_64Linux);
    assert_eq!(resolution.skipped_md5_only, 0);
    // With only sha256 records, the resolution is a different one or none; here: none.
    let strict = conda::resolve(
        &snapshot,
        &specs(&["python=3.9", "numpy"]),
        &options(System::X86_64Linux, false),
    );
    assert!(strict.is_err());
    let numpy = find(&resolution, "numpy");
    // No other py39 build of the same numpy version has a higher build number.
    let rivals = snapshot.conda_records("numpy").expect("lookup");
    assert!(
        rivals
            .iter()
            .filter(|r| r.subdir == "linux-64"
                && r.version == numpy.version
                && r.build.starts_with("py39"))
            .all(|r| r.build_number <= numpy.build_number),
        "{}",
        numpy.filename
    );
}

#[test]
fn x86_64_darwin_takes_the_osx_64_builds() {
    let snapshot = snapshot();
    let resolution = conda::resolve(
        &snapshot,
        &specs(&["python=3.9", "numpy"]),
        &options(System::X86_64Darwin, true),
    )
    .expect("resolves");
    assert_consistent(&resolution, System::X86_64Darwin);
    assert!(
        resolution
            .packages
            .iter()
            .all(|p| p.record.subdir == "osx-64" || p.record.subdir == "noarch")
    );
}

#[test]
fn impossible_requests_and_snapshots_without_conda_are_clear_errors() {
    let snapshot = snapshot();
    let err = conda::resolve(
        &snapshot,
        &specs(&["python=3.9", "numpy=1.0"]),
        &options(System::X86_64Linux, true),
    )
    .expect_err("no numpy 1.0");
    assert!(matches!(err, CondaError::NoSolution(_)), "{err}");
    assert!(err.to_string().contains("numpy"), "{err}");
    // The report says what the channel has instead.
    assert!(err.to_string().contains("no build of numpy"), "{err}");
    assert!(err.to_string().contains("1.24.3"), "{err}");
    // A conflict names the builds involved, with their versions.
    let err = conda::resolve(
        &snapshot,
        &specs(&["python=3.7", "numpy=1.24.3"]),
        &options(System::X86_64Linux, true),
    )
    .expect_err("intel has numpy 1.24.3 for python 3.8-3.10 only");
    assert!(
        err.to_string().contains("numpy 1.24.3 py39hed7eef7_0"),
        "{err}"
    );
    assert!(err.to_string().contains("python 3.7.13"), "{err}");
    let err = conda::resolve(
        &snapshot,
        &specs(&["numpy >=>=1"]),
        &options(System::X86_64Linux, true),
    )
    .expect_err("bad spec");
    assert!(matches!(err, CondaError::BadSpec { .. }), "{err}");
    let pypi_only = Writer::new(std::io::Cursor::new(Vec::new()), SnapshotMeta::default())
        .expect("writer")
        .finish()
        .expect("finish")
        .0
        .into_inner();
    let err = conda::resolve(
        &Snapshot::from_bytes(pypi_only).expect("opens"),
        &specs(&["numpy"]),
        &options(System::X86_64Linux, true),
    )
    .expect_err("no conda records");
    assert!(err.to_string().contains("crawl --conda"), "{err}");
}
