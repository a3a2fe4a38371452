//! Format 3: every corruption of a manifest, a shard or a pack is refused with a typed error
//! before use; a lookup reads only what it needs; a publish on top of an earlier one writes
//! only what changed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use db_format::blob::{BlobError, BlobHash, BlobKind, BlobSource};
use db_format::{Error, File, FileKind, MemorySink, Project, Release, Snapshot, SnapshotMeta};

/// The sample data as a sharded snapshot: its blobs and its pin.
fn sample() -> (MemorySink, BlobHash) {
    let mut sink = MemorySink::default();
    let (_, stats) = common::write_sharded(
        &mut sink,
        common::sample_meta(),
        &common::sample_projects(),
        &common::sample_conda_records(),
        None,
    );
    (sink, stats.manifest)
}

fn is_refused_blob(err: &Error) -> bool {
    matches!(err, Error::Blob(blob) if matches!(**blob, BlobError::HashMismatch { .. }))
}

#[test]
fn every_changed_byte_of_a_manifest_is_refused_before_it_is_decoded() {
    let (sink, pin) = sample();
    let original = sink.blobs[&pin].1.clone();
    for position in 0..original.len() {
        let mut damaged = sink.clone();
        damaged.blobs.get_mut(&pin).expect("the manifest").1[position] ^= 0x01;
        let err = Snapshot::from_source(&pin, Box::new(damaged)).expect_err("damage noticed");
        assert!(is_refused_blob(&err), "byte {position}: {err}");
    }
}

#[test]
fn every_changed_byte_of_a_shard_or_page_is_refused_before_it_is_decoded() {
    let (sink, pin) = sample();
    for (hash, (kind, bytes)) in &sink.blobs {
        if *kind != BlobKind::Shard {
            continue;
        }
        for position in 0..bytes.len() {
            let mut damaged = sink.clone();
            damaged.blobs.get_mut(hash).expect("the blob").1[position] ^= 0x80;
            let snapshot = common::open_sharded(&damaged, &pin);
            let err = snapshot.verify().expect_err("damage noticed");
            assert!(is_refused_blob(&err), "{hash:?} byte {position}: {err}");
            // Every reader path meets the same refusal, never different data.
            let mut refused = 0;
            for name in ["oldpkg", "requests"] {
                match snapshot.project(name) {
                    Ok(found) => assert_eq!(
                        found.as_ref(),
                        common::sample_projects().iter().find(|p| p.name == name)
                    ),
                    Err(err) => {
                        assert!(is_refused_blob(&err), "{err}");
                        refused += 1;
                    }
                }
            }
            for name in ["mkl", "numpy", "six"] {
                match snapshot.conda_records(name) {
                    Ok(found) => assert_eq!(
                        found,
                        common::sample_conda_records()
                            .into_iter()
                            .filter(|r| r.name == name)
                            .collect::<Vec<_>>()
                    ),
                    Err(err) => {
                        assert!(is_refused_blob(&err), "{err}");
                        refused += 1;
                    }
                }
            }
            assert!(refused > 0, "{hash:?} byte {position}: no lookup noticed");
        }
    }
}

#[test]
fn a_missing_shard_is_a_typed_error_naming_it() {
    let (mut sink, pin) = sample();
    let shard = *sink
        .blobs
        .iter()
        .find(|(_, (kind, _))| *kind == BlobKind::Shard)
        .expect("a shard")
        .0;
    sink.blobs.remove(&shard);
    let err = common::open_sharded(&sink, &pin)
        .verify()
        .expect_err("missing");
    assert!(
        matches!(&err, Error::Blob(blob) if matches!(**blob, BlobError::Missing { hash, .. } if hash == shard)),
        "{err}"
    );
}

fn sample_pack() -> (Vec<u8>, BlobHash) {
    let (sink, pin) = sample();
    let mut pack = Vec::new();
    common::open_sharded(&sink, &pin)
        .write_pack(&mut pack)
        .expect("packs");
    (pack, pin)
}

#[test]
fn every_changed_byte_of_a_pack_is_refused_or_changes_the_pin() {
    let (original, pin) = sample_pack();
    for position in 0..original.len() {
        for mask in [0x01u8, 0x80] {
            let mut bytes = original.clone();
            bytes[position] ^= mask;
            let Ok(snapshot) = Snapshot::from_bytes(bytes) else {
                continue;
            };
            if snapshot.manifest_hash() != Some(pin) {
                // A damaged manifest is another (unknown) pin: whoever asked for `pin` refuses it.
                continue;
            }
            let err = snapshot
                .verify()
                .expect_err(&format!("byte {position} ^ {mask:#x} went unnoticed"));
            assert!(
                is_refused_blob(&err)
                    || matches!(&err, Error::Blob(blob) if matches!(**blob, BlobError::Missing { .. })),
                "byte {position} ^ {mask:#x}: {err}"
            );
        }
    }
}

#[test]
fn every_truncation_of_a_pack_is_refused() {
    let (original, _) = sample_pack();
    for len in 0..original.len() {
        let err = Snapshot::from_bytes(original[..len].to_vec()).expect_err("truncated pack");
        assert!(
            matches!(
                err,
                Error::Truncated { .. } | Error::BadMagic | Error::OutOfRange { .. }
            ),
            "{len}: {err}"
        );
    }
}

/// A source that counts what is asked of it.
#[derive(Debug)]
struct Counting {
    inner: MemorySink,
    gets: Arc<AtomicU64>,
}

impl BlobSource for Counting {
    fn get(
        &self,
        kind: BlobKind,
        hash: &BlobHash,
        size: Option<u64>,
    ) -> Result<Vec<u8>, BlobError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(kind, hash, size)
    }
}

/// `count` projects of `releases` releases each, every file with distinct hashes so that zstd
/// cannot fold them together.
fn projects(count: usize, releases: usize) -> Vec<Project> {
    let mut projects: Vec<Project> = (0..count)
        .map(|index| {
            let name = format!("project-{index:05}");
            Project {
                last_serial: index as u64,
                releases: (0..releases)
                    .map(|version| {
                        let filename = format!("{}-{version}.0.tar.gz", name.replace('-', "_"));
                        let mut sha256 = [0u8; 32];
                        sha256[..8].copy_from_slice(&(index as u64).to_le_bytes());
                        sha256[8..16].copy_from_slice(&(version as u64).to_le_bytes());
                        let sha256 = db_format::sha256(&sha256).0;
                        Release {
                            version: format!("{version}.0"),
                            upload_time: Some(1_600_000_000 + version as i64),
                            files: vec![File {
                                url: format!("https://files.example/{filename}"),
                                filename,
                                kind: FileKind::Sdist,
                                size: 1000 + version as u64,
                                sha256: Some(sha256),
                                ..File::default()
                            }],
                            ..Release::default()
                        }
                    })
                    .collect(),
                name,
            }
        })
        .collect();
    projects.sort_by(|a, b| a.name.cmp(&b.name));
    projects
}

#[test]
fn a_lookup_fetches_and_decodes_only_its_page_and_shards() {
    // 3,000 projects: several pages; projects of 200 releases get shards of their own.
    let all = projects(3000, 200);
    let mut sink = MemorySink::default();
    let (_, stats) = common::write_sharded(&mut sink, SnapshotMeta::default(), &all, &[], None);
    let gets = Arc::new(AtomicU64::new(0));
    let snapshot = Snapshot::from_source(
        &stats.manifest,
        Box::new(Counting {
            inner: sink,
            gets: gets.clone(),
        }),
    )
    .expect("opens");
    assert_eq!(
        gets.load(Ordering::Relaxed),
        1,
        "opening reads the manifest only"
    );
    let found = snapshot.project(&all[1234].name).expect("lookup");
    assert_eq!(found.as_ref(), Some(&all[1234]));
    assert_eq!(snapshot.decoded_shards(), 1, "one shard decoded");
    assert_eq!(
        gets.load(Ordering::Relaxed),
        3,
        "manifest, one page, one shard"
    );
    let versions = snapshot
        .versions(&all[1234].name)
        .expect("versions")
        .expect("present");
    assert_eq!(versions.len(), 200);
    assert_eq!(gets.load(Ordering::Relaxed), 3, "decoded shards are cached");
    assert_eq!(snapshot.project("absent").expect("lookup"), None);
}

#[test]
fn a_publish_on_top_of_an_earlier_one_writes_only_what_changed() {
    let mut all = projects(400, 30);
    let mut sink = MemorySink::default();
    let (_, first) = common::write_sharded(&mut sink, SnapshotMeta::default(), &all, &[], None);
    let previous = common::open_sharded(&sink, &first.manifest);

    // The same state again: nothing new but the manifest and pages, the same pin.
    let mut same = sink.clone();
    let (_, again) = common::write_sharded(
        &mut same,
        SnapshotMeta::default(),
        &all,
        &[],
        Some(&previous),
    );
    assert_eq!(again.manifest, first.manifest, "same state, same pin");
    assert_eq!((again.units_written, again.units_kept), (0, 400));

    // One project gains a release: one small delta unit, everything else kept.
    let new_release = Release {
        version: "99.0".into(),
        ..all[7].releases[0].clone()
    };
    all[7].releases.push(new_release);
    let mut next = sink.clone();
    let (_, second) = common::write_sharded(
        &mut next,
        SnapshotMeta::default(),
        &all,
        &[],
        Some(&previous),
    );
    assert_eq!((second.units_written, second.units_kept), (1, 400));
    assert!(
        second.unit_bytes_written < 300,
        "the delta holds the new release only: {second:?}"
    );
    let snapshot = common::open_sharded(&next, &second.manifest);
    snapshot.verify().expect("verifies");
    assert_eq!(
        snapshot.project(&all[7].name).expect("lookup").as_ref(),
        Some(&all[7])
    );

    // A changed old release (yanked) rewrites that project as one unit.
    all[9].releases[3].yanked = Some("broken".into());
    let later = common::open_sharded(&next, &second.manifest);
    let mut third_sink = next.clone();
    let (_, third) = common::write_sharded(
        &mut third_sink,
        SnapshotMeta::default(),
        &all,
        &[],
        Some(&later),
    );
    assert_eq!((third.units_written, third.units_kept), (1, 400));
    let snapshot = common::open_sharded(&third_sink, &third.manifest);
    snapshot.verify().expect("verifies");
    assert_eq!(
        snapshot.project(&all[9].name).expect("lookup").as_ref(),
        Some(&all[9])
    );
    assert_eq!(
        snapshot.project(&all[7].name).expect("lookup").as_ref(),
        Some(&all[7])
    );
}

#[test]
fn deltas_merge_so_a_project_keeps_few_units() {
    let mut all = projects(1, 64);
    let full = all[0].releases.clone();
    all[0].releases.truncate(1);
    let mut sink = MemorySink::default();
    let (_, mut stats) = common::write_sharded(&mut sink, SnapshotMeta::default(), &all, &[], None);
    for release in &full[1..] {
        all[0].releases.push(release.clone());
        let previous = common::open_sharded(&sink, &stats.manifest);
        let mut next = sink.clone();
        stats = common::write_sharded(
            &mut next,
            SnapshotMeta::default(),
            &all,
            &[],
            Some(&previous),
        )
        .1;
        sink = next;
        assert!(
            stats.units_kept + stats.units_written <= 8,
            "{} releases in {} units",
            all[0].releases.len(),
            stats.units_kept + stats.units_written
        );
    }
    let snapshot = common::open_sharded(&sink, &stats.manifest);
    assert_eq!(
        snapshot.project(&all[0].name).expect("lookup").as_ref(),
        Some(&all[0])
    );
}

/// A source that records what it is asked to prefetch.
#[derive(Debug)]
struct Prefetching {
    inner: MemorySink,
    asked: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl BlobSource for Prefetching {
    fn get(
        &self,
        kind: BlobKind,
        hash: &BlobHash,
        size: Option<u64>,
    ) -> Result<Vec<u8>, BlobError> {
        self.inner.get(kind, hash, size)
    }

    fn prefetch(&self, blobs: &[(BlobKind, BlobHash, Option<u64>)]) {
        self.asked.lock().expect("lock").push(blobs.len());
    }
}

#[test]
fn the_shards_of_a_project_in_several_units_are_prefetched_together() {
    let mut all = projects(1, 40);
    let full = all[0].clone();
    all[0].releases.truncate(30);
    let mut sink = MemorySink::default();
    let (_, first) = common::write_sharded(&mut sink, SnapshotMeta::default(), &all, &[], None);
    let previous = common::open_sharded(&sink, &first.manifest);
    let mut next = sink.clone();
    let (_, second) = common::write_sharded(
        &mut next,
        SnapshotMeta::default(),
        std::slice::from_ref(&full),
        &[],
        Some(&previous),
    );
    assert_eq!((second.units_written, second.units_kept), (1, 1));
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let snapshot = Snapshot::from_source(
        &second.manifest,
        Box::new(Prefetching {
            inner: next,
            asked: asked.clone(),
        }),
    )
    .expect("opens");
    assert_eq!(snapshot.project(&full.name).expect("decodes"), Some(full));
    assert_eq!(
        *asked.lock().expect("lock"),
        [2],
        "both units' shards at once"
    );
}
