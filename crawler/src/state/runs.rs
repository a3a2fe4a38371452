//! Crawl runs: the queue of one command's projects, resumed after a crash.

use super::*;

/// A crawl run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub id: i64,
    /// Whether an unfinished run of the same command was picked up.
    pub resumed: bool,
}

impl State {
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
}

/// Queue `keys` (see [`crate::closure`]: `name` or `name[extra]`). An extra first requested
/// after its project was done in this run queues the project again, so its dependencies under
/// that extra are followed too.
pub(super) fn enqueue(tx: &Transaction<'_>, run: i64, keys: &[String]) -> rusqlite::Result<()> {
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

pub(super) fn mark_done(tx: &Transaction<'_>, run: i64, name: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO run_queue (run, name, done) VALUES (?1, ?2, 1)
         ON CONFLICT(run, name) DO UPDATE SET done = 1",
        params![run, name],
    )
    .map(drop)
}
