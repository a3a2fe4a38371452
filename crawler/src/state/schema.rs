//! The schema: its tables, numbered migrations, and the checksum every row a snapshot is
//! built from carries.

use super::*;

/// The tables of schema version 1 (every state before numbered migrations had these).
pub(super) const SCHEMA_V1: &str = "
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
pub(super) const SCHEMA_VERSION: i64 = 3;

/// A table whose rows feed a snapshot: every row carries a `checksum` over its columns, so a
/// byte damaged on disk is found when the row is read instead of being published.
pub(super) struct Sealed {
    pub(super) name: &'static str,
    /// The columns, in checksum order; the first `naming` of them name a row in messages.
    pub(super) columns: &'static [&'static str],
    pub(super) naming: usize,
}

pub(super) const META: Sealed = Sealed {
    name: "meta",
    columns: &["key", "value"],
    naming: 1,
};
pub(super) const PROJECTS: Sealed = Sealed {
    name: "projects",
    columns: &["name", "last_serial", "etag", "status", "error", "failures"],
    naming: 1,
};
pub(super) const DEPS: Sealed = Sealed {
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
pub(super) const FILES: Sealed = Sealed {
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
pub(super) const PARTIAL: Sealed = Sealed {
    name: "partial",
    columns: &["project", "sha256", "deps", "method", "extractor"],
    naming: 2,
};
pub(super) const SEALED: [&Sealed; 4] = [&META, &PROJECTS, &DEPS, &FILES];

/// The checksum of one row: the first 8 bytes of a sha256 over the table name and each value
/// with its type, so neither a changed byte nor a changed type goes unnoticed.
pub(super) fn row_checksum<'a>(table: &str, values: impl IntoIterator<Item = ValueRef<'a>>) -> i64 {
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
pub(super) fn seal(
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
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
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
