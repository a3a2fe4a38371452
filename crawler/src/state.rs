//! The crawl state: one SQLite file (`DIR/state.sqlite`) holding every project's files and the
//! dependency record of each file, plus the queue of the current crawl run.
//!
//! Crash safety: everything one project changes (its files, their records, its serial and ETag,
//! the run queue entries it adds and its own "done" mark) is written in one transaction, so a
//! `SIGKILL` at any moment leaves either all of it or none of it. A run is identified by the
//! command that started it ([`State::begin_run`]); the same command after a crash resumes the
//! unfinished run and crawls only what is still queued, so the result equals an uninterrupted
//! run's.
//!
//! Exclusion: [`State::open`] holds an advisory lock on `DIR/lock` (`flock`, through std's
//! `File::try_lock`, so no extra crate) for as long as the `State` lives, so two crawls — or a
//! crawl and a `publish-db` or `merge-state` — never use one state at once; the second fails at
//! once with [`Error::Locked`], naming the holder's pid and command. The kernel drops the lock
//! when its holder dies, even by `SIGKILL`, so a killed crawl never leaves a stale lock behind.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use db_format::{DependencyRecord, FileKind, MetadataSource};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

const SCHEMA: &str = "
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
        writeln!(file, "pid {} ({})", std::process::id(), command.join(" ")).map_err(io)?;
        Ok(DirLock { _file: file })
    }
}

fn json_list(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn kind_to_int(kind: FileKind) -> i64 {
    match kind {
        FileKind::Sdist => 0,
        FileKind::Wheel => 1,
        FileKind::Other => 2,
    }
}

fn kind_from_int(value: i64) -> FileKind {
    match value {
        0 => FileKind::Sdist,
        1 => FileKind::Wheel,
        _ => FileKind::Other,
    }
}

impl State {
    /// Open (or create) the state in `dir`.
    pub fn open(dir: &Path) -> Result<State> {
        fs_err::create_dir_all(dir)?;
        let lock = DirLock::acquire(dir, "lock", "crawl state")?;
        let path = dir.join("state.sqlite");
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(wrap)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(wrap)?;
        // WAL with synchronous=NORMAL survives a killed process (only a power cut may lose the
        // last transactions, never corrupt the file).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(wrap)?;
        conn.execute_batch(SCHEMA).map_err(wrap)?;
        // States written before the `extractor` column: add it (0 = older than any version).
        let has_extractor: bool = conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('files') WHERE name = 'extractor'",
                [],
                |row| row.get(0),
            )
            .map_err(wrap)?;
        if !has_extractor {
            conn.execute_batch("ALTER TABLE files ADD COLUMN extractor INTEGER NOT NULL DEFAULT 0")
                .map_err(wrap)?;
        }
        Ok(State {
            conn,
            path,
            _lock: lock,
        })
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
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(drop)
            .map_err(|err| self.err(err))
    }

    pub fn project(&self, name: &str) -> Result<Option<ProjectRow>> {
        self.conn
            .query_row(
                "SELECT name, last_serial, etag, status, error FROM projects WHERE name = ?1",
                [name],
                |row| {
                    Ok(ProjectRow {
                        name: row.get(0)?,
                        last_serial: row.get::<_, i64>(1)? as u64,
                        etag: row.get(2)?,
                        status: row.get(3)?,
                        error: row.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(|err| self.err(err))
    }

    /// Forget every stored ETag, so the next crawl reads every page again (used when the
    /// extractor changed and old "unknown" records deserve another look).
    pub fn forget_etags(&mut self) -> Result<()> {
        self.conn
            .execute("UPDATE projects SET etag = NULL", [])
            .map(drop)
            .map_err(|err| self.err(err))
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
    pub fn commit_project(&mut self, run: Option<&Run>, commit: &ProjectCommit) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| Error::State {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        tx.execute("DELETE FROM files WHERE project = ?1", [&commit.name])
            .map_err(wrap)?;
        for file in &commit.files {
            let deps = match &file.dependencies {
                Some(extracted) => Some(insert_record(&tx, &extracted.record).map_err(wrap)?),
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
                    file.dependencies
                        .as_ref()
                        .map(|extracted| extracted.method.clone()),
                    file.dependencies
                        .as_ref()
                        .map_or(0, |extracted| extracted.extractor),
                ],
            )
            .map_err(wrap)?;
        }
        tx.execute(
            "INSERT INTO projects (name, last_serial, etag, status, error, failures)
             VALUES (?1, ?2, ?3, 'ok', NULL, 0)
             ON CONFLICT(name) DO UPDATE SET last_serial = excluded.last_serial,
                 etag = excluded.etag, status = 'ok', error = NULL, failures = 0",
            params![commit.name, commit.last_serial as i64, commit.etag],
        )
        .map_err(wrap)?;
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
        }
        tx.execute(
            "INSERT INTO projects (name, status, error, failures) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT(name) DO UPDATE SET status = excluded.status, error = excluded.error,
                 failures = failures + 1, etag = NULL",
            params![name, status, error],
        )
        .map_err(wrap)?;
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

    /// A project's stored files, by file name.
    pub fn files(&self, project: &str) -> Result<Vec<StoredFile>> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT f.filename, f.version, f.kind, f.size, f.sha256, f.upload_time, f.yanked,
                        f.requires_python, f.url, f.method, f.extractor,
                        d.source, d.detail, d.requires_python, d.requires_dist, d.provides_extra,
                        d.build_requires, d.build_backend
                 FROM files f LEFT JOIN deps d ON d.id = f.deps
                 WHERE f.project = ?1 ORDER BY f.filename",
            )
            .map_err(|err| self.err(err))?;
        let rows = statement
            .query_map([project], |row| {
                let sha256: Option<Vec<u8>> = row.get(4)?;
                let source: Option<String> = row.get(11)?;
                let dependencies = match source {
                    Some(_) => Some(Extracted {
                        record: record_from_row(row, 11)?,
                        method: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
                        extractor: row.get(10)?,
                    }),
                    None => None,
                };
                Ok(StoredFile {
                    filename: row.get(0)?,
                    version: row.get(1)?,
                    kind: kind_from_int(row.get(2)?),
                    size: row.get::<_, i64>(3)? as u64,
                    sha256: sha256.and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok()),
                    upload_time: row.get(5)?,
                    yanked: row.get(6)?,
                    requires_python: row.get(7)?,
                    url: row.get(8)?,
                    dependencies,
                })
            })
            .map_err(|err| self.err(err))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|err| self.err(err))
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
        let watermark = self
            .meta("watermark")?
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(watermark.max(projects as u64))
    }

    /// The newest upload time of any stored file.
    pub fn newest_upload(&self) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT MAX(upload_time) FROM files", [], |row| row.get(0))
            .map_err(|err| self.err(err))
    }

    /// Merge another state (a shard's) into this one: each project of `other` replaces this
    /// state's copy unless this one has seen a newer serial. Returns the projects taken.
    pub fn merge_from(&mut self, other: &State) -> Result<u64> {
        let mine = self.meta("as_of")?;
        let theirs = other.meta("as_of")?;
        if mine.is_some() && theirs.is_some() && mine != theirs {
            return Err(Error::Usage(format!(
                "cannot merge {}: it was crawled with --as-of {}, this state with {}",
                other.path.display(),
                theirs.unwrap_or_default(),
                mine.unwrap_or_default()
            )));
        }
        if let Some(as_of) = theirs {
            self.set_meta("as_of", &as_of)?;
        }
        let mut taken = 0;
        for name in other.project_names()? {
            let Some(row) = other.project(&name)? else {
                continue;
            };
            let newer = self
                .project(&name)?
                .is_none_or(|known| known.last_serial <= row.last_serial);
            if newer {
                self.commit_project(
                    None,
                    &ProjectCommit {
                        name: name.clone(),
                        last_serial: row.last_serial,
                        etag: row.etag,
                        files: other.files(&name)?,
                        enqueue: Vec::new(),
                    },
                )?;
                taken += 1;
            }
        }
        let watermark = other.serial()?.max(self.serial()?);
        self.set_meta("watermark", &watermark.to_string())?;
        Ok(taken)
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
                    kind_from_int(row.get(0)?),
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)? as u64,
                ))
            })
            .map_err(|err| self.err(err))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|err| self.err(err))
    }
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

fn insert_record(tx: &Transaction<'_>, record: &DependencyRecord) -> rusqlite::Result<i64> {
    let fields = (
        record.source.as_str(),
        &record.detail,
        &record.requires_python,
        json_list(&record.requires_dist),
        json_list(&record.provides_extra),
        json_list(&record.build_requires),
        &record.build_backend,
    );
    let key: [u8; 32] = Sha256::digest(format!("{fields:?}").as_bytes()).into();
    tx.execute(
        "INSERT OR IGNORE INTO deps (key, source, detail, requires_python, requires_dist,
                                     provides_extra, build_requires, build_backend)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            key.as_slice(),
            fields.0,
            fields.1,
            fields.2,
            fields.3,
            fields.4,
            fields.5,
            fields.6
        ],
    )?;
    tx.query_row(
        "SELECT id FROM deps WHERE key = ?1",
        [key.as_slice()],
        |row| row.get(0),
    )
}

fn record_from_row(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<DependencyRecord> {
    let source: String = row.get(at)?;
    Ok(DependencyRecord {
        source: MetadataSource::parse(&source).unwrap_or(MetadataSource::Unknown),
        detail: row.get(at + 1)?,
        requires_python: row.get(at + 2)?,
        requires_dist: parse_list(&row.get::<_, String>(at + 3)?),
        provides_extra: parse_list(&row.get::<_, String>(at + 4)?),
        build_requires: parse_list(&row.get::<_, String>(at + 5)?),
        build_backend: row.get(at + 6)?,
    })
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
