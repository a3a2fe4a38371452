//! Write → read gives the same data; writing twice gives the same bytes.

mod common;

use db_format::{
    DependencyRecord, File, FileKind, MetadataSource, Project, Release, Snapshot, SnapshotMeta,
};
use proptest::collection::{btree_set, vec};
use proptest::option;
use proptest::prelude::*;

#[test]
fn sample_round_trips_and_counts_match() {
    let projects = common::sample_projects();
    let bytes = common::write(common::sample_meta(), &projects);
    let snapshot = Snapshot::from_bytes(bytes).expect("opens");
    snapshot.verify().expect("verifies");
    let meta = snapshot.meta();
    assert_eq!(meta.project_count, 2);
    assert_eq!(meta.release_count, 4);
    assert_eq!(meta.file_count, 5);
    // The wheel record of 2.31.0 and 2.32.0 is the same record, stored once.
    assert_eq!(meta.dependency_record_count, 3);
    assert_eq!(meta.as_of, Some(1_763_000_000));
    let read: Vec<Project> = snapshot
        .projects()
        .collect::<Result<_, _>>()
        .expect("decodes");
    assert_eq!(read, projects);
    assert_eq!(
        snapshot.project("requests").expect("lookup"),
        Some(projects[1].clone())
    );
    assert_eq!(snapshot.project("request").expect("lookup"), None);
    assert_eq!(snapshot.project("zzz").expect("lookup"), None);
    assert_eq!(snapshot.project("").expect("lookup"), None);
    let names: Vec<&str> = snapshot
        .project_names()
        .collect::<Result<_, _>>()
        .expect("names");
    assert_eq!(names, ["oldpkg", "requests"]);
}

#[test]
fn releases_are_stored_in_pep440_order_with_legacy_versions_last() {
    let mut project = common::sample_projects().remove(1);
    for version in ["10.0", "2.0rc1", "not-pep-440", "2.0", "2.0.post1", "1!0.1"] {
        project.releases.push(Release {
            version: version.into(),
            ..Release::default()
        });
    }
    project.releases.reverse();
    let bytes = common::write(SnapshotMeta::default(), &[project]);
    let snapshot = Snapshot::from_bytes(bytes).expect("opens");
    let read = snapshot
        .project("requests")
        .expect("lookup")
        .expect("present");
    let versions: Vec<&str> = read.releases.iter().map(|r| r.version.as_str()).collect();
    assert_eq!(
        versions,
        [
            "2.0rc1",
            "2.0",
            "2.0.post1",
            "2.31.0",
            "2.32.0",
            "10.0",
            "1!0.1",
            "not-pep-440"
        ]
    );
}

#[test]
fn writer_refuses_bad_input_without_panicking() {
    let mut unnormalized = common::sample_projects().remove(1);
    unnormalized.name = "Requests".into();
    let mut writer =
        db_format::Writer::new(std::io::Cursor::new(Vec::new()), SnapshotMeta::default())
            .expect("header");
    let err = writer
        .add_project(&unnormalized)
        .expect_err("not normalized");
    assert!(err.to_string().contains("expected \"requests\""), "{err}");

    let projects = common::sample_projects();
    writer.add_project(&projects[1]).expect("valid");
    let err = writer.add_project(&projects[0]).expect_err("out of order");
    assert!(matches!(err, db_format::Error::OutOfOrder { .. }), "{err}");

    let mut dangling = projects[1].clone();
    dangling.name = "zzz".into();
    dangling.releases[0].files[0].dependencies = Some(9);
    let err = writer.add_project(&dangling).expect_err("dangling index");
    assert!(err.to_string().contains("dependency record 9"), "{err}");

    let mut duplicate = projects[1].clone();
    duplicate.name = "zzzz".into();
    duplicate.releases.push(duplicate.releases[0].clone());
    let err = writer
        .add_project(&duplicate)
        .expect_err("duplicate release");
    assert!(err.to_string().contains("appears twice"), "{err}");
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 <>=!.,;\"'_-]{0,24}"
}

fn dependency_record() -> impl Strategy<Value = DependencyRecord> {
    (
        prop::sample::select(MetadataSource::ALL.to_vec()),
        option::of(text()),
        option::of(text()),
        vec(text(), 0..4),
        vec(text(), 0..3),
        vec(text(), 0..3),
        option::of(text()),
    )
        .prop_map(
            |(
                source,
                detail,
                requires_python,
                requires_dist,
                provides_extra,
                build_requires,
                build_backend,
            )| {
                DependencyRecord {
                    source,
                    detail,
                    requires_python,
                    requires_dist,
                    provides_extra,
                    build_requires,
                    build_backend,
                }
            },
        )
}

fn release(version: u32) -> impl Strategy<Value = Release> {
    (
        option::of(text()),
        option::of(text()),
        option::of(any::<i64>()),
        vec(dependency_record(), 0..3),
        btree_set("[a-z0-9_.-]{1,12}", 0..4),
    )
        .prop_flat_map(move |(yanked, requires_python, upload_time, dependencies, names)| {
            let deps = dependencies.len() as u32;
            let files = names
                .into_iter()
                .map(|stem| {
                    (
                        Just(stem),
                        prop::sample::select(vec![".whl", ".tar.gz", ".zip", ".exe"]),
                        any::<u64>(),
                        option::of(any::<[u8; 32]>()),
                        option::of(any::<i64>()),
                        option::of(text()),
                        option::of(text()),
                        prop::sample::select(vec![
                            "https://files.pythonhosted.org/packages/aa/bb/",
                            "https://files.pythonhosted.org/packages/aa/bb/0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab/",
                            "relative/",
                            "",
                        ]),
                        option::of(0..deps.max(1)),
                    )
                })
                .collect::<Vec<_>>();
            (
                Just((yanked, requires_python, upload_time, dependencies)),
                files,
            )
        })
        .prop_map(move |((yanked, requires_python, upload_time, dependencies), files)| {
            let deps = dependencies.len() as u32;
            let mut files: Vec<File> = files
                .into_iter()
                .map(|(stem, ext, size, sha256, upload_time, yanked, requires_python, base, dep)| {
                    let filename = format!("{stem}{ext}");
                    File {
                        kind: FileKind::of(&filename),
                        url: format!("{base}{filename}"),
                        filename,
                        size,
                        sha256,
                        upload_time,
                        yanked,
                        requires_python,
                        dependencies: dep.filter(|&d| d < deps),
                    }
                })
                .collect();
            files.sort_by(|a, b| a.filename.cmp(&b.filename));
            files.dedup_by(|a, b| a.filename == b.filename);
            Release {
                version: format!("{version}.0"),
                yanked,
                requires_python,
                upload_time,
                dependencies,
                files,
            }
        })
}

fn project(name: String) -> impl Strategy<Value = Project> {
    (any::<u64>(), btree_set(0u32..50, 0..5)).prop_flat_map(move |(serial, versions)| {
        let releases: Vec<_> = versions.into_iter().map(release).collect();
        let name = name.clone();
        releases.prop_map(move |releases| Project {
            name: name.clone(),
            last_serial: serial,
            releases,
        })
    })
}

fn universe() -> impl Strategy<Value = (SnapshotMeta, Vec<Project>)> {
    (
        any::<i64>(),
        any::<u64>(),
        option::of(any::<i64>()),
        btree_set("[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?", 0..6),
    )
        .prop_flat_map(|(created, pypi_serial, as_of, names)| {
            let projects: Vec<_> = names.into_iter().map(project).collect();
            (
                Just(SnapshotMeta {
                    created,
                    pypi_serial,
                    as_of,
                    ..SnapshotMeta::default()
                }),
                projects,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn generated_universes_round_trip_byte_for_byte((meta, projects) in universe()) {
        let bytes = common::write(meta.clone(), &projects);
        prop_assert_eq!(&bytes, &common::write(meta.clone(), &projects), "writing is deterministic");
        let snapshot = Snapshot::from_bytes(bytes).expect("opens");
        snapshot.verify().expect("verifies");
        prop_assert_eq!(snapshot.meta().created, meta.created);
        prop_assert_eq!(snapshot.meta().pypi_serial, meta.pypi_serial);
        prop_assert_eq!(snapshot.meta().as_of, meta.as_of);
        let read: Vec<Project> = snapshot.projects().collect::<Result<_, _>>().expect("decodes");
        prop_assert_eq!(&read, &projects);
        for project in &projects {
            let found = snapshot.project(&project.name).expect("lookup");
            prop_assert_eq!(found.as_ref(), Some(project));
        }
    }
}
