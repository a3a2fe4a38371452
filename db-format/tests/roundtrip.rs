//! Write → read gives the same data; writing twice gives the same bytes.

mod common;

use db_format::{
    CondaRecord, DependencyRecord, File, FileKind, MetadataSource, Project, Release, Snapshot,
    SnapshotMeta,
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
    let names: Vec<String> = snapshot
        .project_names()
        .collect::<Result<_, _>>()
        .expect("names");
    assert_eq!(names, ["oldpkg", "requests"]);
}

#[test]
fn conda_records_round_trip_and_are_found_by_name() {
    let conda = common::sample_conda_records();
    let bytes = common::write_with_conda(common::sample_meta(), &common::sample_projects(), &conda);
    let snapshot = Snapshot::from_bytes(bytes).expect("opens");
    snapshot.verify().expect("verifies");
    assert_eq!(snapshot.meta().conda_record_count, 4);
    assert_eq!(snapshot.meta().project_count, 2);
    assert_eq!(
        snapshot.conda_records("numpy").expect("lookup"),
        conda[1..3]
    );
    assert_eq!(snapshot.conda_records("mkl").expect("lookup"), conda[..1]);
    assert_eq!(snapshot.conda_records("six").expect("lookup"), conda[3..]);
    for absent in ["", "a", "numpz", "zzz", "num"] {
        assert_eq!(snapshot.conda_records(absent).expect("lookup"), vec![]);
    }
    // PyPI lookups are unaffected by the conda index that follows the project index.
    assert_eq!(
        snapshot.project("requests").expect("lookup"),
        Some(common::sample_projects()[1].clone())
    );
}

#[test]
fn writer_refuses_conda_records_out_of_order_or_without_a_name() {
    let conda = common::sample_conda_records();
    let mut writer =
        db_format::Writer::new(std::io::Cursor::new(Vec::new()), SnapshotMeta::default())
            .expect("header");
    writer.add_conda_record(&conda[1]).expect("valid");
    for earlier in [&conda[0], &conda[1]] {
        let err = writer.add_conda_record(earlier).expect_err("out of order");
        assert!(
            matches!(err, db_format::Error::CondaOutOfOrder { .. }),
            "{err}"
        );
    }
    let nameless = CondaRecord {
        name: String::new(),
        ..conda[3].clone()
    };
    let err = writer.add_conda_record(&nameless).expect_err("no name");
    assert!(err.to_string().contains("name is empty"), "{err}");
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

fn conda_record() -> impl Strategy<Value = CondaRecord> {
    (
        (
            "[a-z][a-z0-9_-]{0,5}",
            prop::sample::select(vec!["intel", "main", "conda-forge"]),
            prop::sample::select(vec!["linux-64", "noarch", "osx-64"]),
            "[a-z0-9._-]{1,8}",
            prop::sample::select(vec![".tar.bz2", ".conda"]),
            text(),
            text(),
            any::<u64>(),
        ),
        (
            vec(text(), 0..4),
            vec(text(), 0..3),
            option::of(prop::sample::select(vec!["python", "generic"])),
            any::<u64>(),
            option::of(any::<[u8; 32]>()),
            option::of(any::<[u8; 16]>()),
            option::of(any::<i64>()),
            prop::sample::select(vec!["https://conda.anaconda.org/", "file:///srv/", ""]),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (name, channel, subdir, stem, ext, version, build, build_number),
                (depends, constrains, noarch, size, sha256, md5, timestamp, base, standard_url),
            )| {
                let filename = format!("{stem}{ext}");
                CondaRecord {
                    url: if standard_url {
                        format!("{base}{channel}/{subdir}/{filename}")
                    } else {
                        format!("{base}{filename}.mirror")
                    },
                    name,
                    channel: channel.into(),
                    subdir: subdir.into(),
                    filename,
                    version,
                    build,
                    build_number,
                    depends,
                    constrains,
                    noarch: noarch.map(str::to_owned),
                    size,
                    sha256,
                    md5,
                    timestamp,
                }
            },
        )
}

/// Conda records in the snapshot's order, without duplicate keys.
fn conda_records() -> impl Strategy<Value = Vec<CondaRecord>> {
    vec(conda_record(), 0..8).prop_map(|mut records| {
        records.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        records.dedup_by(|a, b| a.sort_key() == b.sort_key());
        records
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

    #[test]
    fn generated_conda_channels_round_trip_byte_for_byte(
        (meta, projects) in universe(),
        conda in conda_records(),
    ) {
        let bytes = common::write_with_conda(meta.clone(), &projects, &conda);
        prop_assert_eq!(
            &bytes,
            &common::write_with_conda(meta.clone(), &projects, &conda),
            "writing is deterministic"
        );
        let snapshot = Snapshot::from_bytes(bytes).expect("opens");
        snapshot.verify().expect("verifies");
        prop_assert_eq!(snapshot.meta().conda_record_count, conda.len() as u64);
        let read: Vec<CondaRecord> =
            snapshot.conda_records_all().collect::<Result<_, _>>().expect("decodes");
        prop_assert_eq!(&read, &conda);
        let read: Vec<Project> = snapshot.projects().collect::<Result<_, _>>().expect("decodes");
        prop_assert_eq!(&read, &projects);
        for record in &conda {
            let found = snapshot.conda_records(&record.name).expect("lookup");
            let expected: Vec<CondaRecord> =
                conda.iter().filter(|r| r.name == record.name).cloned().collect();
            prop_assert_eq!(found, expected);
        }
    }
}

/// A universe and, for each project, how many of its releases an earlier crawl had already
/// seen (the rest arrive in a second publish).
fn history() -> impl Strategy<Value = (SnapshotMeta, Vec<Project>, Vec<usize>)> {
    universe().prop_flat_map(|(meta, projects)| {
        let seen: Vec<_> = projects
            .iter()
            .map(|project| 0..=project.releases.len())
            .collect();
        (Just(meta), Just(projects), seen)
    })
}

/// What the writers store: releases in PEP 440 order, files by name.
fn normalized(projects: &[Project]) -> Vec<Project> {
    let bytes = common::write(SnapshotMeta::default(), projects);
    let snapshot = Snapshot::from_bytes(bytes).expect("opens");
    snapshot
        .projects()
        .collect::<Result<_, _>>()
        .expect("decodes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sharded_snapshots_round_trip_deterministically_and_pack_to_the_same_pin(
        (meta, projects) in universe(),
        conda in conda_records(),
    ) {
        let mut sink = db_format::MemorySink::default();
        let (manifest, stats) =
            common::write_sharded(&mut sink, meta.clone(), &projects, &conda, None);
        let mut again = db_format::MemorySink::default();
        let (manifest_again, _) =
            common::write_sharded(&mut again, meta.clone(), &projects, &conda, None);
        prop_assert_eq!(&manifest, &manifest_again, "the manifest is deterministic");
        prop_assert_eq!(stats.manifest, db_format::sha256(&manifest));
        let mut blobs: Vec<_> = sink.blobs.iter().map(|(h, (_, b))| (*h, b.clone())).collect();
        let mut blobs_again: Vec<_> = again.blobs.iter().map(|(h, (_, b))| (*h, b.clone())).collect();
        blobs.sort();
        blobs_again.sort();
        prop_assert_eq!(blobs, blobs_again, "every blob is deterministic");

        let snapshot = common::open_sharded(&sink, &stats.manifest);
        snapshot.verify().expect("verifies");
        prop_assert_eq!(snapshot.meta(), &stats.meta);
        prop_assert_eq!(snapshot.meta().created, meta.created);
        prop_assert_eq!(snapshot.meta().as_of, meta.as_of);
        let expected = normalized(&projects);
        let read: Vec<Project> = snapshot.projects().collect::<Result<_, _>>().expect("decodes");
        prop_assert_eq!(&read, &expected);
        for project in &expected {
            let found = snapshot.project(&project.name).expect("lookup");
            prop_assert_eq!(found.as_ref(), Some(project));
        }
        let read: Vec<CondaRecord> =
            snapshot.conda_records_all().collect::<Result<_, _>>().expect("decodes");
        prop_assert_eq!(&read, &conda);

        let mut pack = Vec::new();
        snapshot.write_pack(&mut pack).expect("packs");
        let packed = Snapshot::from_bytes(pack).expect("the pack opens");
        prop_assert_eq!(packed.manifest_hash(), Some(stats.manifest), "same pin packed or sharded");
        packed.verify().expect("the pack verifies");
        let read: Vec<Project> = packed.projects().collect::<Result<_, _>>().expect("decodes");
        prop_assert_eq!(&read, &expected);
    }

    #[test]
    fn a_publish_on_top_of_an_earlier_one_reads_back_the_new_state(
        (meta, projects, seen) in history(),
    ) {
        let earlier: Vec<Project> = projects
            .iter()
            .zip(&seen)
            .map(|(project, &seen)| Project {
                releases: project.releases[..seen].to_vec(),
                ..project.clone()
            })
            .collect();
        let mut sink = db_format::MemorySink::default();
        let (_, first) = common::write_sharded(&mut sink, meta.clone(), &earlier, &[], None);
        let previous = common::open_sharded(&sink, &first.manifest);
        let mut next_sink = sink.clone();
        let (_, second) =
            common::write_sharded(&mut next_sink, meta.clone(), &projects, &[], Some(&previous));
        let snapshot = common::open_sharded(&next_sink, &second.manifest);
        snapshot.verify().expect("verifies");
        let read: Vec<Project> = snapshot.projects().collect::<Result<_, _>>().expect("decodes");
        prop_assert_eq!(read, normalized(&projects));
        prop_assert_eq!(
            snapshot.versions(&projects.first().map_or(String::new(), |p| p.name.clone())).expect("versions").map(|v| v.len()),
            projects.first().map(|p| p.releases.len())
        );
        // The earlier pin still reads as it did.
        let read: Vec<Project> = common::open_sharded(&next_sink, &first.manifest)
            .projects()
            .collect::<Result<_, _>>()
            .expect("decodes");
        prop_assert_eq!(read, normalized(&earlier));
    }
}
