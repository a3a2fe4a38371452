//! Finding and pinning the snapshot: `--db PATH`, `--db sha256:HEX` (looked up as `HEX.mnxdb` in
//! the snapshot directory that `publish-db --out` writes), or nothing (the directory's `latest`).
//!
//! The pin is the sha256 of the file's bytes, checked whenever a file is named by its hash.
//! Hashing a large snapshot costs more than resolving against it, so a successful check is
//! remembered in `HEX.mnxdb.verified` beside the file (its size and modification time): a file
//! changed after the check is hashed again. Snapshots are immutable once published, and a
//! corrupted body is still caught by the format's own checksums.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use db_format::Snapshot;
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
        "snapshot sha256:{hash} is not in {} (looked for {hash}.mnxdb); fetch it or pass --db-dir",
        dir.display()
    )]
    NotFound { hash: String, dir: PathBuf },
    #[error("{}: its sha256 is {actual}, not {expected}: the file is damaged or not that snapshot; fetch it again", path.display())]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("no --db given and {} has no `latest` snapshot: pass --db PATH or --db-dir DIR", dir.display())]
    NoLatest { dir: PathBuf },
    #[error("cannot open the snapshot {}: {source}", path.display())]
    Open {
        path: PathBuf,
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

fn is_hex_hash(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Open the snapshot `db` names (see the module doc) and pin it.
pub fn open(db: Option<&str>, dir: &Path) -> Result<(Snapshot, SnapshotPin), DbError> {
    let (path, expected) = match db {
        Some(spec) if spec.starts_with("sha256:") => {
            let hash = spec["sha256:".len()..].to_ascii_lowercase();
            if !is_hex_hash(&hash) {
                return Err(DbError::BadHash(spec.to_owned()));
            }
            let path = dir.join(format!("{hash}.mnxdb"));
            if !path.is_file() {
                return Err(DbError::NotFound {
                    hash,
                    dir: dir.to_owned(),
                });
            }
            (path, Some(hash))
        }
        Some(path) => {
            let path = PathBuf::from(path);
            // A published file is named by its hash: check that name.
            let named = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".mnxdb"))
                .filter(|stem| is_hex_hash(stem))
                .map(str::to_ascii_lowercase);
            (path, named)
        }
        None => {
            let latest = dir.join("latest");
            let hash = std::fs::read_to_string(&latest)
                .map_err(|_| DbError::NoLatest {
                    dir: dir.to_owned(),
                })?
                .trim()
                .to_ascii_lowercase();
            if !is_hex_hash(&hash) {
                return Err(DbError::NoLatest {
                    dir: dir.to_owned(),
                });
            }
            return open(Some(&format!("sha256:{hash}")), dir);
        }
    };
    let sha256 = match expected {
        Some(expected) => {
            verify(&path, &expected)?;
            expected
        }
        None => hash_file(&path)?,
    };
    let snapshot = Snapshot::open(&path).map_err(|source| DbError::Open {
        path: path.clone(),
        source,
    })?;
    let meta = snapshot.meta();
    let pin = SnapshotPin {
        sha256,
        created: meta.created,
        as_of: meta.as_of,
    };
    Ok((snapshot, pin))
}

fn hash_file(path: &Path) -> Result<String, DbError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Size and modification time of a file, as the verification stamp records them.
fn stamp_of(path: &Path) -> Result<String, DbError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |age| age.as_nanos());
    Ok(format!("{} {modified}\n", meta.len()))
}

fn verify(path: &Path, expected: &str) -> Result<(), DbError> {
    let mut stamp_path = path.as_os_str().to_owned();
    stamp_path.push(".verified");
    let stamp_path = PathBuf::from(stamp_path);
    let stamp = stamp_of(path)?;
    if std::fs::read_to_string(&stamp_path).is_ok_and(|saved| saved == stamp) {
        return Ok(());
    }
    let actual = hash_file(path)?;
    if actual != expected {
        return Err(DbError::HashMismatch {
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    // Best effort: a read-only snapshot directory only means hashing again next time.
    let _ = std::fs::write(&stamp_path, stamp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use db_format::{SnapshotMeta, Writer};

    use super::*;

    fn publish(dir: &Path) -> String {
        let writer = Writer::new(Cursor::new(Vec::new()), SnapshotMeta::default()).expect("writer");
        let (bytes, _) = writer.finish().expect("snapshot");
        let bytes = bytes.into_inner();
        let hash = hex::encode(Sha256::digest(&bytes));
        std::fs::write(dir.join(format!("{hash}.mnxdb")), &bytes).expect("write");
        std::fs::write(dir.join("latest"), format!("{hash}\n")).expect("write");
        hash
    }

    #[test]
    fn snapshots_are_found_by_hash_path_and_latest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let hash = publish(dir.path());
        let (_, pin) = open(Some(&format!("sha256:{hash}")), dir.path()).expect("by hash");
        assert_eq!(pin.sha256, hash);
        assert!(dir.path().join(format!("{hash}.mnxdb.verified")).is_file());
        let (_, pin) = open(None, dir.path()).expect("latest");
        assert_eq!(pin.sha256, hash);
        let copy = dir.path().join("copy.mnxdb");
        std::fs::copy(dir.path().join(format!("{hash}.mnxdb")), &copy).expect("copy");
        let (_, pin) = open(copy.to_str(), dir.path()).expect("by path");
        assert_eq!(pin.sha256, hash);
    }

    #[test]
    fn damaged_or_missing_snapshots_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let hash = publish(dir.path());
        let file = dir.path().join(format!("{hash}.mnxdb"));
        let mut bytes = std::fs::read(&file).expect("read");
        bytes.push(0);
        std::fs::write(&file, bytes).expect("write");
        let err = open(Some(&format!("sha256:{hash}")), dir.path()).expect_err("damaged");
        assert!(matches!(err, DbError::HashMismatch { .. }), "{err}");
        let err =
            open(Some(&format!("sha256:{}", "a".repeat(64))), dir.path()).expect_err("absent");
        assert!(matches!(err, DbError::NotFound { .. }), "{err}");
        assert!(matches!(
            open(Some("sha256:xyz"), dir.path()),
            Err(DbError::BadHash(_))
        ));
        let empty = tempfile::tempdir().expect("temp dir");
        assert!(matches!(
            open(None, empty.path()),
            Err(DbError::NoLatest { .. })
        ));
    }
}
