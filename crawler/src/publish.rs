//! `publish-db`: the crawl state as a format-3 snapshot in a static published tree that any
//! HTTP host can serve (the layout is [`db_format::blob`]'s):
//!
//! ```text
//! OUT/manifests/<sha256>           the manifest; its sha256 is the snapshot's pin
//! OUT/shards/<aa>/<sha256>.zst     pages and shards (zstd)
//! OUT/packs/<sha256>.mnxpack       with --pack: the whole snapshot in one file, named by the pin
//! OUT/index.json                   every published pin with its date and counts, oldest first
//! OUT/latest                       the newest pin and a newline
//! ```
//!
//! A publish on top of an earlier one (the tree's `latest`) keeps every unchanged project's
//! shards and writes only new blobs: a daily publish uploads what changed. Nothing is ever
//! deleted or rewritten: a blob that exists already is re-hashed, and one whose bytes do not
//! match its name stops the publish with [`Error::Published`] (someone must look at it). Each
//! blob is written to a temporary file, fsynced and renamed; the directories are fsynced before
//! the manifest is written, the manifest before `index.json`, `index.json` before `latest`, so
//! a reader (or a mirror syncing the tree) only ever sees complete blobs and a `latest` whose
//! blobs are all in place. One `publish-db` at a time may write to `OUT` (an advisory lock on
//! `OUT/.lock`); the temporary files a killed publish left behind are removed under that lock.
//!
//! The snapshot's `created` time comes from the state (the `--as-of` cutoff, else the newest
//! upload time the state holds), never from the clock, and projects are streamed from the
//! state one at a time, so the same state (on the same previous snapshot) always publishes the
//! same pin in bounded memory. `latest` does not move to a snapshot with far fewer projects or
//! files than the previous `latest` (a damaged or mistaken state) unless `--allow-shrink`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use db_format::atomic::{TEMP_PREFIX, make_readable};
use db_format::blob::{BlobHash, BlobKind, DirSource, INDEX_JSON, LATEST};
use db_format::{
    BlobSink, DependencyRecord, File, Project, Release, ShardedWriter, Snapshot, SnapshotMeta,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::state::{DirLock, State, StoredFile};
use crate::{Error, Result};

/// `latest` may not move to a snapshot holding less than this share of the previous
/// `latest`'s projects or files without `--allow-shrink`.
const SHRINK_LIMIT: f64 = 0.9;

/// A pack as `index.json` lists it: the sha256 of the file itself (what Nix's fetchurl checks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// One entry of `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The pin: the manifest's sha256 (for a format-2 entry, the file's).
    pub sha256: String,
    /// Format-2 entries only: the snapshot file, relative to the tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Bytes of the snapshot: every blob it names (format 3) or its file (format 2).
    pub size: u64,
    pub created: i64,
    pub pypi_serial: u64,
    pub as_of: Option<i64>,
    pub projects: u64,
    pub releases: u64,
    pub files: u64,
    #[serde(default)]
    pub conda_records: u64,
    /// Format 3: bytes of the manifest, and of the blobs this publish added to the tree.
    #[serde(default)]
    pub manifest_size: u64,
    #[serde(default)]
    pub new_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<PackEntry>,
}

/// `index.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub snapshots: Vec<IndexEntry>,
}

/// What `publish` is asked to do besides the tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// Also write `packs/<pin>.mnxpack`.
    pub pack: bool,
    /// Move `latest` even to a much smaller snapshot.
    pub allow_shrink: bool,
}

/// What `publish` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub entry: IndexEntry,
    /// The same snapshot had been published before (nothing new was written).
    pub existed: bool,
    /// Blobs this publish added to the tree.
    pub new_blobs: u64,
    pub dependency_records: u64,
    /// Units (a project's releases in one shard) written, and kept from the previous snapshot.
    pub units_written: u64,
    pub units_kept: u64,
    /// Uncompressed bytes of the units written (against `new_bytes`: the compression ratio).
    pub unit_bytes_written: u64,
}

/// Group a project's stored files into releases, each with its distinct dependency records.
pub fn build_project(name: &str, last_serial: u64, files: Vec<StoredFile>) -> Project {
    let releases = crate::pypi::project::group_releases(files, |file| &file.version)
        .into_iter()
        .map(|(version, mut files)| {
            files.sort_by(|a, b| a.filename.cmp(&b.filename));
            let mut records: Vec<DependencyRecord> = Vec::new();
            let mut out_files = Vec::with_capacity(files.len());
            for file in &files {
                let dependencies = file.dependencies.as_ref().map(|extracted| {
                    let record = &extracted.record;
                    let at = records
                        .iter()
                        .position(|known| known == record)
                        .unwrap_or_else(|| {
                            records.push(record.clone());
                            records.len() - 1
                        });
                    at as u32
                });
                out_files.push(File {
                    filename: file.filename.clone(),
                    kind: file.kind,
                    size: file.size,
                    sha256: file.sha256,
                    upload_time: file.upload_time,
                    yanked: file.yanked.clone(),
                    requires_python: file.requires_python.clone(),
                    url: file.url.clone(),
                    dependencies,
                });
            }
            let all_yanked = files.iter().all(|file| file.yanked.is_some());
            Release {
                yanked: all_yanked
                    .then(|| files.iter().find_map(|file| file.yanked.clone()))
                    .flatten(),
                requires_python: files.iter().find_map(|file| file.requires_python.clone()),
                upload_time: files.iter().filter_map(|file| file.upload_time).min(),
                version,
                dependencies: records,
                files: out_files,
            }
        })
        .collect();
    Project {
        name: name.to_string(),
        last_serial,
        releases,
    }
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |err| {
        Error::Io(std::io::Error::new(
            err.kind(),
            format!("{}: {err}", path.display()),
        ))
    }
}

/// A temporary file in `dir`, named with the shared prefix so that one a killed publish left
/// behind is recognised and removed.
fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(io_at(dir))
}

/// Remove the temporary files of killed publishes (called with `OUT/.lock` held): in `OUT`,
/// `manifests/`, `packs/` and every `shards/<aa>/`.
fn remove_stale_temps(out: &Path) -> Result<()> {
    let mut dirs = vec![out.to_path_buf(), out.join("manifests"), out.join("packs")];
    let shards = out.join("shards");
    if shards.is_dir() {
        for entry in fs_err::read_dir(&shards)? {
            dirs.push(entry?.path());
        }
    }
    for dir in dirs.into_iter().filter(|dir| dir.is_dir()) {
        for entry in fs_err::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                fs_err::remove_file(entry.path())?;
            }
        }
    }
    Ok(())
}

fn sha256_of_file(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut reader = fs_err::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Write `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of the directory.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    db_format::atomic::write(path, bytes)
        .map_err(|err| Error::Io(std::io::Error::new(err.source.kind(), err.to_string())))
}

fn sync_dir(dir: &Path) -> Result<()> {
    db_format::atomic::sync_dir(dir).map_err(io_at(dir))
}

/// The published tree as the writer's sink: new blobs are written (temporary file, fsync,
/// rename, never over an existing file), existing ones re-hashed and left alone.
struct TreeSink<'a> {
    out: &'a Path,
    /// Directories that gained a file: fsynced before the manifest is written.
    touched: BTreeSet<PathBuf>,
    new_blobs: u64,
    new_bytes: u64,
    /// A published blob whose bytes do not match its name: the publish stops.
    conflict: Option<(PathBuf, String)>,
}

impl TreeSink<'_> {
    fn store(&mut self, path: &Path, bytes: &[u8]) -> Result<bool> {
        let dir = path.parent().unwrap_or(self.out);
        if path.exists() {
            let found = sha256_of_file(path)?;
            if found != hex::encode(Sha256::digest(bytes)) {
                self.conflict = Some((path.to_owned(), found.clone()));
                return Err(Error::Published {
                    path: path.to_owned(),
                    found,
                });
            }
            return Ok(false);
        }
        fs_err::create_dir_all(dir)?;
        let mut temp = temp_in(dir)?;
        temp.write_all(bytes).map_err(io_at(path))?;
        make_readable(temp.as_file()).map_err(io_at(path))?;
        temp.as_file().sync_all().map_err(io_at(path))?;
        temp.persist_noclobber(path)
            .map_err(|err| io_at(path)(err.error))?;
        self.touched.insert(dir.to_owned());
        self.new_blobs += 1;
        self.new_bytes += bytes.len() as u64;
        Ok(true)
    }
}

impl BlobSink for TreeSink<'_> {
    fn put(&mut self, kind: BlobKind, hash: &BlobHash, bytes: &[u8]) -> db_format::Result<()> {
        let path = self.out.join(kind.path(hash));
        self.store(&path, bytes)
            .map(drop)
            .map_err(|err| db_format::blob::BlobError::Other(err.to_string()).into())
    }
}

/// The pin `OUT/latest` names, if any.
fn read_latest(out: &Path) -> Result<Option<String>> {
    let path = out.join(LATEST);
    if !path.exists() {
        return Ok(None);
    }
    let text = fs_err::read_to_string(&path)?;
    let hash = text.trim();
    if BlobHash::from_hex(hash).is_none() {
        return Err(Error::Input {
            file: path,
            line: 1,
            message: "expected the 64 hex digits of a pin".into(),
        });
    }
    Ok(Some(hash.to_ascii_lowercase()))
}

fn read_index(out: &Path) -> Result<Manifest> {
    let index_path = out.join(INDEX_JSON);
    if !index_path.exists() {
        return Ok(Manifest::default());
    }
    serde_json::from_slice(&fs_err::read(&index_path)?).map_err(|err| Error::Input {
        file: index_path.clone(),
        line: err.line(),
        message: format!("not a snapshot index: {err}"),
    })
}

/// The snapshot `latest` names; a manifest whose bytes are not its name is a damaged tree.
fn open_previous(out: &Path, pin: &BlobHash) -> Result<Snapshot> {
    Snapshot::from_source(pin, Box::new(DirSource::new(out))).map_err(|err| match err {
        db_format::Error::Blob(blob) => match *blob {
            db_format::blob::BlobError::HashMismatch { actual, .. } => Error::Published {
                path: out.join(BlobKind::Manifest.path(pin)),
                found: actual.to_hex(),
            },
            other => db_format::Error::from(other).into(),
        },
        other => other.into(),
    })
}

/// Refuse to move `latest` from `previous` to a much smaller `next`.
fn check_shrink(previous: &IndexEntry, next: &IndexEntry) -> Result<()> {
    for (what, before, after) in [
        ("projects", previous.projects, next.projects),
        ("files", previous.files, next.files),
    ] {
        if (after as f64) < (before as f64) * SHRINK_LIMIT {
            return Err(Error::Shrink {
                what,
                before,
                after,
                previous: previous.sha256.clone(),
            });
        }
    }
    Ok(())
}

/// Publish the state into the tree `out`.
pub fn publish(state: &State, out: &Path, options: PublishOptions) -> Result<Published> {
    fs_err::create_dir_all(out)?;
    let _lock = DirLock::acquire(out, ".lock", "snapshot directory")?;
    remove_stale_temps(out)?;
    let mut index = read_index(out)?;
    let latest = read_latest(out)?;
    // The previous snapshot, when it is a format-3 one in this tree: unchanged projects keep
    // their shards. (A format-2 `latest` has no manifest here: everything is written anew.)
    let previous = match latest.as_deref().and_then(BlobHash::from_hex) {
        Some(pin) if out.join(BlobKind::Manifest.path(&pin)).is_file() => {
            Some(open_previous(out, &pin)?)
        }
        _ => None,
    };
    let as_of = state
        .meta("as_of")?
        .and_then(|value| value.parse::<i64>().ok());
    let meta = SnapshotMeta {
        created: as_of.or(state.newest_upload()?).unwrap_or(0),
        pypi_serial: state.serial()?,
        as_of,
        ..SnapshotMeta::default()
    };
    let mut sink = TreeSink {
        out,
        touched: BTreeSet::new(),
        new_blobs: 0,
        new_bytes: 0,
        conflict: None,
    };
    let written = write_snapshot(state, &mut sink, meta, previous.as_ref());
    if let Some((path, found)) = sink.conflict.take() {
        return Err(Error::Published { path, found });
    }
    let stats = written?;
    // Every blob the manifest names is durable before anything points at the manifest.
    for dir in &sink.touched {
        sync_dir(dir)?;
    }
    sync_dir(&out.join("manifests"))?;
    let pin = stats.manifest.to_hex();
    let snapshot = Snapshot::from_source(&stats.manifest, Box::new(DirSource::new(out)))?;
    let size = snapshot.blobs()?.iter().map(|(_, _, size)| size).sum();
    let pack = if options.pack {
        Some(write_pack(&snapshot, out, &stats.manifest)?)
    } else {
        None
    };
    let existed = index.snapshots.iter().any(|known| known.sha256 == pin);
    let entry = IndexEntry {
        sha256: pin.clone(),
        file: None,
        size,
        created: stats.meta.created,
        pypi_serial: stats.meta.pypi_serial,
        as_of: stats.meta.as_of,
        projects: stats.meta.project_count,
        releases: stats.meta.release_count,
        files: stats.meta.file_count,
        conda_records: stats.meta.conda_record_count,
        manifest_size: stats.manifest_bytes,
        new_bytes: sink.new_bytes,
        pack,
    };
    if let Some(previous) = latest
        .as_ref()
        .and_then(|latest| index.snapshots.iter().find(|known| &known.sha256 == latest))
        && !options.allow_shrink
    {
        check_shrink(previous, &entry)?;
    }
    let listed = index.snapshots.iter_mut().find(|known| known.sha256 == pin);
    let changed = match listed {
        None => {
            index.snapshots.push(entry.clone());
            true
        }
        Some(known) if known.pack.is_none() && entry.pack.is_some() => {
            known.pack = entry.pack.clone();
            true
        }
        Some(_) => false,
    };
    if changed {
        let mut text =
            serde_json::to_vec_pretty(&index).map_err(|err| Error::Internal(err.to_string()))?;
        text.push(b'\n');
        replace_file(&out.join(INDEX_JSON), &text)?;
    }
    replace_file(&out.join(LATEST), format!("{pin}\n").as_bytes())?;
    Ok(Published {
        entry,
        existed,
        new_blobs: sink.new_blobs,
        dependency_records: stats.meta.dependency_record_count,
        units_written: stats.units_written,
        units_kept: stats.units_kept,
        unit_bytes_written: stats.unit_bytes_written,
    })
}

/// Stream the state's projects (one at a time) and conda records into the writer.
fn write_snapshot(
    state: &State,
    sink: &mut TreeSink<'_>,
    meta: SnapshotMeta,
    previous: Option<&Snapshot>,
) -> Result<db_format::ShardedStats> {
    let mut writer = ShardedWriter::new(sink, meta, previous);
    for name in state.project_names()? {
        let serial = state
            .project(&name)?
            .map(|row| row.last_serial)
            .unwrap_or(0);
        writer.add_project(&build_project(&name, serial, state.files(&name)?))?;
    }
    // conda: the channels fetched into the state directory.
    if let Some(state_dir) = state.path().parent() {
        crate::conda::add_to_snapshot(&mut writer, state_dir)?;
    }
    Ok(writer.finish()?.1)
}

/// Write `packs/<pin>.mnxpack` (unless there with the same bytes) and describe it.
fn write_pack(snapshot: &Snapshot, out: &Path, pin: &BlobHash) -> Result<PackEntry> {
    let relative = BlobKind::Pack.path(pin);
    let path = out.join(&relative);
    let dir = path.parent().unwrap_or(out);
    fs_err::create_dir_all(dir)?;
    let temp = temp_in(dir)?;
    let mut hashing = HashingWriter {
        inner: std::io::BufWriter::new(temp),
        hasher: Sha256::new(),
    };
    let size = snapshot.write_pack(&mut hashing)?;
    let sha256 = hex::encode(hashing.hasher.finalize());
    let temp = hashing
        .inner
        .into_inner()
        .map_err(|err| Error::Io(err.into_error()))?;
    if path.exists() {
        let found = sha256_of_file(&path)?;
        if found != sha256 {
            return Err(Error::Published { path, found });
        }
    } else {
        make_readable(temp.as_file()).map_err(io_at(&path))?;
        temp.as_file().sync_all().map_err(io_at(&path))?;
        temp.persist_noclobber(&path)
            .map_err(|err| io_at(&path)(err.error))?;
        sync_dir(dir)?;
    }
    Ok(PackEntry {
        path: relative,
        sha256,
        size,
    })
}

/// Hashes what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn file(name: &str, version: &str, requires: &[&str], yanked: bool) -> StoredFile {
        StoredFile {
            version: version.into(),
            size: 1,
            sha256: None,
            upload_time: Some(5),
            yanked: yanked.then(String::new),
            ..crate::state::test_file(name, requires)
        }
    }

    #[test]
    fn wheels_that_disagree_get_their_own_record() {
        let project = build_project(
            "x",
            3,
            vec![
                file("x-1.0-py2-none-any.whl", "1.0", &["futures"], false),
                file("x-1.0-py3-none-any.whl", "1.0", &[], false),
                file("x-1.0-cp311-cp311-win_amd64.whl", "1.0", &[], true),
            ],
        );
        let release = &project.releases[0];
        assert_eq!(release.dependencies.len(), 2);
        let pointers: Vec<Option<u32>> = release.files.iter().map(|f| f.dependencies).collect();
        // Files are in name order: cp311 (no deps), py2 (futures), py3 (no deps).
        assert_eq!(pointers, [Some(0), Some(1), Some(0)]);
        assert_eq!(
            release.yanked, None,
            "one yanked file does not yank the release"
        );
    }

    /// A state of `projects` projects named `p000`…, each with `releases` wheels.
    fn state_with(dir: &Path, projects: usize, releases: usize) -> State {
        let mut state = State::open(dir).expect("opens");
        for index in 0..projects {
            let name = format!("p{index:03}");
            let files = (0..releases)
                .map(|release| StoredFile {
                    version: format!("{release}.0"),
                    ..crate::state::test_file(&format!("{name}-{release}.0-py3-none-any.whl"), &[])
                })
                .collect();
            state
                .commit_project(
                    None,
                    &crate::state::ProjectCommit {
                        name,
                        last_serial: 1,
                        etag: None,
                        files,
                        enqueue: Vec::new(),
                    },
                )
                .expect("commits");
        }
        state
    }

    fn tree_files(out: &Path) -> BTreeMap<PathBuf, std::time::SystemTime> {
        let mut found = BTreeMap::new();
        let mut dirs = vec![out.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("readable") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let modified = path.metadata().expect("meta").modified().expect("mtime");
                    found.insert(path, modified);
                }
            }
        }
        found
    }

    #[test]
    fn a_daily_publish_adds_only_changed_shards_and_every_pin_stays_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let state = state_with(&dir.path().join("state"), 40, 3);
        let first = publish(&state, &out, PublishOptions::default()).expect("publishes");
        let before = tree_files(&out);
        drop(state);

        let state = state_with(&dir.path().join("state"), 40, 4);
        let second = publish(&state, &out, PublishOptions::default()).expect("publishes");
        assert_ne!(second.entry.sha256, first.entry.sha256);
        assert_eq!(
            second.units_kept, 40,
            "every project keeps its earlier shard"
        );
        assert_eq!(second.units_written, 40, "and gains a delta");
        let after = tree_files(&out);
        for (path, modified) in &before {
            if path.ends_with("index.json") || path.ends_with("latest") || path.ends_with(".lock") {
                continue;
            }
            assert_eq!(
                after.get(path),
                Some(modified),
                "{} was rewritten or deleted",
                path.display()
            );
        }
        for pin in [&first.entry.sha256, &second.entry.sha256] {
            let hash = BlobHash::from_hex(pin).expect("pin");
            let snapshot =
                Snapshot::from_source(&hash, Box::new(DirSource::new(&out))).expect("opens");
            snapshot.verify().expect("every pin stays readable");
        }
        let index = read_index(&out).expect("index");
        assert_eq!(index.snapshots.len(), 2);
        assert_eq!(
            read_latest(&out).expect("latest"),
            Some(second.entry.sha256.clone())
        );

        // The same state again: nothing new, the same pin.
        let third = publish(&state, &out, PublishOptions::default()).expect("publishes");
        assert_eq!(third.entry.sha256, second.entry.sha256);
        assert_eq!(third.new_blobs, 0);
    }

    #[test]
    fn latest_does_not_move_to_a_much_smaller_snapshot_unless_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let big = state_with(&dir.path().join("big"), 20, 2);
        let big_pin = publish(&big, &out, PublishOptions::default()).expect("publishes");
        let small = state_with(&dir.path().join("small"), 2, 2);
        let err = publish(&small, &out, PublishOptions::default()).expect_err("refused");
        assert!(
            matches!(
                err,
                Error::Shrink {
                    what: "projects",
                    before: 20,
                    after: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("--allow-shrink"), "{err}");
        assert_eq!(
            read_latest(&out).expect("latest"),
            Some(big_pin.entry.sha256)
        );
        let allowed = PublishOptions {
            allow_shrink: true,
            ..PublishOptions::default()
        };
        let small_pin = publish(&small, &out, allowed).expect("allowed");
        assert_eq!(
            read_latest(&out).expect("latest"),
            Some(small_pin.entry.sha256)
        );
    }

    #[test]
    fn a_pack_is_named_by_the_pin_and_listed_with_its_own_sha256() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let state = state_with(&dir.path().join("state"), 5, 2);
        let options = PublishOptions {
            pack: true,
            ..PublishOptions::default()
        };
        let published = publish(&state, &out, options).expect("publishes");
        let pack = published.entry.pack.clone().expect("a pack");
        assert_eq!(
            pack.path,
            format!("packs/{}.mnxpack", published.entry.sha256)
        );
        let path = out.join(&pack.path);
        assert_eq!(sha256_of_file(&path).expect("hash"), pack.sha256);
        let snapshot = Snapshot::open(&path).expect("the pack opens");
        assert_eq!(
            snapshot.manifest_hash().map(|hash| hash.to_hex()),
            Some(published.entry.sha256.clone())
        );
        snapshot.verify().expect("verifies");
        let index = read_index(&out).expect("index");
        assert_eq!(index.snapshots[0].pack.as_ref(), Some(&pack));
    }
}
