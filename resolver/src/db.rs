//! Finding, checking and pinning the snapshot.
//!
//! - `--db sha256:HEX` looks in the snapshot directory (`--db-dir`, a published tree or a cache
//!   with the same layout) for, in order: the manifest `manifests/HEX` (its pages and shards
//!   come from the same directory), the pack `packs/HEX.mnxpack`, the single file `HEX.mnxdb`
//!   (format 2, old pins); else it asks the [`BlobSource`] given to [`open`] (a fetcher of
//!   mirrors), if any.
//! - `--db PATH` opens a pack or a single file.
//! - no `--db`: the directory's `latest`.
//!
//! Integrity (resolver README, "Integrity"): no damaged byte reaches an output.
//! - A sharded snapshot's manifest is checked against the pin before it is decoded; each page
//!   and shard against the sha256 that names it before a byte of it is decoded (db-format).
//!   A pack is the same: its manifest's sha256 is its pin, its blobs are checked on first read.
//! - A single file is checked whole before first use: its body checksum and every record
//!   (`Snapshot::verify`) and, when it is named by a hash, its sha256. A successful check is
//!   remembered in a stamp beside the file (`FILE.verified`) bound to the file's sha256,
//!   canonical path, size, modification time, inode and change time: a stamp that does not
//!   match the file in every one of them is ignored and the file is checked again. A stamp
//!   only ever saves work: a failed check is never remembered, and a stamp is never read as
//!   "this file is the snapshot X" unless its recorded hash is X.
//! - `--db` must name a regular file: a FIFO, a device or a directory is refused at once.

use std::path::{Path, PathBuf};

use db_format::Snapshot;
use db_format::blob::{BlobError, BlobHash, BlobKind, BlobSource, DirSource, LATEST};
use sha2::{Digest, Sha256};

use crate::resolution::SnapshotPin;

/// A snapshot that cannot be found or trusted.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--db {0:?}: expected a file path or sha256:<64 hex digits>")]
    BadHash(String),
    #[error(
        "snapshot sha256:{hash} is not in {} (looked for manifests/{hash}, packs/{hash}.mnxpack \
         and {hash}.mnxdb){}; fetch it (--db-url MIRROR, or `mach-nix fetch`) or pass --db-dir",
        dir.display(),
        elsewhere.as_deref().map(|detail| format!(", nor elsewhere: {detail}")).unwrap_or_default()
    )]
    NotFound {
        hash: String,
        dir: PathBuf,
        /// Why the blob source (cache, mirrors) did not have it either, if one was asked.
        elsewhere: Option<String>,
    },
    #[error("{}: its sha256 is {actual}, not {expected}: the file is damaged or not that snapshot; fetch it again", path.display())]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{}: a {kind}, not a snapshot file: --db takes a regular file (a pack or a .mnxdb)", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("no --db given and {} has no `latest` snapshot: pass --db PATH or --db-dir DIR", dir.display())]
    NoLatest { dir: PathBuf },
    #[error("cannot open the snapshot {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: db_format::Error,
    },
    #[error("snapshot sha256:{hash}: {source}")]
    Sharded {
        hash: String,
        #[source]
        source: db_format::Error,
    },
}

/// The snapshot directory: `--db-dir`, else `MACH_NIX_DB_DIR`, else
/// `$XDG_CACHE_HOME/mach-nix/snapshots`, else `~/.cache/mach-nix/snapshots`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MACH_NIX_DB_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("mach-nix").join("snapshots")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DbError + '_ {
    move |source| DbError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Open the snapshot `db` names (see the module doc) and pin it. `source`, if given, supplies
/// the blobs of a sharded snapshot that the directory does not hold (e.g. from mirrors).
pub fn open(
    db: Option<&str>,
    dir: &Path,
    source: Option<Box<dyn BlobSource>>,
) -> Result<(Snapshot, SnapshotPin), DbError> {
    match db {
        Some(spec) if spec.starts_with("sha256:") => {
            let hex = &spec["sha256:".len()..];
            let hash = BlobHash::from_hex(hex).ok_or_else(|| DbError::BadHash(spec.to_owned()))?;
            open_pinned(&hash, dir, source)
        }
        Some(path) => open_path(Path::new(path)),
        None => {
            let latest = dir.join(LATEST);
            let text = std::fs::read_to_string(&latest).map_err(|_| DbError::NoLatest {
                dir: dir.to_owned(),
            })?;
            let hash = BlobHash::from_hex(text.trim()).ok_or_else(|| DbError::NoLatest {
                dir: dir.to_owned(),
            })?;
            open_pinned(&hash, dir, source)
        }
    }
}

fn pin_of(snapshot: &Snapshot, sha256: String) -> SnapshotPin {
    let meta = snapshot.meta();
    SnapshotPin {
        sha256,
        created: meta.created,
        as_of: meta.as_of,
    }
}

/// The files the snapshot `hash` may be in, in a snapshot directory, in the order they are
/// looked for: its manifest (pages and shards beside it), its pack, its single file (format 2).
pub fn pinned_paths(dir: &Path, hash: &BlobHash) -> [PathBuf; 3] {
    [
        dir.join(BlobKind::Manifest.path(hash)),
        dir.join(BlobKind::Pack.path(hash)),
        dir.join(format!("{}.mnxdb", hash.to_hex())),
    ]
}

/// The snapshot `hash` from the directory, else from `source`.
fn open_pinned(
    hash: &BlobHash,
    dir: &Path,
    source: Option<Box<dyn BlobSource>>,
) -> Result<(Snapshot, SnapshotPin), DbError> {
    let hex = hash.to_hex();
    let sharded = |source: Box<dyn BlobSource>| {
        let snapshot = Snapshot::from_source(hash, source).map_err(|source| match source {
            // The pin itself is unknown to every place asked: say where the user can get it.
            db_format::Error::Blob(blob)
                if matches!(
                    *blob,
                    BlobError::Missing {
                        kind: BlobKind::Manifest,
                        ..
                    }
                ) =>
            {
                DbError::NotFound {
                    hash: hex.clone(),
                    dir: dir.to_owned(),
                    elsewhere: Some(blob.to_string()),
                }
            }
            source => DbError::Sharded {
                hash: hex.clone(),
                source,
            },
        })?;
        let pin = pin_of(&snapshot, hex.clone());
        Ok((snapshot, pin))
    };
    let [manifest, pack, single] = pinned_paths(dir, hash);
    if manifest.is_file() {
        return sharded(Box::new(DirSource::new(dir)));
    }
    if pack.exists() {
        let (snapshot, pin) = open_path(&pack)?;
        if pin.sha256 != hex {
            return Err(DbError::HashMismatch {
                path: pack,
                expected: hex,
                actual: pin.sha256,
            });
        }
        return Ok((snapshot, pin));
    }
    if single.exists() {
        return open_single(&single, Some(&hex));
    }
    match source {
        Some(source) => sharded(source),
        None => Err(DbError::NotFound {
            hash: hex,
            dir: dir.to_owned(),
            elsewhere: None,
        }),
    }
}

/// A file named by `--db` (or found in the directory): a pack or a single file.
fn open_path(path: &Path) -> Result<(Snapshot, SnapshotPin), DbError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let kind = if kind.is_dir() {
            "directory"
        } else if is_fifo(&kind) {
            "FIFO"
        } else {
            "device or special file"
        };
        return Err(DbError::NotAFile {
            path: path.to_owned(),
            kind,
        });
    }
    let snapshot = Snapshot::open(path).map_err(|source| DbError::Open {
        path: path.to_owned(),
        source,
    })?;
    if let Some(manifest) = snapshot.manifest_hash() {
        // A pack: its pin is its manifest's hash; blobs are checked as they are read.
        let pin = pin_of(&snapshot, manifest.to_hex());
        return Ok((snapshot, pin));
    }
    drop(snapshot);
    // A published single file is named by its hash: check that name.
    let named = path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_suffix(".mnxdb"))
        .filter(|stem| BlobHash::from_hex(stem).is_some())
        .map(str::to_ascii_lowercase);
    open_single(path, named.as_deref())
}

#[cfg(unix)]
fn is_fifo(kind: &std::fs::FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    kind.is_fifo()
}

#[cfg(not(unix))]
fn is_fifo(_: &std::fs::FileType) -> bool {
    false
}

/// A single-file snapshot, checked whole before first use (or vouched for by its stamp).
fn open_single(path: &Path, expected: Option<&str>) -> Result<(Snapshot, SnapshotPin), DbError> {
    let stamp_path = stamp_path(path);
    let remembered = std::fs::read_to_string(&stamp_path)
        .ok()
        .and_then(|saved| stamped_hash(&saved, path).ok().flatten());
    let known = match (remembered, expected) {
        (Some(hash), Some(expected)) if hash == expected => Some(hash),
        (Some(hash), None) => Some(hash),
        _ => None,
    };
    let open = || {
        Snapshot::open(path).map_err(|source| DbError::Open {
            path: path.to_owned(),
            source,
        })
    };
    if let Some(hash) = known {
        let snapshot = open()?;
        let pin = pin_of(&snapshot, hash);
        return Ok((snapshot, pin));
    }
    let actual = hash_file(path)?;
    if let Some(expected) = expected
        && actual != expected
    {
        return Err(DbError::HashMismatch {
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    let snapshot = open()?;
    snapshot.verify().map_err(|source| DbError::Open {
        path: path.to_owned(),
        source,
    })?;
    // Best effort: a read-only directory only means checking again next time. The stamp is
    // taken after the check, so a file changed meanwhile does not match it.
    if let Ok(stamp) = stamp_of(path, &actual) {
        let _ = db_format::atomic::write(&stamp_path, stamp.as_bytes());
    }
    let pin = pin_of(&snapshot, actual);
    Ok((snapshot, pin))
}

fn stamp_path(path: &Path) -> PathBuf {
    let mut stamp = path.as_os_str().to_owned();
    stamp.push(".verified");
    PathBuf::from(stamp)
}

fn hash_file(path: &Path) -> Result<String, DbError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok(hex::encode(hasher.finalize()))
}

/// What a stamp records: the file's sha256 and everything that identifies its bytes on disk.
fn stamp_of(path: &Path, sha256: &str) -> Result<String, DbError> {
    let canonical = std::fs::canonicalize(path).map_err(io(path))?;
    let meta = std::fs::metadata(&canonical).map_err(io(path))?;
    let nanos = |time: std::io::Result<std::time::SystemTime>| {
        time.ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |age| age.as_nanos())
    };
    let (inode, changed) = identity(&meta);
    Ok(format!(
        "mach-nix verified snapshot\nsha256 {sha256}\npath {}\nsize {}\nmtime {}\ninode {inode}\nctime {changed}\n",
        canonical.display(),
        meta.len(),
        nanos(meta.modified()),
    ))
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (u64, i128) {
    use std::os::unix::fs::MetadataExt;
    (
        meta.ino(),
        i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
    )
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> (u64, i128) {
    (0, 0)
}

/// The hash a saved stamp vouches for, if it matches `path` as it is now in every field.
fn stamped_hash(saved: &str, path: &Path) -> Result<Option<String>, DbError> {
    let Some(hash) = saved
        .lines()
        .find_map(|line| line.strip_prefix("sha256 "))
        .filter(|hash| BlobHash::from_hex(hash).is_some())
    else {
        return Ok(None);
    };
    Ok((stamp_of(path, hash)? == saved).then(|| hash.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use db_format::{File, FileKind, Project, Release, SnapshotMeta, Writer};

    use super::*;

    const WHEEL_SHA: [u8; 32] = [0x5a; 32];

    fn single_file(serial: u64) -> Vec<u8> {
        let meta = SnapshotMeta {
            pypi_serial: serial,
            ..SnapshotMeta::default()
        };
        let mut writer = Writer::new(Cursor::new(Vec::new()), meta).expect("writer");
        writer
            .add_project(&Project {
                name: "six".into(),
                last_serial: 1,
                releases: vec![Release {
                    version: "1.16.0".into(),
                    files: vec![File {
                        filename: "six-1.16.0-py2.py3-none-any.whl".into(),
                        kind: FileKind::Wheel,
                        size: 11,
                        sha256: Some(WHEEL_SHA),
                        url: "https://files.example/six-1.16.0-py2.py3-none-any.whl".into(),
                        ..File::default()
                    }],
                    ..Release::default()
                }],
            })
            .expect("project");
        writer.finish().expect("snapshot").0.into_inner()
    }

    fn publish(dir: &Path, serial: u64) -> String {
        let bytes = single_file(serial);
        let hash = hex::encode(Sha256::digest(&bytes));
        std::fs::write(dir.join(format!("{hash}.mnxdb")), &bytes).expect("write");
        std::fs::write(dir.join("latest"), format!("{hash}\n")).expect("write");
        hash
    }

    #[test]
    fn snapshots_are_found_by_hash_path_and_latest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let hash = publish(dir.path(), 1);
        let (_, pin) = open(Some(&format!("sha256:{hash}")), dir.path(), None).expect("by hash");
        assert_eq!(pin.sha256, hash);
        assert!(dir.path().join(format!("{hash}.mnxdb.verified")).is_file());
        let (_, pin) = open(None, dir.path(), None).expect("latest");
        assert_eq!(pin.sha256, hash);
        let copy = dir.path().join("copy.mnxdb");
        std::fs::copy(dir.path().join(format!("{hash}.mnxdb")), &copy).expect("copy");
        let (_, pin) = open(copy.to_str(), dir.path(), None).expect("by path");
        assert_eq!(pin.sha256, hash);
    }

    #[test]
    fn damaged_or_missing_snapshots_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let hash = publish(dir.path(), 1);
        let file = dir.path().join(format!("{hash}.mnxdb"));
        let mut bytes = std::fs::read(&file).expect("read");
        bytes.push(0);
        std::fs::write(&file, bytes).expect("write");
        let err = open(Some(&format!("sha256:{hash}")), dir.path(), None).expect_err("damaged");
        assert!(matches!(err, DbError::HashMismatch { .. }), "{err}");
        let err = open(
            Some(&format!("sha256:{}", "a".repeat(64))),
            dir.path(),
            None,
        )
        .expect_err("absent");
        assert!(matches!(err, DbError::NotFound { .. }), "{err}");
        assert!(matches!(
            open(Some("sha256:xyz"), dir.path(), None),
            Err(DbError::BadHash(_))
        ));
        let empty = tempfile::tempdir().expect("temp dir");
        assert!(matches!(
            open(None, empty.path(), None),
            Err(DbError::NoLatest { .. })
        ));
    }

    #[test]
    fn a_flipped_bit_in_a_wheel_hash_of_a_file_given_by_path_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut bytes = single_file(1);
        let at = bytes
            .windows(32)
            .position(|window| window == WHEEL_SHA)
            .expect("the wheel's sha256 is stored raw");
        bytes[at + 7] ^= 0x04;
        let path = dir.path().join("snapshot.mnxdb");
        std::fs::write(&path, &bytes).expect("write");
        let err = open(path.to_str(), dir.path(), None).expect_err("damage noticed");
        assert!(
            matches!(
                err,
                DbError::Open {
                    source: db_format::Error::BodyChecksum { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            !stamp_path(&path).exists(),
            "a failed check is not remembered"
        );
    }

    #[test]
    fn a_stamp_vouches_only_for_its_own_file_and_hash() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = publish(dir.path(), 1);
        let second = publish(dir.path(), 2);
        let path = |hash: &str| dir.path().join(format!("{hash}.mnxdb"));
        open(Some(&format!("sha256:{first}")), dir.path(), None).expect("checks and stamps");
        // Renamed together with its stamp, the first snapshot does not pass as the second.
        std::fs::rename(path(&first), path(&second)).expect("rename");
        std::fs::rename(stamp_path(&path(&first)), stamp_path(&path(&second))).expect("rename");
        let err = open(Some(&format!("sha256:{second}")), dir.path(), None)
            .expect_err("another pin's bytes");
        assert!(matches!(err, DbError::HashMismatch { .. }), "{err}");

        // Damage that keeps size and modification time is still noticed.
        let third = publish(dir.path(), 3);
        open(Some(&format!("sha256:{third}")), dir.path(), None).expect("checks and stamps");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path(&third))
            .expect("open");
        let modified = file.metadata().expect("meta").modified().expect("mtime");
        let mut bytes = std::fs::read(path(&third)).expect("read");
        let at = bytes
            .windows(32)
            .position(|window| window == WHEEL_SHA)
            .expect("stored raw");
        bytes[at] ^= 0x01;
        std::io::Write::write_all(&mut &file, &bytes).expect("rewrite in place");
        file.set_modified(modified).expect("keep the mtime");
        drop(file);
        let err =
            open(Some(&format!("sha256:{third}")), dir.path(), None).expect_err("damage noticed");
        assert!(matches!(err, DbError::HashMismatch { .. }), "{err}");
    }

    #[test]
    fn a_directory_fifo_or_device_is_refused_at_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = open(dir.path().to_str(), dir.path(), None).expect_err("a directory");
        assert!(
            matches!(
                err,
                DbError::NotAFile {
                    kind: "directory",
                    ..
                }
            ),
            "{err}"
        );
        #[cfg(unix)]
        {
            let err = open(Some("/dev/zero"), dir.path(), None).expect_err("a device");
            assert!(matches!(err, DbError::NotAFile { .. }), "{err}");
            let fifo = dir.path().join("fifo");
            let status = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .expect("mkfifo runs");
            assert!(status.success());
            let err = open(fifo.to_str(), dir.path(), None).expect_err("a FIFO");
            assert!(
                matches!(err, DbError::NotAFile { kind: "FIFO", .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn a_published_tree_and_a_pack_open_by_pin_and_a_missing_shard_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sink = db_format::MemorySink::default();
        let project = Snapshot::from_bytes(single_file(1))
            .expect("opens")
            .project("six")
            .expect("decodes")
            .expect("present");
        let mut writer = db_format::ShardedWriter::new(&mut sink, SnapshotMeta::default(), None);
        writer.add_project(&project).expect("project");
        let (_, stats) = writer.finish().expect("finish");
        for (hash, (kind, bytes)) in &sink.blobs {
            let path = dir.path().join(kind.path(hash));
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, bytes).expect("write");
        }
        let pin = format!("sha256:{}", stats.manifest.to_hex());
        let (snapshot, found) = open(Some(&pin), dir.path(), None).expect("from the tree");
        assert_eq!(found.sha256, stats.manifest.to_hex());
        assert_eq!(
            snapshot.project("six").expect("decodes"),
            Some(project.clone())
        );

        let mut pack = Vec::new();
        snapshot.write_pack(&mut pack).expect("packs");
        let pack_path = dir.path().join("six.mnxpack");
        std::fs::write(&pack_path, &pack).expect("write");
        let (snapshot, found) = open(pack_path.to_str(), dir.path(), None).expect("a pack");
        assert_eq!(
            found.sha256,
            stats.manifest.to_hex(),
            "same pin packed or sharded"
        );
        assert_eq!(snapshot.project("six").expect("decodes"), Some(project));

        for (hash, (kind, _)) in &sink.blobs {
            if *kind == BlobKind::Shard {
                std::fs::remove_file(dir.path().join(kind.path(hash))).expect("remove");
            }
        }
        let (snapshot, _) = open(Some(&pin), dir.path(), None).expect("the manifest is there");
        let err = snapshot.project("six").expect_err("a shard is missing");
        assert!(err.to_string().contains("not available"), "{err}");
    }
}
