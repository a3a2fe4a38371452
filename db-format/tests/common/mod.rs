//! Shared test data builders for the db-format integration tests.

use std::io::Cursor;

use db_format::{
    CondaRecord, DependencyRecord, File, FileKind, MetadataSource, Project, Release, SnapshotMeta,
    Writer,
};

/// Write `projects` (already in name order) into an in-memory snapshot.
#[allow(dead_code)] // not every test binary writes PyPI-only snapshots
pub fn write(meta: SnapshotMeta, projects: &[Project]) -> Vec<u8> {
    write_with_conda(meta, projects, &[])
}

/// Write `projects` and `conda` records (both already in order) into an in-memory snapshot.
/// Conda records are added before the projects, to check that the order of the two kinds
/// does not matter to the reader.
pub fn write_with_conda(
    meta: SnapshotMeta,
    projects: &[Project],
    conda: &[CondaRecord],
) -> Vec<u8> {
    let mut writer = Writer::new(Cursor::new(Vec::new()), meta).expect("header");
    for record in conda {
        writer.add_conda_record(record).expect("valid conda record");
    }
    for project in projects {
        writer.add_project(project).expect("valid project");
    }
    writer.finish().expect("finish").0.into_inner()
}

/// Conda records shaped like the intel channel's: one with sha256, one with md5 only, a noarch
/// record, a URL that does not end with the file name, a spec that is not a valid match spec.
#[allow(dead_code)] // not every test binary uses conda records
pub fn sample_conda_records() -> Vec<CondaRecord> {
    let record = |name: &str, subdir: &str, filename: &str| CondaRecord {
        name: name.into(),
        channel: "intel".into(),
        subdir: subdir.into(),
        filename: filename.into(),
        version: "1.21.4".into(),
        build: "py39h6c91a56_0".into(),
        build_number: 0,
        depends: vec![
            "mkl >=2021.4.0,<2022.0a0".into(),
            "python >=3.9,<3.10.0a0".into(),
        ],
        constrains: vec![],
        noarch: None,
        size: 6_000_000,
        sha256: None,
        md5: Some([0xab; 16]),
        timestamp: Some(1_639_000_000_000),
        url: format!("https://conda.anaconda.org/intel/{subdir}/{filename}"),
    };
    vec![
        CondaRecord {
            version: "2021.4.0".into(),
            build: "intel_640".into(),
            build_number: 640,
            depends: vec!["intel-openmp 2021.*".into(), "tbb 2021.*".into()],
            sha256: Some([0x5a; 32]),
            ..record("mkl", "linux-64", "mkl-2021.4.0-intel_640.tar.bz2")
        },
        record("numpy", "linux-64", "numpy-1.21.4-py39h6c91a56_0.tar.bz2"),
        CondaRecord {
            build: "py39h6c91a56_1".into(),
            build_number: 1,
            constrains: vec!["numpy-base <0a0".into(), "this is (not a spec".into()],
            md5: None,
            timestamp: None,
            url: "https://mirror.example/numpy.conda?token=x".into(),
            ..record("numpy", "linux-64", "numpy-1.21.4-py39h6c91a56_1.conda")
        },
        CondaRecord {
            version: "2.2.1".into(),
            build: "pyhd3eb1b0_0".into(),
            noarch: Some("python".into()),
            depends: vec!["python >=3.6".into()],
            ..record("six", "noarch", "six-2.2.1-pyhd3eb1b0_0.tar.bz2")
        },
    ]
}

/// A small, realistic universe: two projects, wheels with different metadata, an sdist with
/// build requirements, yanked files, an unknown-dependencies record, a legacy version.
pub fn sample_projects() -> Vec<Project> {
    let wheel_deps = DependencyRecord {
        source: MetadataSource::WheelMetadata,
        detail: None,
        requires_python: Some(">=3.8".into()),
        requires_dist: vec![
            "charset-normalizer<4,>=2".into(),
            "idna<4,>=2.5".into(),
            "PySocks!=1.5.7,>=1.5.6; extra == \"socks\"".into(),
        ],
        provides_extra: vec!["socks".into(), "use-chardet-on-py3".into()],
        build_requires: vec![],
        build_backend: None,
    };
    let sdist_deps = DependencyRecord {
        source: MetadataSource::SdistPkgInfo,
        build_requires: vec!["setuptools>=61".into(), "wheel".into()],
        build_backend: Some("setuptools.build_meta".into()),
        ..wheel_deps.clone()
    };
    let file = |name: &str, deps: Option<u32>| File {
        filename: name.into(),
        kind: FileKind::of(name),
        size: 64_000 + name.len() as u64,
        sha256: Some([name.len() as u8; 32]),
        upload_time: Some(1_700_000_000),
        yanked: None,
        requires_python: Some(">=3.8".into()),
        // PyPI's layout: packages/<2>/<2>/<60 hex digits>/<file name>.
        url: format!(
            "https://files.pythonhosted.org/packages/70/8e/\
             0e2d847013cb52cd35b38c009bb167a1a26b2ce6cd6965bf26b47bc0bf44/{name}"
        ),
        dependencies: deps,
    };
    vec![
        Project {
            name: "oldpkg".into(),
            last_serial: 7,
            releases: vec![
                Release {
                    version: "0.9".into(),
                    yanked: Some(String::new()),
                    requires_python: None,
                    upload_time: None,
                    dependencies: vec![DependencyRecord {
                        source: MetadataSource::Unknown,
                        detail: Some("setup.py only; no static metadata".into()),
                        ..DependencyRecord::default()
                    }],
                    files: vec![File {
                        url: "https://example.org/mirror/oldpkg-0.9.zip#frag".into(),
                        sha256: None,
                        ..file("oldpkg-0.9.zip", Some(0))
                    }],
                },
                Release {
                    version: "1.0-final-beta".into(),
                    ..Release::default()
                },
            ],
        },
        Project {
            name: "requests".into(),
            last_serial: 21_000_000,
            releases: vec![
                Release {
                    version: "2.31.0".into(),
                    yanked: None,
                    requires_python: Some(">=3.7".into()),
                    upload_time: Some(1_684_000_000),
                    dependencies: vec![wheel_deps.clone(), sdist_deps],
                    files: vec![
                        file("requests-2.31.0-py3-none-any.whl", Some(0)),
                        file("requests-2.31.0.tar.gz", Some(1)),
                    ],
                },
                Release {
                    version: "2.32.0".into(),
                    yanked: Some("CVE fix was incomplete".into()),
                    requires_python: Some(">=3.8".into()),
                    upload_time: Some(1_716_000_000),
                    dependencies: vec![wheel_deps],
                    files: vec![
                        File {
                            yanked: Some("CVE fix was incomplete".into()),
                            ..file("requests-2.32.0-py3-none-any.whl", Some(0))
                        },
                        file("requests-2.32.0.tar.gz", None),
                    ],
                },
            ],
        },
    ]
}

pub fn sample_meta() -> SnapshotMeta {
    SnapshotMeta {
        created: 1_764_000_000,
        pypi_serial: 31_000_000,
        as_of: Some(1_763_000_000),
        ..SnapshotMeta::default()
    }
}

/// Write `projects` and `conda` as a sharded snapshot into `sink`, given the snapshot published
/// before (if any); returns the manifest's bytes and the writer's figures.
#[allow(dead_code)] // not every test binary writes sharded snapshots
pub fn write_sharded(
    sink: &mut db_format::MemorySink,
    meta: SnapshotMeta,
    projects: &[Project],
    conda: &[CondaRecord],
    previous: Option<&db_format::Snapshot>,
) -> (Vec<u8>, db_format::ShardedStats) {
    let mut writer = db_format::ShardedWriter::new(sink, meta, previous);
    for record in conda {
        writer.add_conda_record(record).expect("valid conda record");
    }
    for project in projects {
        writer.add_project(project).expect("valid project");
    }
    writer.finish().expect("finish")
}

/// Open the sharded snapshot `pin` from the blobs in `sink`.
#[allow(dead_code)] // not every test binary writes sharded snapshots
pub fn open_sharded(
    sink: &db_format::MemorySink,
    pin: &db_format::blob::BlobHash,
) -> db_format::Snapshot {
    db_format::Snapshot::from_source(pin, Box::new(sink.clone())).expect("the manifest opens")
}
