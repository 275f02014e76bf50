//! Rows as the rest of perfarena sees them.

use perfarena_core::attempt::{AttemptRecord, Provenance};
use perfarena_core::{CommitId, FailureClass, FailureKind, VariantKind};

/// One `perfarena run` (kept across `--resume`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub suite_hash: String,
    pub backend: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `finished`, `interrupted` or `failed`.
    pub status: String,
    /// What the run was asked to do (tasks, candidates, repeats, seed…), so `--resume` can redo it.
    pub config: serde_json::Value,
}

impl RunRecord {
    pub(crate) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
        let config: String = row.get(6)?;
        Ok(RunRecord {
            run_id: row.get(0)?,
            suite_hash: row.get(1)?,
            backend: row.get(2)?,
            started_at: row.get(3)?,
            finished_at: row.get(4)?,
            status: row.get(5)?,
            config: serde_json::from_str(&config).unwrap_or(serde_json::Value::Null),
        })
    }
}

/// Which attempts to read.
#[derive(Debug, Clone, Default)]
pub struct AttemptFilter {
    pub run_id: Option<String>,
    pub task: Option<CommitId>,
    pub variant: Option<VariantKind>,
}

/// The raw columns of an attempt row.
pub(crate) struct AttemptRow {
    pub id: i64,
    run_id: Option<String>,
    task: String,
    variant: String,
    round_idx: u32,
    is_warmup: bool,
    status: String,
    exit_code: Option<i32>,
    started_at: String,
    duration_s: f64,
    log_dir: Option<String>,
    failure_kind: Option<String>,
    signature: Option<String>,
    evidence: Option<String>,
    message: String,
    provenance: String,
    source: Option<String>,
    backend: String,
    image: Option<String>,
    metadata: String,
    import_key: Option<String>,
    stage: String,
    rerun_on_resume: bool,
}

impl AttemptRow {
    pub(crate) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AttemptRow> {
        Ok(AttemptRow {
            id: row.get(0)?,
            run_id: row.get(1)?,
            task: row.get(2)?,
            variant: row.get(3)?,
            round_idx: row.get(4)?,
            is_warmup: row.get(5)?,
            status: row.get(6)?,
            exit_code: row.get(7)?,
            started_at: row.get(8)?,
            duration_s: row.get(9)?,
            log_dir: row.get(10)?,
            failure_kind: row.get(11)?,
            signature: row.get(12)?,
            evidence: row.get(13)?,
            message: row.get(14)?,
            provenance: row.get(15)?,
            source: row.get(16)?,
            backend: row.get(17)?,
            image: row.get(18)?,
            metadata: row.get(19)?,
            import_key: row.get(20)?,
            stage: row.get(21)?,
            rerun_on_resume: row.get(22)?,
        })
    }

    pub(crate) fn into_record(self) -> Result<AttemptRecord, String> {
        let failure = match self.failure_kind {
            Some(kind) => Some(FailureClass {
                kind: kind.parse::<FailureKind>()?,
                signature: self.signature.unwrap_or_default(),
                evidence: self.evidence.unwrap_or_default(),
            }),
            None => None,
        };
        Ok(AttemptRecord {
            id: self.id,
            run_id: self.run_id,
            task: CommitId::parse(&self.task).map_err(|e| e.to_string())?,
            variant: self
                .variant
                .parse()
                .map_err(|e: perfarena_core::IdError| e.to_string())?,
            round_idx: self.round_idx,
            is_warmup: self.is_warmup,
            status: self
                .status
                .parse()
                .map_err(|e: perfarena_core::attempt::UnknownStatus| e.to_string())?,
            exit_code: self.exit_code,
            started_at: self.started_at,
            duration_s: self.duration_s,
            log_dir: self.log_dir,
            failure,
            message: self.message,
            provenance: match self.provenance.as_str() {
                "imported" => Provenance::Imported {
                    source: self.source.unwrap_or_default(),
                },
                _ => Provenance::Measured,
            },
            backend: self.backend,
            image: self.image,
            metadata: serde_json::from_str(&self.metadata).unwrap_or(serde_json::Value::Null),
            import_key: self.import_key,
            samples: Vec::new(),
            stage: self.stage.parse()?,
            rerun_on_resume: self.rerun_on_resume,
        })
    }
}
