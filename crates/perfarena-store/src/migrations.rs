//! Versioned schema migrations, applied in order and recorded in `PRAGMA user_version`.

use rusqlite::Connection;

use crate::StoreError;

/// One entry per schema version; entry `i` takes the schema from version `i` to `i + 1`.
/// Never edit an entry that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: tasks, runs, attempts and samples.
    "CREATE TABLE tasks (
        commit_hash TEXT PRIMARY KEY,
        parent TEXT,
        data TEXT NOT NULL,
        source TEXT NOT NULL,
        imported_at TEXT NOT NULL
    );
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        suite_hash TEXT NOT NULL,
        backend TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        config TEXT NOT NULL
    );
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT,
        task TEXT NOT NULL,
        variant TEXT NOT NULL,
        round_idx INTEGER NOT NULL,
        is_warmup INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        exit_code INTEGER,
        started_at TEXT NOT NULL,
        duration_s REAL NOT NULL,
        log_dir TEXT,
        failure_kind TEXT,
        signature TEXT,
        evidence TEXT,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX attempts_by_run ON attempts (run_id, task, variant);
    CREATE TABLE samples (
        attempt_id INTEGER NOT NULL REFERENCES attempts(id),
        metric TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (attempt_id, metric)
    );",
    // 2: provenance of attempts (measured or imported), candidate patches, builds and images.
    "ALTER TABLE attempts ADD COLUMN provenance TEXT NOT NULL DEFAULT 'measured';
    ALTER TABLE attempts ADD COLUMN source TEXT;
    ALTER TABLE attempts ADD COLUMN backend TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE attempts ADD COLUMN image TEXT;
    ALTER TABLE attempts ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE attempts ADD COLUMN import_key TEXT;
    CREATE UNIQUE INDEX attempts_import_key ON attempts (import_key) WHERE import_key IS NOT NULL;
    CREATE TABLE patches (
        sha256 TEXT PRIMARY KEY,
        text TEXT NOT NULL
    );
    CREATE TABLE builds (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task TEXT NOT NULL,
        variant TEXT NOT NULL,
        image_ref TEXT NOT NULL,
        status TEXT NOT NULL,
        try_idx INTEGER NOT NULL DEFAULT 0,
        max_jobs INTEGER,
        started_at TEXT NOT NULL,
        duration_s REAL NOT NULL DEFAULT 0,
        log_path TEXT,
        excerpt TEXT,
        args TEXT NOT NULL DEFAULT '{}',
        digest TEXT
    );
    CREATE TABLE images (
        image_ref TEXT PRIMARY KEY,
        local TEXT NOT NULL DEFAULT 'unknown',
        registry TEXT NOT NULL DEFAULT 'unknown',
        digest TEXT,
        source TEXT NOT NULL,
        checked_at TEXT NOT NULL
    );",
    // 3: soft-judge labels (quadrants) and backend job ids (slurm re-attach).
    "CREATE TABLE judge_labels (
        task TEXT NOT NULL,
        candidate TEXT NOT NULL,
        label TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (task, candidate)
    );
    CREATE TABLE jobs (
        run_id TEXT NOT NULL,
        task TEXT NOT NULL,
        variant TEXT NOT NULL,
        round_idx INTEGER NOT NULL,
        backend TEXT NOT NULL,
        job_id TEXT NOT NULL,
        submitted_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'submitted',
        PRIMARY KEY (run_id, task, variant, round_idx)
    );",
    // 4: complete listings of registry repositories (`images import`): a ref of a listed
    // repository that its listing does not name is missing.
    "CREATE TABLE image_listings (
        repository TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        listed_at TEXT NOT NULL,
        n_tags INTEGER NOT NULL
    );",
    // 5: what `--resume` keys on, as typed columns (they were keys of `metadata`), and the
    // run's state (its adaptive decisions and how it stopped; `perfarena_core::plan::RunState`).
    "ALTER TABLE attempts ADD COLUMN stage TEXT NOT NULL DEFAULT 'attempt';
    ALTER TABLE attempts ADD COLUMN rerun_on_resume INTEGER NOT NULL DEFAULT 0;
    UPDATE attempts SET stage = 'prepare'
        WHERE CASE WHEN json_valid(metadata) THEN json_extract(metadata, '$.stage') END = 'prepare';
    UPDATE attempts SET rerun_on_resume = 1
        WHERE CASE WHEN json_valid(metadata) THEN json_extract(metadata, '$.rerun_on_resume') END = 1;
    ALTER TABLE runs ADD COLUMN state TEXT;",
    // 6: the published judge vocabularies: a row's hard outcome (beats, similar, worse, no_data)
    // and the judge's approach; a row with only a hard outcome stores the label `unknown`.
    "ALTER TABLE judge_labels ADD COLUMN hard TEXT;
    ALTER TABLE judge_labels ADD COLUMN approach TEXT;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn migrate(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Applies migrations up to `target` (tests use a lower target to build old stores).
pub(crate) fn migrate_to(conn: &mut Connection, path: &str, target: i64) -> Result<(), StoreError> {
    let sql = |source| StoreError::Sqlite {
        path: path.to_string(),
        source,
    };
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_string(),
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for version in current..target {
        let tx = conn.transaction().map_err(sql)?;
        tx.execute_batch(MIGRATIONS[version as usize])
            .map_err(sql)?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
    Ok(())
}
