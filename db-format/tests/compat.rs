//! Files written by earlier releases must keep opening. `tests/data/` holds one file per
//! format version, written by that version's writer: `v1-sample.mnxdb` from
//! `common::sample_projects()`, `v2-sample.mnxdb` from those projects plus
//! `common::sample_conda_records()`, `v3-sample.mnxpack` the same data as a format-3 pack.
//! Regenerate the current version's file with
//! `MACH_NIX_BLESS=1 cargo test -p db-format --test compat` only when the format version changes
//! (and add a "Version changes" entry to FORMAT.md). Never regenerate an older version's file.

mod common;

use std::path::PathBuf;

use db_format::{CondaRecord, FORMAT_VERSION, Project, SINGLE_FILE_VERSION, Snapshot};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read_projects(snapshot: &Snapshot) -> Vec<Project> {
    snapshot
        .projects()
        .collect::<Result<_, _>>()
        .expect("decodes")
}

#[test]
fn version_1_file_still_opens_and_reads_the_same() {
    let snapshot = Snapshot::open(data("v1-sample.mnxdb")).expect("the committed v1 file opens");
    assert_eq!(snapshot.format_version(), 1);
    snapshot.verify().expect("and verifies");
    assert_eq!(read_projects(&snapshot), common::sample_projects());
    assert_eq!(snapshot.meta().created, common::sample_meta().created);
    // Version 1 has no conda records: every conda lookup is empty, not an error.
    assert_eq!(snapshot.meta().conda_record_count, 0);
    assert_eq!(snapshot.conda_records_all().count(), 0);
    assert_eq!(snapshot.conda_records("numpy").expect("lookup"), vec![]);
}

#[test]
fn version_2_file_still_opens_and_reads_the_same() {
    let path = data("v2-sample.mnxdb");
    let written = || {
        common::write_with_conda(
            common::sample_meta(),
            &common::sample_projects(),
            &common::sample_conda_records(),
        )
    };
    if std::env::var_os("MACH_NIX_BLESS").is_some() && SINGLE_FILE_VERSION == 2 {
        std::fs::write(&path, written()).expect("write blessed file");
    }
    let snapshot = Snapshot::open(&path).expect("the committed v2 file opens");
    assert_eq!(snapshot.format_version(), 2);
    snapshot.verify().expect("and verifies");
    assert_eq!(read_projects(&snapshot), common::sample_projects());
    let conda: Vec<CondaRecord> = snapshot
        .conda_records_all()
        .collect::<Result<_, _>>()
        .expect("conda records decode");
    assert_eq!(conda, common::sample_conda_records());
    assert_eq!(snapshot.meta().conda_record_count, 4);
    if SINGLE_FILE_VERSION == 2 {
        // The single-file writer still produces exactly the committed bytes.
        assert_eq!(std::fs::read(&path).expect("readable"), written());
    }
}

#[test]
fn version_3_pack_still_opens_and_reads_the_same() {
    let path = data("v3-sample.mnxpack");
    let written = || {
        let mut sink = db_format::MemorySink::default();
        let (_, stats) = common::write_sharded(
            &mut sink,
            common::sample_meta(),
            &common::sample_projects(),
            &common::sample_conda_records(),
            None,
        );
        let mut pack = Vec::new();
        common::open_sharded(&sink, &stats.manifest)
            .write_pack(&mut pack)
            .expect("packs");
        pack
    };
    if std::env::var_os("MACH_NIX_BLESS").is_some() && FORMAT_VERSION == 3 {
        std::fs::write(&path, written()).expect("write blessed file");
    }
    let snapshot = Snapshot::open(&path).expect("the committed v3 pack opens");
    assert_eq!(snapshot.format_version(), 3);
    snapshot.verify().expect("and verifies");
    assert_eq!(read_projects(&snapshot), common::sample_projects());
    let conda: Vec<CondaRecord> = snapshot
        .conda_records_all()
        .collect::<Result<_, _>>()
        .expect("conda records decode");
    assert_eq!(conda, common::sample_conda_records());
    if FORMAT_VERSION == 3 {
        // The writer (and its zstd) still produces exactly the committed bytes, so the same
        // state keeps publishing the same pin.
        assert_eq!(std::fs::read(&path).expect("readable"), written());
    }
}
