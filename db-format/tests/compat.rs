//! Files written by earlier releases must keep opening. `tests/data/` holds one file per
//! format version, written by that version's writer from `common::sample_projects()`.
//! Regenerate the current version's file with `MACH_NIX_BLESS=1 cargo test -p db-format --test compat`
//! only when the format version changes (and add a "Version changes" entry to FORMAT.md).

mod common;

use std::path::PathBuf;

use db_format::{FORMAT_VERSION, Project, Snapshot};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn version_1_file_still_opens_and_reads_the_same() {
    let path = data("v1-sample.mnxdb");
    if std::env::var_os("MACH_NIX_BLESS").is_some() && FORMAT_VERSION == 1 {
        let bytes = common::write(common::sample_meta(), &common::sample_projects());
        std::fs::write(&path, bytes).expect("write blessed file");
    }
    let snapshot = Snapshot::open(&path).expect("the committed v1 file opens");
    snapshot.verify().expect("and verifies");
    let read: Vec<Project> = snapshot
        .projects()
        .collect::<Result<_, _>>()
        .expect("decodes");
    assert_eq!(read, common::sample_projects());
    assert_eq!(snapshot.meta().created, common::sample_meta().created);
    if FORMAT_VERSION == 1 {
        // The writer of this version still produces exactly the committed bytes.
        let bytes = common::write(common::sample_meta(), &common::sample_projects());
        assert_eq!(snapshot.as_bytes(), bytes.as_slice());
    }
}
