//! Rows to values and back: strict decoding (every column checked, a damaged cell is an
//! error naming its row and column) and the writes that seal what they wrote.

use super::*;

pub(super) fn json_list(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

pub(super) fn kind_to_int(kind: FileKind) -> i64 {
    match kind {
        FileKind::Sdist => 0,
        FileKind::Wheel => 1,
        FileKind::Other => 2,
    }
}

/// A damaged cell: which column, and why it cannot be what the state wrote.
pub(super) type Cell = (&'static str, String);

pub(super) fn cell<T: FromSql>(
    row: &rusqlite::Row<'_>,
    at: usize,
    column: &'static str,
) -> Result<T, Cell> {
    row.get_ref(at)
        .map_err(|err| (column, err.to_string()))
        .and_then(|value| T::column_result(value).map_err(|err| (column, err.to_string())))
}

pub(super) fn list_cell(
    row: &rusqlite::Row<'_>,
    at: usize,
    column: &'static str,
) -> Result<Vec<String>, Cell> {
    let text: String = cell(row, at, column)?;
    serde_json::from_str(&text)
        .map_err(|err| (column, format!("not a JSON list of strings: {err}")))
}

pub(super) fn unsigned_cell(
    row: &rusqlite::Row<'_>,
    at: usize,
    column: &'static str,
) -> Result<u64, Cell> {
    let value: i64 = cell(row, at, column)?;
    u64::try_from(value).map_err(|_| (column, format!("negative: {value}")))
}

/// Whether the row's stored `checksum` (at `sum_at`) matches its `columns` (from `first`).
pub(super) fn check_row(
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
pub(super) fn decode_record(
    row: &rusqlite::Row<'_>,
    at: usize,
    id: i64,
) -> Result<DependencyRecord, Cell> {
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

pub(super) fn sha256_cell(row: &rusqlite::Row<'_>, at: usize) -> Result<Option<[u8; 32]>, Cell> {
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
pub(super) fn decode_file(row: &rusqlite::Row<'_>) -> Result<StoredFile, Cell> {
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
pub(super) const FILE_QUERY: &str = "
SELECT f.project, f.filename, f.version, f.kind, f.size, f.sha256, f.upload_time, f.yanked,
       f.requires_python, f.url, f.deps, f.method, f.extractor, f.checksum,
       d.id, d.key, d.source, d.detail, d.requires_python, d.requires_dist, d.provides_extra,
       d.build_requires, d.build_backend, d.checksum
FROM files f LEFT JOIN deps d ON d.id = f.deps
WHERE f.project = ?1 ORDER BY f.filename";

pub(super) fn damaged(path: &Path, row: String, (column, reason): Cell) -> Error {
    Error::Damaged {
        path: path.to_path_buf(),
        row,
        column,
        reason,
    }
}

pub(super) fn read_files(conn: &Connection, path: &Path, project: &str) -> Result<Vec<StoredFile>> {
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
pub(super) fn read_partial(
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

pub(super) fn read_project(
    conn: &Connection,
    path: &Path,
    name: &str,
) -> Result<Option<ProjectRow>> {
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

pub(super) fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
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
pub(super) fn write_project(
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

/// The key of a dependency record in `deps`: a digest of its fields (equal records share a
/// row).
pub(super) fn record_key(record: &DependencyRecord) -> Vec<u8> {
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

pub(super) fn insert_record(
    tx: &Transaction<'_>,
    record: &DependencyRecord,
) -> rusqlite::Result<i64> {
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
