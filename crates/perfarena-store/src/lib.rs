//! perfarena's store: one SQLite database (`.perfarena/perfarena.db`, WAL) holding tasks, runs,
//! attempts with their samples, builds and image availability, with versioned migrations.
//!
//! Attempts and samples are append-only: an attempt is written, with its samples, in one
//! transaction when it finishes, before the next one starts, so a killed run loses at most the
//! attempt in flight. Logs live as files under `.perfarena/runs/…`; rows hold their paths.

mod builds;
mod imports;
mod jobs;
mod migrations;
mod records;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use perfarena_core::plan::RunState;
use perfarena_core::{CommitId, Task};

pub use builds::{BuildTryRow, ImageRow, LastBuild};
pub use imports::ImportCounts;
pub use jobs::JobRecord;
pub use migrations::SCHEMA_VERSION;
pub use perfarena_core::attempt::{AttemptRecord, Provenance};
pub use records::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("store {path}: cannot create the directory: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "store {path}: schema version {found} is newer than this perfarena understands ({supported}); upgrade perfarena"
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error(
        "store {path}: no store here; run `perfarena tasks import` (or `perfarena init`) first"
    )]
    Missing { path: String },
    #[error("store {path}: row {what} holds invalid data: {message}")]
    Corrupt {
        path: String,
        what: String,
        message: String,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// An open store.
pub struct Store {
    conn: Connection,
    dir: PathBuf,
}

impl Store {
    /// The database file inside a store directory.
    pub fn db_path(dir: &Path) -> PathBuf {
        dir.join("perfarena.db")
    }

    /// Opens (creating and migrating as needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Self::open_file(dir, &Self::db_path(dir))
    }

    /// Opens an existing store; an error (not an empty store) when there is none.
    pub fn open_existing(dir: &Path) -> Result<Store> {
        let db = Self::db_path(dir);
        if !db.exists() {
            return Err(StoreError::Missing {
                path: db.display().to_string(),
            });
        }
        Self::open_file(dir, &db)
    }

    fn open_file(dir: &Path, db: &Path) -> Result<Store> {
        let path = db.display().to_string();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(db).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        let mut store = Store {
            conn,
            dir: dir.to_path_buf(),
        };
        migrations::migrate(&mut store.conn, &path)?;
        Ok(store)
    }

    /// The store's directory (`.perfarena`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: Self::db_path(&self.dir).display().to_string(),
            source,
        }
    }

    pub(crate) fn corrupt(
        &self,
        what: impl Into<String>,
        message: impl Into<String>,
    ) -> StoreError {
        StoreError::Corrupt {
            path: Self::db_path(&self.dir).display().to_string(),
            what: what.into(),
            message: message.into(),
        }
    }

    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    // ----- tasks -----

    /// Inserts or replaces tasks, all in one transaction.
    pub fn upsert_tasks(&mut self, tasks: &[Task], source: &str, now: &str) -> Result<()> {
        let path = Self::db_path(&self.dir).display().to_string();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO tasks (commit_hash, parent, data, source, imported_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(commit_hash) DO UPDATE SET parent = excluded.parent, data = excluded.data,
                     source = excluded.source, imported_at = excluded.imported_at",
                )
                .map_err(sql)?;
            for task in tasks {
                let data = serde_json::to_string(task).unwrap_or_default();
                stmt.execute(params![
                    task.commit.as_str(),
                    task.parent.as_ref().map(|p| p.as_str()),
                    data,
                    source,
                    now
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// All tasks, in import order.
    pub fn tasks(&self) -> Result<Vec<Task>> {
        let mut stmt = self
            .conn
            .prepare("SELECT commit_hash, data FROM tasks ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut tasks = Vec::new();
        for row in rows {
            let (commit, data) = row.map_err(|e| self.err(e))?;
            let task: Task = serde_json::from_str(&data)
                .map_err(|e| self.corrupt(format!("tasks/{commit}"), e.to_string()))?;
            tasks.push(task);
        }
        Ok(tasks)
    }

    // ----- runs -----

    pub fn create_run(&self, run: &RunRecord) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO runs (run_id, suite_hash, backend, started_at, finished_at, status, config) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![run.run_id, run.suite_hash, run.backend, run.started_at, run.finished_at, run.status, run.config.to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn set_run_status(
        &self,
        run_id: &str,
        status: &str,
        finished_at: Option<&str>,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET status = ?2, finished_at = ?3 WHERE run_id = ?1",
                params![run_id, status, finished_at],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        self.conn
            .query_row(
                "SELECT run_id, suite_hash, backend, started_at, finished_at, status, config FROM runs WHERE run_id = ?1",
                [run_id],
                RunRecord::from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Keeps the run's state (its adaptive decisions, how it stopped) for `--resume`.
    pub fn save_run_state(&self, run_id: &str, state: &RunState) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET state = ?2 WHERE run_id = ?1",
                params![run_id, state.to_json().to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The run's state as last saved (the empty state for a run that saved none).
    pub fn run_state(&self, run_id: &str) -> Result<RunState> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT state FROM runs WHERE run_id = ?1", [run_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?
            .flatten();
        let Some(text) = text else {
            return Ok(RunState::default());
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| self.corrupt(format!("runs/{run_id}/state"), e.to_string()))?;
        RunState::from_json(&value)
            .map_err(|e| self.corrupt(format!("runs/{run_id}/state"), e.to_string()))
    }

    /// Runs, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        let mut stmt = self
            .conn
            .prepare("SELECT run_id, suite_hash, backend, started_at, finished_at, status, config FROM runs ORDER BY started_at DESC, rowid DESC")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], RunRecord::from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    // ----- patches -----

    /// Stores a patch's text under its sha256 (idempotent).
    pub fn put_patch(&self, sha256: &str, text: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO patches (sha256, text) VALUES (?1, ?2)",
                params![sha256, text],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn patch(&self, sha256: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT text FROM patches WHERE sha256 = ?1",
                [sha256],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    // ----- attempts -----

    /// Records a finished attempt and its samples in one transaction; returns its id. An
    /// imported attempt that is already stored (same source and key) is not added again.
    pub fn insert_attempt(&mut self, attempt: &AttemptRecord) -> Result<i64> {
        let path = Self::db_path(&self.dir).display().to_string();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let failure = attempt.failure.as_ref();
        tx.execute(
            "INSERT INTO attempts (run_id, task, variant, round_idx, is_warmup, status, exit_code, started_at, duration_s,
                log_dir, failure_kind, signature, evidence, message, provenance, source, backend, image, metadata, import_key,
                stage, rerun_on_resume)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
            params![
                attempt.run_id,
                attempt.task.as_str(),
                attempt.variant.to_string(),
                attempt.round_idx,
                attempt.is_warmup,
                attempt.status.as_str(),
                attempt.exit_code,
                attempt.started_at,
                attempt.duration_s,
                attempt.log_dir,
                failure.map(|f| f.kind.as_str()),
                failure.map(|f| f.signature.as_str()),
                failure.map(|f| f.evidence.as_str()),
                attempt.message,
                attempt.provenance.kind(),
                attempt.provenance.source(),
                attempt.backend,
                attempt.image,
                attempt.metadata.to_string(),
                attempt.import_key,
                attempt.stage.as_str(),
                attempt.rerun_on_resume,
            ],
        )
        .map_err(sql)?;
        let id = tx.last_insert_rowid();
        {
            let mut stmt = tx
                .prepare("INSERT INTO samples (attempt_id, metric, value) VALUES (?1, ?2, ?3)")
                .map_err(sql)?;
            for (metric, value) in &attempt.samples {
                stmt.execute(params![id, metric, value]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)?;
        Ok(id)
    }

    /// Whether an imported attempt with this key exists already.
    pub fn has_import_key(&self, key: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM attempts WHERE import_key = ?1",
                [key],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.err(e))
    }

    /// Attempts matching `filter`, oldest first, with their samples.
    pub fn attempts(&self, filter: &AttemptFilter) -> Result<Vec<AttemptRecord>> {
        let mut where_sql = vec!["1 = 1".to_string()];
        let mut args: Vec<String> = Vec::new();
        if let Some(run) = &filter.run_id {
            args.push(run.clone());
            where_sql.push(format!("run_id = ?{}", args.len()));
        }
        if let Some(task) = &filter.task {
            args.push(task.as_str().to_string());
            where_sql.push(format!("task = ?{}", args.len()));
        }
        if let Some(variant) = &filter.variant {
            args.push(variant.to_string());
            where_sql.push(format!("variant = ?{}", args.len()));
        }
        let query = format!(
            "SELECT id, run_id, task, variant, round_idx, is_warmup, status, exit_code, started_at, duration_s, log_dir,
                failure_kind, signature, evidence, message, provenance, source, backend, image, metadata, import_key,
                stage, rerun_on_resume
             FROM attempts WHERE {} ORDER BY id",
            where_sql.join(" AND ")
        );
        let mut stmt = self.conn.prepare(&query).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                rusqlite::params_from_iter(args.iter()),
                AttemptRow::from_row,
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let row = row.map_err(|e| self.err(e))?;
            let id = row.id;
            out.push(
                row.into_record()
                    .map_err(|m| self.corrupt(format!("attempts/{id}"), m))?,
            );
        }
        let mut sample_stmt = self
            .conn
            .prepare("SELECT metric, value FROM samples WHERE attempt_id = ?1 ORDER BY metric")
            .map_err(|e| self.err(e))?;
        for attempt in &mut out {
            let samples = sample_stmt
                .query_map([attempt.id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
                })
                .map_err(|e| self.err(e))?;
            attempt.samples = samples
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| self.err(e))?;
        }
        Ok(out)
    }

    /// Number of attempts (optionally of one run), for summaries and tests.
    pub fn count_attempts(&self, run_id: Option<&str>) -> Result<i64> {
        match run_id {
            Some(run) => self.conn.query_row(
                "SELECT COUNT(*) FROM attempts WHERE run_id = ?1",
                [run],
                |r| r.get(0),
            ),
            None => self
                .conn
                .query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0)),
        }
        .map_err(|e| self.err(e))
    }

    /// Whether a task with exactly this commit hash is stored.
    pub fn has_task(&self, commit: &CommitId) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM tasks WHERE commit_hash = ?1",
                [commit.as_str()],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.err(e))
    }

    /// Direct access to the database, for tests that write rows no function writes.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests;
