//! `publish-db`: the crawl state as a db-format snapshot, named by its sha256.
//!
//! `OUT/<sha256>.mnxdb` is written to a temporary file, fsynced and renamed (an existing
//! snapshot of the same hash is left untouched: never deleted, never rewritten); then
//! `OUT/index.json` (all published snapshots, newest last) and finally `OUT/latest` (the hash and
//! a newline), each replaced atomically. The snapshot's `created` time comes from the state (the
//! `--as-of` cutoff, else the newest upload time the state holds), never from the clock, so the
//! same state always publishes the same bytes.
//!
//! Issue 9 hardening: an existing `<sha256>.mnxdb` is re-hashed, and one whose bytes do not
//! match its name stops the publish with [`Error::Published`] (it is never overwritten: someone
//! must look at it); one `publish-db` at a time may write to `OUT` (an advisory lock on
//! `OUT/.lock`, so `index.json` never loses an entry to a concurrent writer), and the temporary
//! files a killed publish left behind (`OUT/.publish-*`) are removed under that lock. A reader
//! therefore only ever sees complete snapshots, a complete `index.json`, and a `latest` naming
//! a snapshot that is already in place (`tests/crash.rs` kills `publish-db` to check it).

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use db_format::{DependencyRecord, File, Project, Release, SnapshotMeta, Writer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::state::{DirLock, State, StoredFile};
use crate::{Error, Result};

/// One entry of `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub sha256: String,
    pub file: String,
    pub size: u64,
    pub created: i64,
    pub pypi_serial: u64,
    pub as_of: Option<i64>,
    pub projects: u64,
    pub releases: u64,
    pub files: u64,
}

/// `index.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub snapshots: Vec<IndexEntry>,
}

/// What `publish` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub entry: IndexEntry,
    pub path: PathBuf,
    /// The same snapshot had been published before (nothing was rewritten).
    pub existed: bool,
    pub dependency_records: u64,
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

/// Temporary files in `OUT` start with this; a killed publish may leave some behind.
const TEMP_PREFIX: &str = ".publish-";

fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(io_at(dir))
}

/// Remove the temporary files of killed publishes (called with `OUT/.lock` held).
fn remove_stale_temps(out: &Path) -> Result<()> {
    for entry in fs_err::read_dir(out)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            fs_err::remove_file(entry.path())?;
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
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = temp_in(dir)?;
    temp.write_all(bytes).map_err(io_at(path))?;
    make_readable(temp.as_file()).map_err(io_at(path))?;
    temp.as_file().sync_all().map_err(io_at(path))?;
    temp.persist(path).map_err(|err| io_at(path)(err.error))?;
    sync_dir(dir)
}

/// Published files are for everyone to read (temporary files start private).
fn make_readable(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Publish the state into `out`.
pub fn publish(state: &State, out: &Path) -> Result<Published> {
    fs_err::create_dir_all(out)?;
    let _lock = DirLock::acquire(out, ".lock", "snapshot directory")?;
    remove_stale_temps(out)?;
    let as_of = state
        .meta("as_of")?
        .and_then(|value| value.parse::<i64>().ok());
    let meta = SnapshotMeta {
        created: as_of.or(state.newest_upload()?).unwrap_or(0),
        pypi_serial: state.serial()?,
        as_of,
        ..SnapshotMeta::default()
    };
    let temp = temp_in(out)?;
    let mut writer = Writer::new(BufWriter::new(temp), meta)?;
    for name in state.project_names()? {
        let serial = state
            .project(&name)?
            .map(|row| row.last_serial)
            .unwrap_or(0);
        writer.add_project(&build_project(&name, serial, state.files(&name)?))?;
    }
    // conda: the channels fetched into the state directory, after the projects.
    if let Some(state_dir) = state.path().parent() {
        crate::conda::add_to_snapshot(&mut writer, state_dir)?;
    }
    let (buffered, stats) = writer.finish()?;
    let temp = buffered
        .into_inner()
        .map_err(|err| Error::Io(err.into_error()))?;
    make_readable(temp.as_file()).map_err(io_at(out))?;
    temp.as_file().sync_all().map_err(io_at(out))?;
    let sha256 = sha256_of_file(temp.path())?;
    let file = format!("{sha256}.mnxdb");
    let path = out.join(&file);
    let existed = path.exists();
    if existed {
        // Same hash, same bytes: the published file stays as it is — if it really holds them.
        let found = sha256_of_file(&path)?;
        if found != sha256 {
            return Err(Error::Published { path, found });
        }
        drop(temp);
    } else {
        temp.persist_noclobber(&path)
            .map_err(|err| io_at(&path)(err.error))?;
        sync_dir(out)?;
    }
    let entry = IndexEntry {
        sha256: sha256.clone(),
        file,
        size: stats.total_bytes,
        created: stats.meta.created,
        pypi_serial: stats.meta.pypi_serial,
        as_of: stats.meta.as_of,
        projects: stats.meta.project_count,
        releases: stats.meta.release_count,
        files: stats.meta.file_count,
    };
    let index_path = out.join("index.json");
    let mut manifest: Manifest = if index_path.exists() {
        serde_json::from_slice(&fs_err::read(&index_path)?).map_err(|err| Error::Input {
            file: index_path.clone(),
            line: err.line(),
            message: format!("not a snapshot manifest: {err}"),
        })?
    } else {
        Manifest::default()
    };
    if !manifest
        .snapshots
        .iter()
        .any(|known| known.sha256 == sha256)
    {
        manifest.snapshots.push(entry.clone());
        let mut text =
            serde_json::to_vec_pretty(&manifest).map_err(|err| Error::Internal(err.to_string()))?;
        text.push(b'\n');
        replace_file(&index_path, &text)?;
    }
    replace_file(&out.join("latest"), format!("{sha256}\n").as_bytes())?;
    Ok(Published {
        entry,
        path,
        existed,
        dependency_records: stats.meta.dependency_record_count,
    })
}

#[cfg(test)]
mod tests {
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
}
