//! The crawl state: one SQLite file (`DIR/state.sqlite`) holding every project's files and the
//! dependency record of each file, plus the queue of the current crawl run.
//!
//! Crash safety: everything one project changes (its files, their records, its serial and ETag,
//! the run queue entries it adds and its own "done" mark) is written in one transaction, so a
//! `SIGKILL` at any moment leaves either all of it or none of it; the records of a big
//! project's files examined so far are kept in batches meanwhile ([`State::save_partial`]). A
//! run is identified by the command that started it ([`State::begin_run`]); the same command
//! after a crash resumes the unfinished run and crawls only what is still queued, so the result
//! equals an uninterrupted run's.
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
//!
//! Layout: `schema` (tables, migrations, row checksums), `codec` (strict decoding, sealed
//! writes), `records` (the merge rule and `merge-state`), `runs` (the run queue), `lock`.

mod codec;
mod lock;
mod records;
mod runs;
mod schema;

use std::cmp::Ordering;
use std::io::Read;
use std::path::{Path, PathBuf};

use db_format::{DependencyRecord, FileKind, MetadataSource};
use rusqlite::types::{FromSql, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

use crate::extract::Method;
use crate::{Error, Result};

use self::codec::*;
pub use self::lock::DirLock;
pub use self::records::{Extracted, MergeReport, Replaced, better_record};
pub use self::runs::Run;
use self::runs::{enqueue, mark_done};
use self::schema::*;

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

/// The crawl state.
#[derive(Debug)]
pub struct State {
    conn: Connection,
    path: PathBuf,
    /// Held (never read) while the state is open: see the module docs.
    _lock: DirLock,
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
        let mut rows = statement.query([]).map_err(|err| self.err(err))?;
        let mut serials = std::collections::HashMap::new();
        while let Some(row) = rows.next().map_err(|err| self.err(err))? {
            let name: String = row.get(0).map_err(|err| self.err(err))?;
            let serial = codec::unsigned_cell(row, 1, "last_serial")
                .map_err(|cell| damaged(&self.path, format!("project {name}"), cell))?;
            serials.insert(name, serial);
        }
        Ok(serials)
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
        Ok(
            crate::publish::publish(&state, out, crate::publish::PublishOptions::default())?
                .entry
                .sha256,
        )
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
        state
            .conn
            .execute_batch("UPDATE projects SET last_serial = -5 WHERE name = 'beta-pkg'")
            .expect("damages");
        seal(&state.conn, &PROJECTS, "", []).expect("reseals");
        let err = state.serials().expect_err("negative serial");
        assert!(
            err.to_string()
                .contains("(project beta-pkg), column last_serial: negative: -5"),
            "{err}"
        );
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
        eprintln!("{refused} flips refused, {same} published the same bytes");
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
