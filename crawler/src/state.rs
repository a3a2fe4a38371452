//! The crawl state: one SQLite file (`DIR/state.sqlite`) holding every project's files and the
//! dependency record of each file, plus the queue of the current crawl run.
//!
//! Crash safety: everything one project changes (its files, their records, its serial and ETag,
//! the run queue entries it adds and its own "done" mark) is written in one transaction, so a
//! `SIGKILL` at any moment leaves either all of it or none of it; the records of a big
//! project's files examined so far are kept in batches meanwhile ([`State::save_partial`]). A run is identified by the
//! command that started it ([`State::begin_run`]); the same command after a crash resumes the
//! unfinished run and crawls only what is still queued, so the result equals an uninterrupted
//! run's.
//!
//! Exclusion: [`State::open`] holds an advisory lock on `DIR/lock` (`flock`, through std's
//! `File::try_lock`, so no extra crate) for as long as the `State` lives, so two crawls — or a
//! crawl and a `publish-db` or `merge-state` — never use one state at once; the second fails at
//! once with [`Error::Locked`], naming the holder's pid and command. The kernel drops the lock
//! when its holder dies, even by `SIGKILL`, so a killed crawl never leaves a stale lock behind.
//!
//! Integrity: the schema is versioned (`migrate`); every row a snapshot is built from carries
//! a checksum, checked on every read and by [`State::verify`] (with SQLite's integrity check)
//! before publishing; readers open with [`State::open_existing`], which never creates a state.
//! Two records of one file meet under one rule, [`Extracted::rank`].

use std::cmp::Ordering;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use db_format::{DependencyRecord, FileKind, MetadataSource};
use rusqlite::types::{FromSql, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

use crate::extract::Method;
use crate::{Error, Result};

/// The tables of schema version 1 (every state before numbered migrations had these).
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
    name TEXT PRIMARY KEY,
    last_serial INTEGER NOT NULL DEFAULT 0,
    etag TEXT,
    status TEXT NOT NULL,
    error TEXT,
    failures INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deps (
    id INTEGER PRIMARY KEY,
    key BLOB NOT NULL UNIQUE,
    source TEXT NOT NULL,
    detail TEXT,
    requires_python TEXT,
    requires_dist TEXT NOT NULL,
    provides_extra TEXT NOT NULL,
    build_requires TEXT NOT NULL,
    build_backend TEXT
);
CREATE TABLE IF NOT EXISTS files (
    project TEXT NOT NULL,
    filename TEXT NOT NULL,
    version TEXT NOT NULL,
    kind INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 BLOB,
    upload_time INTEGER,
    yanked TEXT,
    requires_python TEXT,
    url TEXT NOT NULL,
    deps INTEGER REFERENCES deps(id),
    method TEXT,
    extractor INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project, filename)
);
CREATE INDEX IF NOT EXISTS files_sha256 ON files(sha256);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0,
    watermark INTEGER
);
CREATE TABLE IF NOT EXISTS run_queue (
    run INTEGER NOT NULL,
    name TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run, name)
);
CREATE INDEX IF NOT EXISTS run_queue_pending ON run_queue(run, done, name);
CREATE TABLE IF NOT EXISTS run_extras (
    run INTEGER NOT NULL,
    name TEXT NOT NULL,
    extra TEXT NOT NULL,
    PRIMARY KEY (run, name, extra)
);
";

/// The schema version this crawler writes (`PRAGMA user_version`); see [`migrate`].
const SCHEMA_VERSION: i64 = 3;

/// A table whose rows feed a snapshot: every row carries a `checksum` over its columns, so a
/// byte damaged on disk is found when the row is read instead of being published.
struct Sealed {
    name: &'static str,
    /// The columns, in checksum order; the first `naming` of them name a row in messages.
    columns: &'static [&'static str],
    naming: usize,
}

const META: Sealed = Sealed {
    name: "meta",
    columns: &["key", "value"],
    naming: 1,
};
const PROJECTS: Sealed = Sealed {
    name: "projects",
    columns: &["name", "last_serial", "etag", "status", "error", "failures"],
    naming: 1,
};
const DEPS: Sealed = Sealed {
    name: "deps",
    columns: &[
        "id",
        "key",
        "source",
        "detail",
        "requires_python",
        "requires_dist",
        "provides_extra",
        "build_requires",
        "build_backend",
    ],
    naming: 1,
};
const FILES: Sealed = Sealed {
    name: "files",
    columns: &[
        "project",
        "filename",
        "version",
        "kind",
        "size",
        "sha256",
        "upload_time",
        "yanked",
        "requires_python",
        "url",
        "deps",
        "method",
        "extractor",
    ],
    naming: 2,
};
const PARTIAL: Sealed = Sealed {
    name: "partial",
    columns: &["project", "sha256", "deps", "method", "extractor"],
    naming: 2,
};
const SEALED: [&Sealed; 4] = [&META, &PROJECTS, &DEPS, &FILES];

/// The checksum of one row: the first 8 bytes of a sha256 over the table name and each value
/// with its type, so neither a changed byte nor a changed type goes unnoticed.
fn row_checksum<'a>(table: &str, values: impl IntoIterator<Item = ValueRef<'a>>) -> i64 {
    let mut hasher = Sha256::new();
    hasher.update(table.as_bytes());
    hasher.update([0]);
    for value in values {
        match value {
            ValueRef::Null => hasher.update([0]),
            ValueRef::Integer(number) => {
                hasher.update([1]);
                hasher.update(number.to_le_bytes());
            }
            ValueRef::Real(number) => {
                hasher.update([2]);
                hasher.update(number.to_bits().to_le_bytes());
            }
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
                hasher.update([if matches!(value, ValueRef::Text(_)) {
                    3
                } else {
                    4
                }]);
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
            }
        }
    }
    let digest = hasher.finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(head)
}

/// Recompute the checksum of the rows of `table` that `filter` (a `WHERE` clause) selects,
/// after they were written.
fn seal(
    conn: &Connection,
    table: &Sealed,
    filter: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<()> {
    let columns = table.columns.join(", ");
    let mut select = conn.prepare_cached(&format!(
        "SELECT rowid, {columns} FROM {} {filter}",
        table.name
    ))?;
    let mut update = conn.prepare_cached(&format!(
        "UPDATE {} SET checksum = ?1 WHERE rowid = ?2",
        table.name
    ))?;
    let mut rows = select.query(params)?;
    let mut sums = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (1..=table.columns.len())
            .map(|at| row.get_ref(at))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        sums.push((row.get::<_, i64>(0)?, row_checksum(table.name, values)));
    }
    drop(rows);
    for (rowid, sum) in sums {
        update.execute(params![sum, rowid])?;
    }
    Ok(())
}

/// Bring a state to [`SCHEMA_VERSION`], one numbered step at a time, in one transaction.
/// 1: the tables (states from before numbered versions may lack `files.extractor`);
/// 2: a `checksum` column on every table a snapshot is built from, filled for existing rows;
/// 3: `partial`, the records of files examined while their project is not committed yet.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let wrap = |source| Error::State {
        path: path.to_path_buf(),
        source,
    };
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(wrap)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version > SCHEMA_VERSION {
        return Err(Error::NoState {
            path: path.to_path_buf(),
            reason: format!(
                "it has schema version {version}, newer than this crawler's {SCHEMA_VERSION}: \
                 use a newer mach-nix-crawler"
            ),
        });
    }
    let tx = conn.transaction().map_err(wrap)?;
    if version < 1 {
        tx.execute_batch(SCHEMA_V1).map_err(wrap)?;
        // The one column added before versions were numbered.
        let has_extractor: bool = tx
            .query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('files') WHERE name = 'extractor'",
                [],
                |row| row.get(0),
            )
            .map_err(wrap)?;
        if !has_extractor {
            tx.execute_batch("ALTER TABLE files ADD COLUMN extractor INTEGER NOT NULL DEFAULT 0")
                .map_err(wrap)?;
        }
    }
    if version < 2 {
        for table in SEALED {
            tx.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN checksum INTEGER",
                table.name
            ))
            .map_err(wrap)?;
            seal(&tx, table, "", []).map_err(wrap)?;
        }
    }
    if version < 3 {
        tx.execute_batch(
            "CREATE TABLE partial (
                project TEXT NOT NULL,
                sha256 BLOB NOT NULL,
                deps INTEGER NOT NULL REFERENCES deps(id),
                method TEXT NOT NULL,
                extractor INTEGER NOT NULL,
                checksum INTEGER,
                PRIMARY KEY (project, sha256)
            )",
        )
        .map_err(wrap)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(wrap)?;
    tx.commit().map_err(wrap)
}

/// A file's dependency record, how it was obtained, and by which extractor version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub record: DependencyRecord,
    /// [`crate::extract::Method::as_str`].
    pub method: String,
    /// [`crate::extract::EXTRACTOR_VERSION`] when it was read: an "unknown" from an older
    /// extractor is read again, a known record is kept.
    pub extractor: u32,
}

impl Extracted {
    /// How much a record says: real dependency data (2), an `unknown` whose reason came from
    /// trying (1), or `sdist-needs-build`, which only says that nobody tried a build yet (0).
    fn tier(&self) -> u8 {
        if self.record.source != MetadataSource::Unknown {
            2
        } else if self.method == Method::SdistNeedsBuild.as_str() {
            0
        } else {
            1
        }
    }

    /// The merge rule, wherever two records of one file (same name, same sha256) meet — in
    /// `merge-state`, a recrawl or a resumed run: the higher [`Extracted::tier`] wins, then
    /// the newer extractor version, then (a deterministic tie-break) the greater method name
    /// and record digest. It is a total order, so the result never depends on which record
    /// came first.
    pub fn rank(&self, other: &Extracted) -> Ordering {
        (
            self.tier(),
            self.extractor,
            &self.method,
            record_key(&self.record),
        )
            .cmp(&(
                other.tier(),
                other.extractor,
                &other.method,
                record_key(&other.record),
            ))
    }
}

/// The better of two optional records of one file (see [`Extracted::rank`]); any record beats
/// none.
pub fn better_record(a: Option<Extracted>, b: Option<Extracted>) -> Option<Extracted> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.rank(&a) == Ordering::Greater {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    }
}

/// One file as the state stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub filename: String,
    /// Normalized when it parses as PEP 440, else as published.
    pub version: String,
    pub kind: FileKind,
    pub size: u64,
    pub sha256: Option<[u8; 32]>,
    pub upload_time: Option<i64>,
    pub yanked: Option<String>,
    pub requires_python: Option<String>,
    pub url: String,
    /// The file's dependency record and how it was obtained (`None`: not examined).
    pub dependencies: Option<Extracted>,
}

/// Everything one crawled project changes, committed at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectCommit {
    pub name: String,
    pub last_serial: u64,
    pub etag: Option<String>,
    pub files: Vec<StoredFile>,
    /// Projects to queue in the same run (`--with-deps`).
    pub enqueue: Vec<String>,
}

/// A project's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    pub name: String,
    pub last_serial: u64,
    pub etag: Option<String>,
    /// `ok`, `failed` or `missing`.
    pub status: String,
    pub error: Option<String>,
}

/// A crawl run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub id: i64,
    /// Whether an unfinished run of the same command was picked up.
    pub resumed: bool,
}

/// A stored record that a merge replaced with a better one (see [`Extracted::rank`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub project: String,
    pub filename: String,
    /// The methods of the old and the new record.
    pub from: String,
    pub to: String,
}

/// What [`State::merge_from`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Projects whose page (files, serial, ETag) was taken from a source.
    pub pages: u64,
    /// Records replaced by a better one.
    pub replaced: Vec<Replaced>,
}

/// The crawl state.
#[derive(Debug)]
pub struct State {
    conn: Connection,
    path: PathBuf,
    /// Held (never read) while the state is open: see the module docs.
    _lock: DirLock,
}

/// An exclusive advisory lock on `DIR/NAME`, released when dropped (or when the process dies).
/// The file holds the holder's pid and command line, for the message the next comer gets.
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    /// Take the lock on `dir/name` without waiting; `what` says what is locked (for messages).
    pub fn acquire(dir: &Path, name: &str, what: &str) -> Result<DirLock> {
        let path = dir.join(name);
        let io = |err: std::io::Error| {
            Error::Io(std::io::Error::new(
                err.kind(),
                format!("{}: {err}", path.display()),
            ))
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(Error::Locked {
                    what: format!("{what} {}", dir.display()),
                    holder: if holder.is_empty() {
                        "another process".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(err)) => return Err(io(err)),
        }
        let command: Vec<String> = std::env::args().collect();
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        // The lock file is readable by others: no credentials from the command line.
        let command = crate::pypi::client::redact_text(&command.join(" "));
        writeln!(file, "pid {} ({command})", std::process::id()).map_err(io)?;
        Ok(DirLock { _file: file })
    }
}

fn json_list(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

fn kind_to_int(kind: FileKind) -> i64 {
    match kind {
        FileKind::Sdist => 0,
        FileKind::Wheel => 1,
        FileKind::Other => 2,
    }
}

/// A damaged cell: which column, and why it cannot be what the state wrote.
type Cell = (&'static str, String);

fn cell<T: FromSql>(row: &rusqlite::Row<'_>, at: usize, column: &'static str) -> Result<T, Cell> {
    row.get_ref(at)
        .map_err(|err| (column, err.to_string()))
        .and_then(|value| T::column_result(value).map_err(|err| (column, err.to_string())))
}

fn list_cell(
    row: &rusqlite::Row<'_>,
    at: usize,
    column: &'static str,
) -> Result<Vec<String>, Cell> {
    let text: String = cell(row, at, column)?;
    serde_json::from_str(&text)
        .map_err(|err| (column, format!("not a JSON list of strings: {err}")))
}

fn unsigned_cell(row: &rusqlite::Row<'_>, at: usize, column: &'static str) -> Result<u64, Cell> {
    let value: i64 = cell(row, at, column)?;
    u64::try_from(value).map_err(|_| (column, format!("negative: {value}")))
}

/// Whether the row's stored `checksum` (at `sum_at`) matches its `columns` (from `first`).
fn check_row(
    row: &rusqlite::Row<'_>,
    table: &Sealed,
    first: usize,
    sum_at: usize,
) -> Result<(), Cell> {
    let values = (first..first + table.columns.len())
        .map(|at| row.get_ref(at))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|err| ("checksum", err.to_string()))?;
    let stored: Option<i64> = cell(row, sum_at, "checksum")?;
    if stored != Some(row_checksum(table.name, values)) {
        return Err((
            "checksum",
            format!("the {} row does not match its checksum", table.name),
        ));
    }
    Ok(())
}

/// Decode the `deps` columns of a joined row (from `at`, `DEPS` columns then `checksum`), which
/// the row names by `id`.
fn decode_record(row: &rusqlite::Row<'_>, at: usize, id: i64) -> Result<DependencyRecord, Cell> {
    let found: Option<i64> = cell(row, at, "deps")?;
    if found != Some(id) {
        return Err((
            "deps",
            format!("names dependency record {id}, which is missing"),
        ));
    }
    check_row(row, &DEPS, at, at + DEPS.columns.len())?;
    let source: String = cell(row, at + 2, "source")?;
    let record = DependencyRecord {
        source: MetadataSource::parse(&source)
            .ok_or(("source", format!("unknown record source {source:?}")))?,
        detail: cell(row, at + 3, "detail")?,
        requires_python: cell(row, at + 4, "requires_python")?,
        requires_dist: list_cell(row, at + 5, "requires_dist")?,
        provides_extra: list_cell(row, at + 6, "provides_extra")?,
        build_requires: list_cell(row, at + 7, "build_requires")?,
        build_backend: cell(row, at + 8, "build_backend")?,
    };
    let key: Vec<u8> = cell(row, at + 1, "key")?;
    if key != record_key(&record) {
        return Err(("key", "does not match the record's fields".into()));
    }
    Ok(record)
}

fn sha256_cell(row: &rusqlite::Row<'_>, at: usize) -> Result<Option<[u8; 32]>, Cell> {
    let sha256: Option<Vec<u8>> = cell(row, at, "sha256")?;
    sha256
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| ("sha256", format!("{} bytes, not 32", bytes.len())))
        })
        .transpose()
}

/// Decode one row of the `files ⟕ deps` join of [`FILE_QUERY`], checking both checksums and
/// every column.
fn decode_file(row: &rusqlite::Row<'_>) -> Result<StoredFile, Cell> {
    check_row(row, &FILES, 0, FILES.columns.len())?;
    let deps_id: Option<i64> = cell(row, 10, "deps")?;
    let dependencies = match deps_id {
        None => None,
        Some(id) => {
            let record = decode_record(row, FILES.columns.len() + 1, id)?;
            let method: Option<String> = cell(row, 11, "method")?;
            Some(Extracted {
                record,
                method: method.ok_or(("method", "missing for an examined file".to_string()))?,
                extractor: cell(row, 12, "extractor")?,
            })
        }
    };
    let sha256 = sha256_cell(row, 5)?;
    let kind = match cell::<i64>(row, 3, "kind")? {
        0 => FileKind::Sdist,
        1 => FileKind::Wheel,
        2 => FileKind::Other,
        other => return Err(("kind", format!("{other} is not 0, 1 or 2"))),
    };
    Ok(StoredFile {
        filename: cell(row, 1, "filename")?,
        version: cell(row, 2, "version")?,
        kind,
        size: unsigned_cell(row, 4, "size")?,
        sha256,
        upload_time: cell(row, 6, "upload_time")?,
        yanked: cell(row, 7, "yanked")?,
        requires_python: cell(row, 8, "requires_python")?,
        url: cell(row, 9, "url")?,
        dependencies,
    })
}

/// The files of one project with their records: `FILES` columns, `checksum`, `DEPS` columns,
/// `checksum`.
const FILE_QUERY: &str = "
SELECT f.project, f.filename, f.version, f.kind, f.size, f.sha256, f.upload_time, f.yanked,
       f.requires_python, f.url, f.deps, f.method, f.extractor, f.checksum,
       d.id, d.key, d.source, d.detail, d.requires_python, d.requires_dist, d.provides_extra,
       d.build_requires, d.build_backend, d.checksum
FROM files f LEFT JOIN deps d ON d.id = f.deps
WHERE f.project = ?1 ORDER BY f.filename";

fn damaged(path: &Path, row: String, (column, reason): Cell) -> Error {
    Error::Damaged {
        path: path.to_path_buf(),
        row,
        column,
        reason,
    }
}

fn read_files(conn: &Connection, path: &Path, project: &str) -> Result<Vec<StoredFile>> {
    let wrap = |source| Error::State {
        path: path.to_path_buf(),
        source,
    };
    let mut statement = conn.prepare_cached(FILE_QUERY).map_err(wrap)?;
    let mut rows = statement.query([project]).map_err(wrap)?;
    let mut files = Vec::new();
    while let Some(row) = rows.next().map_err(wrap)? {
        files.push(decode_file(row).map_err(|cell| {
            let filename = row
                .get::<_, String>(1)
                .unwrap_or_else(|_| "(unreadable name)".into());
            damaged(path, format!("project {project}, file {filename}"), cell)
        })?);
    }
    Ok(files)
}

/// The records of `project`'s files examined in an unfinished crawl, by sha256.
fn read_partial(
    conn: &Connection,
    path: &Path,
    project: &str,
) -> Result<Vec<([u8; 32], Extracted)>> {
    let wrap = |source| Error::State {
        path: path.to_path_buf(),
        source,
    };
    let mut statement = conn
        .prepare_cached(
            "SELECT p.project, p.sha256, p.deps, p.method, p.extractor, p.checksum,
                    d.id, d.key, d.source, d.detail, d.requires_python, d.requires_dist,
                    d.provides_extra, d.build_requires, d.build_backend, d.checksum
             FROM partial p LEFT JOIN deps d ON d.id = p.deps
             WHERE p.project = ?1 ORDER BY p.sha256",
        )
        .map_err(wrap)?;
    let mut rows = statement.query([project]).map_err(wrap)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(wrap)? {
        let decode = || -> Result<([u8; 32], Extracted), Cell> {
            check_row(row, &PARTIAL, 0, PARTIAL.columns.len())?;
            let sha256 = sha256_cell(row, 1)?.ok_or(("sha256", "missing".to_string()))?;
            let record = decode_record(row, PARTIAL.columns.len() + 1, cell(row, 2, "deps")?)?;
            Ok((
                sha256,
                Extracted {
                    record,
                    method: cell(row, 3, "method")?,
                    extractor: cell(row, 4, "extractor")?,
                },
            ))
        };
        records.push(
            decode().map_err(|cell| {
                damaged(path, format!("project {project}, partial record"), cell)
            })?,
        );
    }
    Ok(records)
}

fn read_project(conn: &Connection, path: &Path, name: &str) -> Result<Option<ProjectRow>> {
    let wrap = |source| Error::State {
        path: path.to_path_buf(),
        source,
    };
    let mut statement = conn
        .prepare_cached(
            "SELECT name, last_serial, etag, status, error, failures, checksum
             FROM projects WHERE name = ?1",
        )
        .map_err(wrap)?;
    let mut rows = statement.query([name]).map_err(wrap)?;
    let Some(row) = rows.next().map_err(wrap)? else {
        return Ok(None);
    };
    let decode = || -> Result<ProjectRow, Cell> {
        check_row(row, &PROJECTS, 0, PROJECTS.columns.len())?;
        Ok(ProjectRow {
            name: cell(row, 0, "name")?,
            last_serial: unsigned_cell(row, 1, "last_serial")?,
            etag: cell(row, 2, "etag")?,
            status: cell(row, 3, "status")?,
            error: cell(row, 4, "error")?,
        })
    };
    decode()
        .map(Some)
        .map_err(|cell| damaged(path, format!("project {name}"), cell))
}

/// What `open` does when the state does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    Yes,
    No,
}

impl State {
    /// Open the state in `dir`, creating it if needed: for `crawl` and the `merge-state`
    /// target, the commands that fill a state.
    pub fn open(dir: &Path) -> Result<State> {
        State::open_as(dir, Create::Yes)
    }

    /// Open an existing state for reading it (`publish-db`, `stats`, `merge-state` sources):
    /// a missing directory, a missing, empty or non-SQLite `state.sqlite` is refused rather
    /// than taken for an empty state. [`State::verify`] checks the content.
    pub fn open_existing(dir: &Path) -> Result<State> {
        let path = dir.join("state.sqlite");
        let refuse = |reason: String| Error::NoState {
            path: path.clone(),
            reason,
        };
        if !dir.is_dir() {
            return Err(Error::NoState {
                path: dir.to_path_buf(),
                reason: "no such directory (only `crawl` creates a state)".into(),
            });
        }
        let mut header = [0u8; 16];
        let mut file = std::fs::File::open(&path)
            .map_err(|err| refuse(format!("{err} (only `crawl` creates a state)")))?;
        let read = file
            .read(&mut header)
            .map_err(|err| refuse(err.to_string()))?;
        if read == 0 {
            return Err(refuse("the file is empty".into()));
        }
        if read < header.len() || &header != b"SQLite format 3\0" {
            return Err(refuse("not an SQLite database".into()));
        }
        State::open_as(dir, Create::No)
    }

    fn open_as(dir: &Path, create: Create) -> Result<State> {
        if create == Create::Yes {
            fs_err::create_dir_all(dir)?;
        }
        let lock = DirLock::acquire(dir, "lock", "crawl state")?;
        let path = dir.join("state.sqlite");
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let flags = match create {
            Create::Yes => OpenFlags::default(),
            Create::No => OpenFlags::default().difference(OpenFlags::SQLITE_OPEN_CREATE),
        };
        let mut conn = Connection::open_with_flags(&path, flags).map_err(wrap)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(wrap)?;
        // WAL with synchronous=NORMAL survives a killed process (only a power cut may lose the
        // last transactions, never corrupt the file).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(wrap)?;
        if create == Create::No {
            let is_state: bool = conn
                .query_row(
                    "SELECT COUNT(*) = 4 FROM sqlite_master WHERE type = 'table'
                     AND name IN ('meta', 'projects', 'deps', 'files')",
                    [],
                    |row| row.get(0),
                )
                .map_err(wrap)?;
            if !is_state {
                return Err(Error::NoState {
                    path,
                    reason: "an SQLite database, but not a crawl state".into(),
                });
            }
        }
        migrate(&mut conn, &path)?;
        Ok(State {
            conn,
            path,
            _lock: lock,
        })
    }

    /// Check the whole state before it is published: SQLite's `integrity_check` (pages,
    /// b-trees, indexes) and every row's checksum and columns, so that a damaged byte is an
    /// error naming the row and the column rather than a different snapshot.
    pub fn verify(&self) -> Result<()> {
        let problems: Vec<String> = {
            let mut statement = self
                .conn
                .prepare("PRAGMA integrity_check")
                .map_err(|err| self.err(err))?;
            let rows = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(|err| self.err(err))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|err| self.err(err))?
        };
        if problems != ["ok"] {
            return Err(Error::NoState {
                path: self.path.clone(),
                reason: format!(
                    "SQLite's integrity check failed: {}",
                    problems.into_iter().take(5).collect::<Vec<_>>().join("; ")
                ),
            });
        }
        // Files first, so a damaged record is named by the file that uses it.
        for name in self.project_names()? {
            read_files(&self.conn, &self.path, &name)?;
        }
        for table in [&META, &PROJECTS, &DEPS, &PARTIAL] {
            let columns = table.columns.join(", ");
            let mut statement = self
                .conn
                .prepare(&format!("SELECT {columns}, checksum FROM {}", table.name))
                .map_err(|err| self.err(err))?;
            let mut rows = statement.query([]).map_err(|err| self.err(err))?;
            while let Some(row) = rows.next().map_err(|err| self.err(err))? {
                check_row(row, table, 0, table.columns.len()).map_err(|cell| {
                    let naming = (0..table.naming)
                        .map(|at| match row.get_ref(at) {
                            Ok(ValueRef::Text(text)) => String::from_utf8_lossy(text).into_owned(),
                            Ok(ValueRef::Integer(number)) => number.to_string(),
                            _ => "?".into(),
                        })
                        .collect::<Vec<_>>()
                        .join(" ");
                    damaged(&self.path, format!("{} {naming}", table.name), cell)
                })?;
            }
        }
        if let Some(watermark) = self.meta("watermark")? {
            watermark.parse::<u64>().map_err(|_| {
                damaged(
                    &self.path,
                    "meta watermark".into(),
                    ("value", format!("{watermark:?} is not a serial")),
                )
            })?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::State {
            path: self.path.clone(),
            source,
        }
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|err| self.err(err))
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        set_meta(&self.conn, key, value).map_err(|err| self.err(err))
    }

    pub fn project(&self, name: &str) -> Result<Option<ProjectRow>> {
        read_project(&self.conn, &self.path, name)
    }

    /// Forget every stored ETag, so the next crawl reads every page again (used when the
    /// extractor changed and old "unknown" records deserve another look).
    pub fn forget_etags(&mut self) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        tx.execute("UPDATE projects SET etag = NULL", [])
            .map_err(wrap)?;
        seal(&tx, &PROJECTS, "", []).map_err(wrap)?;
        tx.commit().map_err(wrap)
    }

    /// Every project's stored serial.
    pub fn serials(&self) -> Result<std::collections::HashMap<String, u64>> {
        let mut statement = self
            .conn
            .prepare("SELECT name, last_serial FROM projects")
            .map_err(|err| self.err(err))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
            })
            .map_err(|err| self.err(err))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|err| self.err(err))
    }

    /// Whether an unfinished run of `key` exists (the same command will resume it).
    pub fn pending_run_exists(&self, key: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE key = ?1 AND finished = 0)",
                [key],
                |row| row.get(0),
            )
            .map_err(|err| self.err(err))
    }

    /// Start the run of `key` (a digest of the command), or resume its unfinished one. `seeds`
    /// is only called for a new run; it gives the projects to queue and the watermark the run
    /// sets when it finishes.
    pub fn begin_run(
        &mut self,
        key: &str,
        seeds: impl FnOnce() -> Result<(Vec<String>, Option<u64>)>,
    ) -> Result<Run> {
        let existing: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM runs WHERE key = ?1 AND finished = 0 ORDER BY id DESC LIMIT 1",
                [key],
                |row| row.get(0),
            )
            .optional()
            .map_err(|err| self.err(err))?;
        if let Some(id) = existing {
            return Ok(Run { id, resumed: true });
        }
        let (names, watermark) = seeds()?;
        let path = self.path.clone();
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        tx.execute(
            "INSERT INTO runs (key, watermark) VALUES (?1, ?2)",
            params![key, watermark.map(|serial| serial as i64)],
        )
        .map_err(wrap)?;
        let id = tx.last_insert_rowid();
        enqueue(&tx, id, &names).map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(Run { id, resumed: false })
    }

    /// Projects queued in `run` and not yet done, by name.
    pub fn pending(&self, run: &Run) -> Result<Vec<String>> {
        let mut statement = self
            .conn
            .prepare("SELECT name FROM run_queue WHERE run = ?1 AND done = 0 ORDER BY name")
            .map_err(|err| self.err(err))?;
        let rows = statement
            .query_map([run.id], |row| row.get(0))
            .map_err(|err| self.err(err))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|err| self.err(err))
    }

    /// The extras requested of `name` in `run` (for `--with-deps`), sorted.
    pub fn run_extras(&self, run: &Run, name: &str) -> Result<Vec<String>> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT extra FROM run_extras WHERE run = ?1 AND name = ?2 ORDER BY extra",
            )
            .map_err(|err| self.err(err))?;
        let rows = statement
            .query_map(params![run.id, name], |row| row.get(0))
            .map_err(|err| self.err(err))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|err| self.err(err))
    }

    /// (done, queued) counts of a run.
    pub fn run_counts(&self, run: &Run) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(done), 0), COUNT(*) FROM run_queue WHERE run = ?1",
                [run.id],
                |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
            )
            .map_err(|err| self.err(err))
    }

    /// Mark a run finished; its watermark (if any) becomes the state's.
    pub fn finish_run(&mut self, run: &Run) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        let watermark: Option<i64> = tx
            .query_row(
                "SELECT watermark FROM runs WHERE id = ?1",
                [run.id],
                |row| row.get(0),
            )
            .map_err(wrap)?;
        if let Some(watermark) = watermark {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('watermark', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                [watermark.to_string()],
            )
            .map_err(wrap)?;
            seal(&tx, &META, "WHERE key = 'watermark'", []).map_err(wrap)?;
        }
        tx.execute("UPDATE runs SET finished = 1 WHERE id = ?1", [run.id])
            .map_err(wrap)?;
        tx.execute("DELETE FROM run_queue WHERE run = ?1", [run.id])
            .map_err(wrap)?;
        tx.execute("DELETE FROM run_extras WHERE run = ?1", [run.id])
            .map_err(wrap)?;
        tx.commit().map_err(wrap)
    }

    /// Store a crawled project, queue what it depends on and mark it done, in one transaction.
    /// A file whose stored record is better than the new one (see [`Extracted::rank`]) keeps
    /// it.
    pub fn commit_project(&mut self, run: Option<&Run>, commit: &ProjectCommit) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        write_project(&tx, &path, commit)?;
        if let Some(run) = run {
            enqueue(&tx, run.id, &commit.enqueue).map_err(wrap)?;
            mark_done(&tx, run.id, &commit.name).map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }

    /// Record a project as unchanged (HTTP 304): queue its stored dependencies and mark it done.
    pub fn commit_unchanged(
        &mut self,
        run: &Run,
        name: &str,
        enqueue_names: &[String],
    ) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        enqueue(&tx, run.id, enqueue_names).map_err(wrap)?;
        mark_done(&tx, run.id, name).map_err(wrap)?;
        tx.commit().map_err(wrap)
    }

    /// Record a failure (`failed`, retried on the next run) or a project the index does not
    /// have (`missing`, its files removed), and mark it done in this run.
    pub fn commit_failure(
        &mut self,
        run: &Run,
        name: &str,
        status: &str,
        error: &str,
    ) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        if status == "missing" {
            tx.execute("DELETE FROM files WHERE project = ?1", [name])
                .map_err(wrap)?;
            tx.execute("DELETE FROM partial WHERE project = ?1", [name])
                .map_err(wrap)?;
        }
        tx.execute(
            "INSERT INTO projects (name, status, error, failures) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT(name) DO UPDATE SET status = excluded.status, error = excluded.error,
                 failures = failures + 1, etag = NULL",
            params![name, status, crate::pypi::client::redact_text(error)],
        )
        .map_err(wrap)?;
        seal(&tx, &PROJECTS, "WHERE name = ?1", [name]).map_err(wrap)?;
        mark_done(&tx, run.id, name).map_err(wrap)?;
        tx.commit().map_err(wrap)
    }

    /// Names of the projects that have files, in byte order.
    pub fn project_names(&self) -> Result<Vec<String>> {
        let mut statement = self
            .conn
            .prepare("SELECT DISTINCT project FROM files ORDER BY project")
            .map_err(|err| self.err(err))?;
        let rows = statement
            .query_map([], |row| row.get(0))
            .map_err(|err| self.err(err))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|err| self.err(err))
    }

    /// Projects with the given status, with their errors.
    pub fn projects_with_status(&self, status: &str) -> Result<Vec<(String, Option<String>)>> {
        let mut statement = self
            .conn
            .prepare("SELECT name, error FROM projects WHERE status = ?1 ORDER BY name")
            .map_err(|err| self.err(err))?;
        let rows = statement
            .query_map([status], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|err| self.err(err))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|err| self.err(err))
    }

    /// Keep the records of files of `project` examined so far, before the project is
    /// committed: a crawl killed in the middle of a project with thousands of files resumes
    /// from them instead of from zero. Committing the project drops them.
    pub fn save_partial(&mut self, project: &str, records: &[([u8; 32], Extracted)]) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        for (sha256, extracted) in records {
            let deps = insert_record(&tx, &extracted.record).map_err(wrap)?;
            tx.execute(
                "INSERT OR REPLACE INTO partial (project, sha256, deps, method, extractor)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    project,
                    sha256.as_slice(),
                    deps,
                    extracted.method,
                    extracted.extractor
                ],
            )
            .map_err(wrap)?;
            seal(
                &tx,
                &PARTIAL,
                "WHERE project = ?1 AND sha256 = ?2",
                params![project, sha256.as_slice()],
            )
            .map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }

    /// The records [`State::save_partial`] kept for `project`, by sha256.
    pub fn partial(&self, project: &str) -> Result<Vec<([u8; 32], Extracted)>> {
        read_partial(&self.conn, &self.path, project)
    }

    /// A project's stored files, by file name.
    pub fn files(&self, project: &str) -> Result<Vec<StoredFile>> {
        read_files(&self.conn, &self.path, project)
    }

    /// The highest serial the state has seen: its watermark, or the highest project serial.
    pub fn serial(&self) -> Result<u64> {
        let projects: i64 = self
            .conn
            .query_row(
                "SELECT COALESCE(MAX(last_serial), 0) FROM projects",
                [],
                |row| row.get(0),
            )
            .map_err(|err| self.err(err))?;
        let watermark = match self.meta("watermark")? {
            Some(value) => value.parse::<u64>().map_err(|_| {
                damaged(
                    &self.path,
                    "meta watermark".into(),
                    ("value", format!("{value:?} is not a serial")),
                )
            })?,
            None => 0,
        };
        Ok(watermark.max(u64::try_from(projects).unwrap_or(0)))
    }

    /// The newest upload time of any stored file.
    pub fn newest_upload(&self) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT MAX(upload_time) FROM files", [], |row| row.get(0))
            .map_err(|err| self.err(err))
    }

    /// Merge other states (shards, or a crawl with other options) into this one, atomically:
    /// every source is checked first, then everything is written in one transaction, so a
    /// source that does not fit leaves this state as it was. Per project the page (its files,
    /// serial and ETag) with the newer serial wins (equal serials: the greater page digest, so
    /// the order of sources does not matter); per file the better record of all states wins
    /// ([`Extracted::rank`]).
    pub fn merge_from(&mut self, sources: &[State]) -> Result<MergeReport> {
        let own_as_of = self.meta("as_of")?;
        let mut agreed = own_as_of.clone();
        for source in sources {
            let theirs = source.meta("as_of")?;
            match (&agreed, &theirs) {
                (Some(mine), Some(theirs)) if mine != theirs => {
                    return Err(Error::Usage(format!(
                        "cannot merge {}: it was crawled with --as-of {theirs}, while {} holds \
                         --as-of {mine}; nothing was merged",
                        source.path.display(),
                        if own_as_of.as_ref() == Some(mine) {
                            self.path.display().to_string()
                        } else {
                            "an earlier --from".to_string()
                        }
                    )));
                }
                (None, Some(_)) => agreed = theirs,
                _ => {}
            }
            source.verify()?;
        }
        let mut watermark = self.serial()?;
        for source in sources {
            watermark = watermark.max(source.serial()?);
        }
        let path = self.path.clone();
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        let mut report = MergeReport::default();
        for source in sources {
            for name in source
                .serials()?
                .into_keys()
                .collect::<std::collections::BTreeSet<_>>()
            {
                let Some(row) = source.project(&name)? else {
                    continue;
                };
                let theirs = ProjectCommit {
                    name: name.clone(),
                    last_serial: row.last_serial,
                    etag: row.etag,
                    files: source.files(&name)?,
                    enqueue: Vec::new(),
                };
                let mine = match read_project(&tx, &path, &name)? {
                    Some(row) => Some(ProjectCommit {
                        name: name.clone(),
                        last_serial: row.last_serial,
                        etag: row.etag,
                        files: read_files(&tx, &path, &name)?,
                        enqueue: Vec::new(),
                    }),
                    None => None,
                };
                let (mut chosen, other, from_source) = match mine {
                    None => (theirs, None, true),
                    Some(mine) if newer_page(&theirs, &mine) => (theirs, Some(mine), true),
                    Some(mine) => (mine, Some(theirs), false),
                };
                if let Some(other) = &other {
                    for file in &mut chosen.files {
                        if let Some(same) = other
                            .files
                            .iter()
                            .find(|o| o.filename == file.filename && o.sha256 == file.sha256)
                        {
                            file.dependencies =
                                better_record(file.dependencies.take(), same.dependencies.clone());
                        }
                    }
                }
                if from_source {
                    report.pages += 1;
                }
                report.replaced.extend(write_project(&tx, &path, &chosen)?);
            }
        }
        match agreed {
            Some(as_of) if own_as_of.is_none() => set_meta(&tx, "as_of", &as_of),
            _ => Ok(()),
        }
        .map_err(wrap)?;
        set_meta(&tx, "watermark", &watermark.to_string()).map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(report)
    }

    /// Counts of files by (kind, method, record source), for reports.
    pub fn method_counts(&self) -> Result<Vec<(FileKind, String, String, u64)>> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT f.kind, COALESCE(f.method, ''), COALESCE(d.source, ''), COUNT(*)
                 FROM files f LEFT JOIN deps d ON d.id = f.deps
                 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            )
            .map_err(|err| self.err(err))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)? as u64,
                ))
            })
            .map_err(|err| self.err(err))?;
        let rows: Vec<(i64, String, String, u64)> = rows
            .collect::<rusqlite::Result<_>>()
            .map_err(|err| self.err(err))?;
        rows.into_iter()
            .map(|(kind, method, source, count)| {
                let kind = match kind {
                    0 => FileKind::Sdist,
                    1 => FileKind::Wheel,
                    2 => FileKind::Other,
                    other => {
                        return Err(damaged(
                            &self.path,
                            "files".into(),
                            ("kind", format!("{other} is not 0, 1 or 2")),
                        ));
                    }
                };
                Ok((kind, method, source, count))
            })
            .collect()
    }
}

/// Whether page `a` wins over page `b` of one project: the newer serial, or at equal serials
/// the greater digest of the page (a deterministic choice that does not depend on order).
fn newer_page(a: &ProjectCommit, b: &ProjectCommit) -> bool {
    let digest = |page: &ProjectCommit| {
        let files: Vec<_> = page
            .files
            .iter()
            .map(|file| {
                (
                    &file.filename,
                    &file.version,
                    kind_to_int(file.kind),
                    file.size,
                    file.sha256,
                    file.upload_time,
                    &file.yanked,
                    &file.requires_python,
                    &file.url,
                )
            })
            .collect();
        Sha256::digest(format!("{:?}{files:?}", page.etag).as_bytes())
    };
    (a.last_serial, digest(a)) > (b.last_serial, digest(b))
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    seal(conn, &META, "WHERE key = ?1", [key])
}

/// Write a project's page and files, each file keeping the better of its stored and its new
/// record ([`Extracted::rank`]); returns the stored records that were replaced by better
/// ones.
fn write_project(
    tx: &Transaction<'_>,
    path: &Path,
    commit: &ProjectCommit,
) -> Result<Vec<Replaced>> {
    let wrap = |source| Error::State {
        path: path.to_path_buf(),
        source,
    };
    let stored = read_files(tx, path, &commit.name)?;
    let mut replaced = Vec::new();
    tx.execute("DELETE FROM files WHERE project = ?1", [&commit.name])
        .map_err(wrap)?;
    tx.execute("DELETE FROM partial WHERE project = ?1", [&commit.name])
        .map_err(wrap)?;
    for file in &commit.files {
        let old = stored
            .iter()
            .find(|old| old.filename == file.filename && old.sha256 == file.sha256)
            .and_then(|old| old.dependencies.clone());
        let dependencies = better_record(file.dependencies.clone(), old.clone());
        if let Some(old) = &old
            && dependencies.as_ref() != Some(old)
        {
            replaced.push(Replaced {
                project: commit.name.clone(),
                filename: file.filename.clone(),
                from: old.method.clone(),
                to: dependencies
                    .as_ref()
                    .map_or_else(String::new, |new| new.method.clone()),
            });
        }
        let deps = match &dependencies {
            Some(extracted) => Some(insert_record(tx, &extracted.record).map_err(wrap)?),
            None => None,
        };
        tx.execute(
            "INSERT INTO files (project, filename, version, kind, size, sha256, upload_time,
                                yanked, requires_python, url, deps, method, extractor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                commit.name,
                file.filename,
                file.version,
                kind_to_int(file.kind),
                file.size as i64,
                file.sha256.as_ref().map(|hash| hash.to_vec()),
                file.upload_time,
                file.yanked,
                file.requires_python,
                file.url,
                deps,
                dependencies
                    .as_ref()
                    .map(|extracted| extracted.method.clone()),
                dependencies
                    .as_ref()
                    .map_or(0, |extracted| extracted.extractor),
            ],
        )
        .map_err(wrap)?;
    }
    seal(tx, &FILES, "WHERE project = ?1", [&commit.name]).map_err(wrap)?;
    tx.execute(
        "INSERT INTO projects (name, last_serial, etag, status, error, failures)
         VALUES (?1, ?2, ?3, 'ok', NULL, 0)
         ON CONFLICT(name) DO UPDATE SET last_serial = excluded.last_serial,
             etag = excluded.etag, status = 'ok', error = NULL, failures = 0",
        params![commit.name, commit.last_serial as i64, commit.etag],
    )
    .map_err(wrap)?;
    seal(tx, &PROJECTS, "WHERE name = ?1", [&commit.name]).map_err(wrap)?;
    Ok(replaced)
}

/// Queue `keys` (see [`crate::closure`]: `name` or `name[extra]`). An extra first requested
/// after its project was done in this run queues the project again, so its dependencies under
/// that extra are followed too.
fn enqueue(tx: &Transaction<'_>, run: i64, keys: &[String]) -> rusqlite::Result<()> {
    let mut queue =
        tx.prepare_cached("INSERT OR IGNORE INTO run_queue (run, name) VALUES (?1, ?2)")?;
    let mut extras = tx.prepare_cached(
        "INSERT OR IGNORE INTO run_extras (run, name, extra) VALUES (?1, ?2, ?3)",
    )?;
    let mut requeue = tx.prepare_cached(
        "UPDATE run_queue SET done = 0 WHERE run = ?1 AND name = ?2 AND done = 1",
    )?;
    for key in keys {
        let (name, extra) = crate::closure::split_key(key);
        queue.execute(params![run, name])?;
        if let Some(extra) = extra
            && extras.execute(params![run, name, extra])? == 1
        {
            requeue.execute(params![run, name])?;
        }
    }
    Ok(())
}

fn mark_done(tx: &Transaction<'_>, run: i64, name: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO run_queue (run, name, done) VALUES (?1, ?2, 1)
         ON CONFLICT(run, name) DO UPDATE SET done = 1",
        params![run, name],
    )
    .map(drop)
}

/// The key of a dependency record in `deps`: a digest of its fields (equal records share a
/// row).
fn record_key(record: &DependencyRecord) -> Vec<u8> {
    let fields = (
        record.source.as_str(),
        &record.detail,
        &record.requires_python,
        json_list(&record.requires_dist),
        json_list(&record.provides_extra),
        json_list(&record.build_requires),
        &record.build_backend,
    );
    Sha256::digest(format!("{fields:?}").as_bytes()).to_vec()
}

fn insert_record(tx: &Transaction<'_>, record: &DependencyRecord) -> rusqlite::Result<i64> {
    let key = record_key(record);
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO deps (key, source, detail, requires_python, requires_dist,
                                     provides_extra, build_requires, build_backend)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            key,
            record.source.as_str(),
            record.detail,
            record.requires_python,
            json_list(&record.requires_dist),
            json_list(&record.provides_extra),
            json_list(&record.build_requires),
            record.build_backend,
        ],
    )?;
    let id = tx.query_row("SELECT id FROM deps WHERE key = ?1", [&key], |row| {
        row.get(0)
    })?;
    if inserted == 1 {
        seal(tx, &DEPS, "WHERE id = ?1", [id])?;
    }
    Ok(id)
}

/// A wheel as the state stores it, with its METADATA requirements: the one file builder the
/// crawler's unit tests share (override fields with struct update syntax).
#[cfg(test)]
pub(crate) fn test_file(name: &str, requires: &[&str]) -> StoredFile {
    StoredFile {
        filename: name.into(),
        version: "1.0".into(),
        kind: FileKind::of(name),
        size: 10,
        sha256: Some([7; 32]),
        upload_time: Some(100),
        yanked: None,
        requires_python: None,
        url: format!("https://files.example/{name}"),
        dependencies: Some(Extracted {
            record: DependencyRecord {
                source: MetadataSource::WheelMetadata,
                requires_dist: requires.iter().map(|r| r.to_string()).collect(),
                ..DependencyRecord::default()
            },
            method: "pep658".into(),
            extractor: 1,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::state::test_file as file;

    fn commit(name: &str, serial: u64, files: Vec<StoredFile>) -> ProjectCommit {
        ProjectCommit {
            name: name.into(),
            last_serial: serial,
            etag: Some(format!("\"{name}-{serial}\"")),
            files,
            enqueue: Vec::new(),
        }
    }

    fn sdist(name: &str, method: Method, source: MetadataSource, requires: &[&str]) -> StoredFile {
        let mut stored = file(name, requires);
        stored.kind = FileKind::Sdist;
        stored.sha256 = Some(Sha256::digest(name.as_bytes()).into());
        stored.dependencies = Some(Extracted {
            record: DependencyRecord {
                source,
                detail: (source == MetadataSource::Unknown).then(|| "needs a build".into()),
                requires_dist: requires.iter().map(|r| r.to_string()).collect(),
                ..DependencyRecord::default()
            },
            method: method.as_str().into(),
            extractor: 3,
        });
        stored
    }

    /// A small state with every kind of row a snapshot is built from.
    fn dense_state(dir: &Path) {
        let mut state = State::open(dir).expect("opens");
        state.set_meta("as_of", "1700000000").expect("meta");
        state.set_meta("watermark", "77").expect("meta");
        for (at, name) in ["alpha", "beta-pkg", "gamma"].into_iter().enumerate() {
            let files = vec![
                StoredFile {
                    yanked: Some("broken".into()),
                    requires_python: Some(">=3.8".into()),
                    upload_time: Some(1_600_000_000 + at as i64),
                    ..file(
                        &format!("{name}-1.0-py3-none-any.whl"),
                        &["six>=1", "attrs ; extra == 'x'"],
                    )
                },
                sdist(
                    &format!("{name}-1.0.tar.gz"),
                    Method::Sdist,
                    MetadataSource::SdistPkgInfo,
                    &["requests[socks]>=2.0"],
                ),
                sdist(
                    &format!("{name}-0.9.tar.gz"),
                    Method::SdistNeedsBuild,
                    MetadataSource::Unknown,
                    &[],
                ),
                StoredFile {
                    dependencies: None,
                    ..file(
                        &format!("{name}-0.9-cp312-cp312-manylinux_2_17_x86_64.whl"),
                        &[],
                    )
                },
            ];
            state
                .commit_project(None, &commit(name, 10 + at as u64, files))
                .expect("commits");
        }
    }

    fn publish_sha(dir: &Path, out: &Path) -> Result<String> {
        let state = State::open_existing(dir)?;
        state.verify()?;
        Ok(crate::publish::publish(&state, out)?.entry.sha256)
    }

    // `publish-db --state /nonexistent` (or a 0-byte state.sqlite) created an empty state and
    // published a 0-project snapshot.
    #[test]
    fn only_crawl_creates_a_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nonexistent");
        let err = State::open_existing(&missing).expect_err("missing");
        assert!(err.to_string().contains("no such directory"), "{err}");
        assert!(!missing.exists(), "nothing is created");
        let empty = dir.path().join("empty");
        fs_err::create_dir(&empty).expect("mkdir");
        let err = State::open_existing(&empty).expect_err("no state.sqlite");
        assert!(
            err.to_string().contains("only `crawl` creates a state"),
            "{err}"
        );
        assert!(!empty.join("state.sqlite").exists());
        fs_err::write(empty.join("state.sqlite"), b"").expect("writes");
        let err = State::open_existing(&empty).expect_err("0 bytes");
        assert!(err.to_string().contains("the file is empty"), "{err}");
        fs_err::write(empty.join("state.sqlite"), b"not a database at all").expect("writes");
        let err = State::open_existing(&empty).expect_err("text");
        assert!(err.to_string().contains("not an SQLite database"), "{err}");
        let other = dir.path().join("other");
        fs_err::create_dir(&other).expect("mkdir");
        Connection::open(other.join("state.sqlite"))
            .and_then(|db| db.execute_batch("CREATE TABLE t (x)"))
            .expect("foreign database");
        let err = State::open_existing(&other).expect_err("foreign");
        assert!(err.to_string().contains("not a crawl state"), "{err}");
        let good = dir.path().join("good");
        dense_state(&good);
        State::open_existing(&good)
            .expect("opens")
            .verify()
            .expect("verifies");
    }

    // A damaged cell was decoded leniently: a bad sha256 became "no hash", bad JSON "no
    // dependencies", an unknown kind "other".
    #[test]
    fn a_damaged_cell_is_an_error_naming_project_file_and_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        dense_state(dir.path());
        for (update, column) in [
            (
                "UPDATE deps SET requires_dist = '[\"six>=1\"' WHERE requires_dist LIKE '%six%'",
                "checksum",
            ),
            (
                "UPDATE files SET url = 'https://files.example/alph' WHERE filename = 'alpha-1.0-py3-none-any.whl'",
                "checksum",
            ),
            (
                "UPDATE files SET kind = 7 WHERE filename = 'alpha-1.0-py3-none-any.whl'",
                "checksum",
            ),
        ] {
            let copy = tempfile::tempdir().expect("tempdir");
            fs_err::copy(
                dir.path().join("state.sqlite"),
                copy.path().join("state.sqlite"),
            )
            .expect("copies");
            Connection::open(copy.path().join("state.sqlite"))
                .and_then(|db| db.execute_batch(update))
                .expect("damages");
            let state = State::open_existing(copy.path()).expect("opens");
            let err = state.verify().expect_err(update);
            let text = err.to_string();
            assert!(text.contains(&format!("column {column}")), "{text}");
            assert!(
                text.contains("project alpha, file alpha-1.0-py3-none-any.whl"),
                "{text}"
            );
        }
        // A cell whose checksum was recomputed by hand is still decoded strictly.
        let state = State::open(dir.path()).expect("opens");
        state
            .conn
            .execute_batch("UPDATE files SET sha256 = x'0102' WHERE filename = 'gamma-1.0.tar.gz'")
            .expect("damages");
        seal(&state.conn, &FILES, "", []).expect("reseals");
        let err = state.files("gamma").expect_err("short sha256");
        assert!(
            err.to_string()
                .contains("(project gamma, file gamma-1.0.tar.gz), column sha256: 2 bytes, not 32"),
            "{err}"
        );
    }

    // Flipped bytes in state.sqlite published a different snapshot with exit 0 (a file URL
    // lost a character): every flip must fail with an error or change nothing.
    #[test]
    fn flipped_bytes_in_a_state_never_publish_a_different_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clean = dir.path().join("clean");
        dense_state(&clean);
        let reference = publish_sha(&clean, &dir.path().join("out")).expect("publishes");
        let bytes = fs_err::read(clean.join("state.sqlite")).expect("reads");
        let samples: usize = std::env::var("STATE_FLIPS")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(300);
        let step = (bytes.len() / samples).max(1);
        let (mut refused, mut same) = (0, 0);
        for (n, at) in (0..bytes.len()).step_by(step).enumerate() {
            // Vary the position within a page and the flipped bit.
            let at = (at + n * 13) % bytes.len();
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 << (n % 8);
            let copy = tempfile::tempdir().expect("tempdir");
            fs_err::write(copy.path().join("state.sqlite"), &damaged).expect("writes");
            match publish_sha(copy.path(), &copy.path().join("out")) {
                Err(_) => refused += 1,
                Ok(sha) => {
                    assert_eq!(sha, reference, "flipping byte {at} changed the snapshot");
                    same += 1;
                }
            }
        }
        assert!(
            refused > 0 && same > 0,
            "{refused} refused, {same} unchanged"
        );
    }

    /// The pycrypto case: the sdist `sdist-needs-build` in one state, `build` in the other.
    fn pycrypto(method: Method, source: MetadataSource) -> ProjectCommit {
        commit(
            "pycrypto",
            5,
            vec![sdist("pycrypto-2.6.1.tar.gz", method, source, &[])],
        )
    }

    // merge-state kept `sdist-needs-build` over the merged-in `build` record, and `gen
    // pycrypto==2.6.1` then found no dependency metadata.
    #[test]
    fn a_built_record_beats_sdist_needs_build_in_either_merge_order() {
        for built_first in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let (a, b) = (dir.path().join("a"), dir.path().join("b"));
            let needs = pycrypto(Method::SdistNeedsBuild, MetadataSource::Unknown);
            let built = pycrypto(Method::Build, MetadataSource::Build);
            let (first, second) = if built_first {
                (&built, &needs)
            } else {
                (&needs, &built)
            };
            State::open(&a)
                .expect("a")
                .commit_project(None, first)
                .expect("a");
            State::open(&b)
                .expect("b")
                .commit_project(None, second)
                .expect("b");
            let mut target = State::open(&a).expect("a");
            let report = target
                .merge_from(&[State::open_existing(&b).expect("b")])
                .expect("merges");
            let files = target.files("pycrypto").expect("files");
            let kept = files[0].dependencies.as_ref().expect("examined");
            assert_eq!(kept.method, "build", "built first: {built_first}");
            assert_eq!(kept.record.source, MetadataSource::Build);
            let expected = if built_first {
                vec![]
            } else {
                vec![Replaced {
                    project: "pycrypto".into(),
                    filename: "pycrypto-2.6.1.tar.gz".into(),
                    from: "sdist-needs-build".into(),
                    to: "build".into(),
                }]
            };
            assert_eq!(report.replaced, expected);
        }
    }

    // With mismatched --as-of, the first --from was merged into the target and then the
    // second failed: a partial merge.
    #[test]
    fn a_merge_whose_second_source_does_not_fit_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (target, s1, s2) = (
            dir.path().join("t"),
            dir.path().join("s1"),
            dir.path().join("s2"),
        );
        let mut state = State::open(&target).expect("t");
        state.set_meta("as_of", "100").expect("meta");
        drop(state);
        let mut one = State::open(&s1).expect("s1");
        one.set_meta("as_of", "100").expect("meta");
        one.commit_project(
            None,
            &commit("six", 3, vec![file("six-1.0-py3-none-any.whl", &[])]),
        )
        .expect("commits");
        drop(one);
        let mut two = State::open(&s2).expect("s2");
        two.set_meta("as_of", "200").expect("meta");
        drop(two);
        let before = fs_err::read(target.join("state.sqlite")).expect("reads");
        let mut state = State::open(&target).expect("t");
        let sources = [
            State::open_existing(&s1).expect("s1"),
            State::open_existing(&s2).expect("s2"),
        ];
        let err = state.merge_from(&sources).expect_err("as-of differs");
        assert!(err.to_string().contains("nothing was merged"), "{err}");
        assert!(state.project_names().expect("names").is_empty());
        assert_eq!(state.meta("watermark").expect("meta"), None);
        drop(state);
        assert_eq!(
            fs_err::read(target.join("state.sqlite")).expect("reads"),
            before
        );
    }

    fn arb_extracted() -> impl proptest::strategy::Strategy<Value = Option<Extracted>> {
        use proptest::prelude::*;
        let method = prop_oneof![
            Just((Method::Pep658, MetadataSource::WheelMetadata)),
            Just((Method::Build, MetadataSource::Build)),
            Just((Method::SdistNeedsBuild, MetadataSource::Unknown)),
            Just((Method::Failed, MetadataSource::Unknown)),
        ];
        proptest::option::of((method, 1u32..3, 0usize..3).prop_map(
            |((method, source), extractor, dep)| {
                Extracted {
                    record: DependencyRecord {
                        source,
                        requires_dist: ["six", "attrs", "idna"][..dep]
                            .iter()
                            .map(|d| d.to_string())
                            .collect(),
                        ..DependencyRecord::default()
                    },
                    method: method.as_str().into(),
                    extractor,
                }
            },
        ))
    }

    /// Two crawls of some projects: per project each side's serial and, per file, each side's
    /// record. Equal serials mean equal pages, as on a real index.
    type Sides = Vec<(u64, u64, Vec<(Option<Extracted>, Option<Extracted>)>)>;

    fn build(dir: &Path, sides: &Sides, pick: impl Fn(u64, u64) -> Option<bool>, oracle: bool) {
        let mut state = State::open(dir).expect("opens");
        for (at, (serial_a, serial_b, records)) in sides.iter().enumerate() {
            let name = format!("p{at}");
            // Side A has every file; side B drops the last one when its page is newer.
            let Some(use_a) = pick(*serial_a, *serial_b) else {
                continue;
            };
            let serial = if use_a { *serial_a } else { *serial_b };
            let count = if !use_a && serial_b > serial_a {
                records.len().saturating_sub(1)
            } else {
                records.len()
            };
            let files = records[..count]
                .iter()
                .enumerate()
                .map(|(n, (a, b))| StoredFile {
                    dependencies: if oracle {
                        better_record(a.clone(), b.clone())
                    } else if use_a {
                        a.clone()
                    } else {
                        b.clone()
                    },
                    ..file(&format!("{name}-{n}.0-py3-none-any.whl"), &[])
                })
                .collect();
            state
                .commit_project(None, &commit(&name, serial, files))
                .expect("commits");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]
        // merge(A, B) and merge(B, A) publish the same bytes, equal to one state holding the
        // page of the newer serial and the better record of each file.
        #[test]
        fn merging_is_symmetric_and_keeps_the_better_record(
            sides in proptest::collection::vec(
                (1u64..4, 1u64..4, proptest::collection::vec((arb_extracted(), arb_extracted()), 1..4)),
                1..5,
            )
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = |name: &str| dir.path().join(name);
            build(&path("a"), &sides, |_, _| Some(true), false);
            build(&path("b"), &sides, |_, _| Some(false), false);
            build(&path("c"), &sides, |a, b| Some(a >= b), true);
            for (target, source) in [("a", "b"), ("b", "a")] {
                let mut state = State::open(&path(target)).expect("opens");
                state.merge_from(&[State::open_existing(&path(source)).expect("opens")]).expect("merges");
            }
            let mut oracle = State::open(&path("c")).expect("opens");
            let top = sides.iter().map(|(a, b, _)| *a.max(b)).max().unwrap_or(0);
            oracle.set_meta("watermark", &top.to_string()).expect("meta");
            drop(oracle);
            let a = publish_sha(&path("a"), &path("out-a")).expect("publishes");
            let b = publish_sha(&path("b"), &path("out-b")).expect("publishes");
            let c = publish_sha(&path("c"), &path("out-c")).expect("publishes");
            proptest::prop_assert_eq!(&a, &b);
            proptest::prop_assert_eq!(&a, &c);
        }
    }

    #[test]
    fn an_extra_requested_after_its_project_was_done_queues_it_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = State::open(dir.path()).expect("opens");
        let run = state
            .begin_run("x", || Ok((vec!["a".into(), "b[fast]".into()], None)))
            .expect("begins");
        assert_eq!(state.pending(&run).expect("pending"), ["a", "b"]);
        assert_eq!(state.run_extras(&run, "b").expect("extras"), ["fast"]);
        let commit = |name: &str, enqueue: &[&str]| ProjectCommit {
            name: name.into(),
            last_serial: 1,
            etag: None,
            files: vec![file(&format!("{name}-1.0-py3-none-any.whl"), &[])],
            enqueue: enqueue.iter().map(|key| key.to_string()).collect(),
        };
        state
            .commit_project(Some(&run), &commit("a", &[]))
            .expect("commits");
        state
            .commit_project(Some(&run), &commit("b", &[]))
            .expect("commits");
        assert!(state.pending(&run).expect("pending").is_empty());
        // `b[fast]` is known already: nothing to do; `a[slow]` is new: `a` is crawled again.
        state
            .commit_project(Some(&run), &commit("c", &["a[slow]", "b[fast]"]))
            .expect("commits");
        assert_eq!(state.pending(&run).expect("pending"), ["a"]);
        assert_eq!(state.run_extras(&run, "a").expect("extras"), ["slow"]);
        state.finish_run(&run).expect("finishes");
        assert!(state.run_extras(&run, "a").expect("extras").is_empty());
    }

    #[test]
    fn runs_resume_and_commits_are_atomic_units() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = State::open(dir.path()).expect("opens");
        let run = state
            .begin_run("k", || Ok((vec!["a".into(), "b".into()], Some(9))))
            .expect("begins");
        assert!(!run.resumed);
        state
            .commit_project(
                Some(&run),
                &ProjectCommit {
                    name: "a".into(),
                    last_serial: 5,
                    etag: Some("\"e\"".into()),
                    files: vec![file("a-1.0-py3-none-any.whl", &["c>=1"])],
                    enqueue: vec!["c".into()],
                },
            )
            .expect("commits");
        drop(state);
        let mut state = State::open(dir.path()).expect("reopens");
        let resumed = state
            .begin_run("k", || panic!("a resumed run must not recompute its seeds"))
            .expect("resumes");
        assert_eq!(
            resumed,
            Run {
                id: run.id,
                resumed: true
            }
        );
        assert_eq!(state.pending(&resumed).expect("pending"), ["b", "c"]);
        let files = state.files("a").expect("files");
        assert_eq!(files, [file("a-1.0-py3-none-any.whl", &["c>=1"])]);
        state
            .commit_failure(&resumed, "b", "failed", "boom")
            .expect("records");
        state.commit_unchanged(&resumed, "c", &[]).expect("records");
        assert!(state.pending(&resumed).expect("pending").is_empty());
        state.finish_run(&resumed).expect("finishes");
        assert_eq!(state.serial().expect("serial"), 9);
        assert_eq!(
            state.project("b").expect("row").expect("exists").status,
            "failed"
        );
        let next = state
            .begin_run("k", || Ok((vec![], None)))
            .expect("new run");
        assert!(!next.resumed);
    }
}
