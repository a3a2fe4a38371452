//! Shared by the integration tests: package universes written as real snapshots with
//! `db_format::Writer`, and the path to the repository's test data (`tests/data`).

#![allow(dead_code)] // Each test target uses a different part of this module.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;

use db_format::types::{normalize_name, normalize_version};
use db_format::{
    DependencyRecord, File, FileKind, MetadataSource, Project, Release, Snapshot, SnapshotMeta,
    Writer,
};
use resolver::provider::{Mode, ProviderConfig};
use resolver::resolution::SnapshotPin;
use resolver::solve::{DEFAULT_MAX_STEPS, ResolveOptions};
use resolver::target::{System, TargetEnv};

/// The repository's test data (`tests/data`): uv's resolver scenarios and real conda repodata.
pub fn test_data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data")
}

/// One version of a package in a universe.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct VersionSpec {
    pub requires: Vec<String>,
    pub requires_python: Option<String>,
    pub extras: BTreeMap<String, Vec<String>>,
    pub yanked: bool,
    pub sdist: Option<bool>,
    pub wheel: Option<bool>,
    pub wheel_tags: Option<Vec<String>>,
    /// The sdist's build requirements: when set, the sdist gets its own record (read from its
    /// `pyproject.toml`) with these and `build_backend`; otherwise it shares the wheel's record.
    pub build_requires: Option<Vec<String>>,
    pub build_backend: Option<String>,
}

/// package name → version → spec.
pub type Universe = BTreeMap<String, BTreeMap<String, VersionSpec>>;

/// Snapshot `created` of every test universe: 2024-01-02.
pub const CREATED: i64 = 1_704_153_600;

fn with_extra_marker(requirement: &str, extra: &str) -> String {
    match requirement.split_once(';') {
        Some((spec, marker)) => format!("{spec} ; ({marker}) and extra == '{extra}'"),
        None => format!("{requirement} ; extra == '{extra}'"),
    }
}

/// Write `universe` as a real snapshot (in memory) and open it.
pub fn snapshot(universe: &Universe) -> Snapshot {
    Snapshot::from_bytes(snapshot_bytes(universe)).expect("snapshot reads back")
}

/// The bytes of `universe` written as a snapshot.
pub fn snapshot_bytes(universe: &Universe) -> Vec<u8> {
    let mut projects: BTreeMap<String, Project> = BTreeMap::new();
    for (name, versions) in universe {
        let name = normalize_name(name)
            .expect("universe names are valid")
            .to_string();
        let project = projects.entry(name.clone()).or_insert_with(|| Project {
            name: name.clone(),
            ..Project::default()
        });
        for (version, spec) in versions {
            let version = normalize_version(version).unwrap_or_else(|| version.clone());
            let mut requires_dist = spec.requires.clone();
            for (extra, requirements) in &spec.extras {
                requires_dist.extend(requirements.iter().map(|r| with_extra_marker(r, extra)));
            }
            let record = DependencyRecord {
                source: MetadataSource::WheelMetadata,
                requires_python: spec.requires_python.clone(),
                requires_dist,
                provides_extra: spec.extras.keys().cloned().collect(),
                ..DependencyRecord::default()
            };
            let sdist_record =
                spec.build_requires
                    .as_ref()
                    .map(|build_requires| DependencyRecord {
                        source: MetadataSource::Pyproject,
                        build_requires: build_requires.clone(),
                        build_backend: spec.build_backend.clone(),
                        ..record.clone()
                    });
            let stem = name.replace('-', "_");
            let mut filenames = Vec::new();
            if spec.sdist.unwrap_or(true) {
                filenames.push(format!("{stem}-{version}.tar.gz"));
            }
            let tags = spec
                .wheel_tags
                .clone()
                .unwrap_or_else(|| vec!["py3-none-any".to_owned()]);
            if spec.wheel.unwrap_or(true) {
                filenames.extend(tags.iter().map(|tag| format!("{stem}-{version}-{tag}.whl")));
            }
            let files = filenames
                .into_iter()
                .enumerate()
                .map(|(index, filename)| File {
                    kind: FileKind::of(&filename),
                    url: format!("https://files.example.org/{filename}"),
                    size: 1000 + index as u64,
                    sha256: Some([u8::try_from(index % 256).unwrap_or(0); 32]),
                    upload_time: Some(CREATED - 86_400),
                    requires_python: spec.requires_python.clone(),
                    dependencies: Some(u32::from(
                        sdist_record.is_some() && filename.ends_with(".tar.gz"),
                    )),
                    filename,
                    yanked: None,
                })
                .collect();
            project.releases.push(Release {
                version,
                yanked: spec.yanked.then(String::new),
                requires_python: spec.requires_python.clone(),
                upload_time: Some(CREATED - 86_400),
                dependencies: [record].into_iter().chain(sdist_record).collect(),
                files,
            });
        }
    }
    let meta = SnapshotMeta {
        created: CREATED,
        ..SnapshotMeta::default()
    };
    let mut writer = Writer::new(Cursor::new(Vec::new()), meta).expect("writer starts");
    for project in projects.values() {
        writer.add_project(project).expect("valid project");
    }
    let (bytes, _) = writer.finish().expect("snapshot written");
    bytes.into_inner()
}

/// A universe from `(name, version, requires)` triples (default files: sdist + pure wheel).
pub fn universe(entries: &[(&str, &str, &[&str])]) -> Universe {
    let mut universe = Universe::new();
    for (name, version, requires) in entries {
        universe.entry((*name).to_owned()).or_default().insert(
            (*version).to_owned(),
            VersionSpec {
                requires: requires.iter().map(|r| (*r).to_owned()).collect(),
                ..VersionSpec::default()
            },
        );
    }
    universe
}

// Universes designed to blow up a resolver (tests/limits.rs, examples/limit_universes.rs).

/// `p00000 → p00001 → … → p{depth-1}`, one release each; the last one requires `last`.
pub fn chain(depth: usize, last: &[&str]) -> Universe {
    let names: Vec<String> = (0..depth).map(|i| format!("p{i:05}")).collect();
    let mut entries: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for (at, name) in names.iter().enumerate() {
        let requires = match names.get(at + 1) {
            Some(next) => vec![next.as_str()],
            None => last.to_vec(),
        };
        entries.push((name, "1.0", requires));
    }
    let borrowed: Vec<(&str, &str, &[&str])> = entries
        .iter()
        .map(|(name, version, requires)| (*name, *version, requires.as_slice()))
        .collect();
    universe(&borrowed)
}

/// `n` requirements `r0000…`, each with releases 1.0, 2.0 and 3.0; every 3.0 needs `shared==3`,
/// which does not exist, so each of the `n` backtracks to 2.0 (which needs `shared<=2`).
pub fn many_requirements(n: usize) -> (Universe, String) {
    let mut entries: Vec<(String, &str, &[&str])> = Vec::new();
    for i in 0..n {
        let name = format!("r{i:04}");
        entries.push((name.clone(), "1.0", &[]));
        entries.push((name.clone(), "2.0", &["shared<=2"]));
        entries.push((name, "3.0", &["shared==3"]));
    }
    let borrowed: Vec<(&str, &str, &[&str])> = entries
        .iter()
        .map(|(name, version, requires)| (name.as_str(), *version, *requires))
        .collect();
    let mut universe = universe(&borrowed);
    universe.extend(self::universe(&[
        ("shared", "1.0", &[]),
        ("shared", "2.0", &[]),
    ]));
    let requirements = (0..n).map(|i| format!("r{i:04}\n")).collect();
    (universe, requirements)
}

/// n+1 pigeons, n holes: `pigeon_i` version j sits in hole j and requires `hole_j == i`. Two
/// pigeons in one hole conflict; no assignment exists, and proving it takes resolution-based
/// solvers (pubgrub among them) exponentially many steps.
pub fn pigeonhole(holes: usize) -> (Universe, String) {
    let mut entries: Vec<(String, String, Vec<String>)> = Vec::new();
    for pigeon in 1..=holes + 1 {
        for hole in 1..=holes {
            entries.push((
                format!("pigeon{pigeon}"),
                format!("{hole}.0"),
                vec![format!("hole{hole}=={pigeon}.0")],
            ));
        }
    }
    for hole in 1..=holes {
        for pigeon in 1..=holes + 1 {
            entries.push((format!("hole{hole}"), format!("{pigeon}.0"), Vec::new()));
        }
    }
    let requires: Vec<Vec<&str>> = entries
        .iter()
        .map(|(_, _, r)| r.iter().map(String::as_str).collect())
        .collect();
    let borrowed: Vec<(&str, &str, &[&str])> = entries
        .iter()
        .zip(&requires)
        .map(|((name, version, _), requires)| {
            (name.as_str(), version.as_str(), requires.as_slice())
        })
        .collect();
    let requirements = (1..=holes + 1).map(|p| format!("pigeon{p}\n")).collect();
    (universe(&borrowed), requirements)
}

/// CPython 3.12 on x86_64-linux with `providers`, newest first, no nixpkgs, no `--pre`, the
/// default step bound.
pub fn options(providers: &str) -> ResolveOptions {
    ResolveOptions {
        target: TargetEnv::new("3.12", System::X86_64Linux).expect("target"),
        providers: ProviderConfig::parse(providers).expect("providers"),
        mode: Mode::Newest,
        nixpkgs: None,
        allow_prereleases: false,
        max_steps: DEFAULT_MAX_STEPS,
    }
}

/// The pin of a test snapshot.
pub fn pin() -> SnapshotPin {
    SnapshotPin {
        sha256: "0".repeat(64),
        created: CREATED,
        as_of: None,
    }
}
