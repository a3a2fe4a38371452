//! Every single-byte change and every truncation of a small snapshot is rejected with a typed
//! error; nothing panics or reads out of bounds on the way.

mod common;

use db_format::{Error, Snapshot};

/// Use the snapshot the way a reader would, without `verify`: every path must return, not panic.
fn exercise(snapshot: &Snapshot) {
    for name in ["oldpkg", "requests", "a", "zzz"] {
        let _ = snapshot.project(name);
    }
    for project in snapshot.projects() {
        let _ = project;
    }
    for name in snapshot.project_names() {
        let _ = name;
    }
    for name in ["mkl", "numpy", "six", "a", "zzz"] {
        let _ = snapshot.conda_records(name);
    }
    for record in snapshot.conda_records_all() {
        let _ = record;
    }
}

/// The sample holds PyPI projects and conda records, so corruption reaches both.
fn sample() -> Vec<u8> {
    common::write_with_conda(
        common::sample_meta(),
        &common::sample_projects(),
        &common::sample_conda_records(),
    )
}

#[test]
fn every_single_byte_change_is_caught() {
    let original = sample();
    let mut checked = 0;
    for position in 0..original.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bytes = original.clone();
            bytes[position] ^= mask;
            match Snapshot::from_bytes(bytes) {
                Err(err) => assert!(
                    matches!(
                        err,
                        Error::BadMagic
                            | Error::UnsupportedVersion { .. }
                            | Error::UpgradeRequired { .. }
                            | Error::HeaderChecksum { .. }
                    ),
                    "byte {position} ^ {mask:#x}: open failed with {err}"
                ),
                Ok(snapshot) => {
                    exercise(&snapshot);
                    let err = snapshot
                        .verify()
                        .expect_err(&format!("byte {position} ^ {mask:#x} went unnoticed"));
                    assert!(matches!(err, Error::BodyChecksum { .. }), "{err}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, original.len() * 3);
}

#[test]
fn every_truncation_is_caught() {
    let original = sample();
    for len in 0..original.len() {
        let err =
            Snapshot::from_bytes(original[..len].to_vec()).expect_err("truncated file opened");
        assert!(
            matches!(err, Error::Truncated { .. }),
            "length {len}: expected Truncated, got {err}"
        );
    }
    let mut longer = original.clone();
    longer.push(0);
    assert!(matches!(
        Snapshot::from_bytes(longer),
        Err(Error::Malformed { .. })
    ));
}

/// With a valid header but garbage in the body (the header checksum does not cover the body),
/// lookups must still fail cleanly. Fill the body with every byte value in turn.
#[test]
fn garbage_bodies_never_panic() {
    let original = sample();
    for fill in 0..=255u8 {
        let mut bytes = original.clone();
        // Two project and four conda index entries end the body.
        let index_start = bytes.len() - (2 + 4) * 8;
        for byte in &mut bytes[128..index_start] {
            *byte = fill;
        }
        let snapshot = Snapshot::from_bytes(bytes).expect("header untouched");
        exercise(&snapshot);
        assert!(snapshot.verify().is_err());
    }
}

#[test]
fn newer_and_older_format_versions_get_distinct_errors() {
    let original = sample();
    let with_version = |version: u32| {
        let mut bytes = original.clone();
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        Snapshot::from_bytes(bytes).expect_err("wrong version")
    };
    let newer = with_version(db_format::FORMAT_VERSION + 1);
    assert!(matches!(newer, Error::UnsupportedVersion { .. }));
    assert!(newer.to_string().contains("upgrade mach-nix"), "{newer}");
    let older = with_version(0);
    assert!(matches!(older, Error::UpgradeRequired { .. }));
    assert!(older.to_string().contains("upgrade required"), "{older}");
    assert!(matches!(
        Snapshot::from_bytes(b"{\"json\": true}".repeat(20)),
        Err(Error::BadMagic)
    ));
}
