//! perfarena's run engine: plans a run (tasks × variants × rounds), schedules it (interleaved,
//! shuffled rounds; tasks spread over parallel workers, each with its resource slot; whole
//! rounds for batch backends), drives each variant through its lifecycle on any
//! [`Backend`](perfarena_backend::Backend) (prepared → checked → measured), stops adaptive
//! tasks once their comparisons are clear, and resumes an interrupted run where it stopped.
//!
//! It never prints. Everything it does leaves as one typed, versioned event stream
//! ([`perfarena_core::events::Event`]): the [`StoreWriter`] records from it (the only path by
//! which attempts are written, each before the next begins), and the CLI renders it (progress,
//! `--json` lines).

mod attempt;
pub mod candidates;
pub mod engine;
pub mod eras;
pub mod events;
pub mod images_status;
pub mod lifecycle;
pub mod lock;
pub mod plan;
pub mod schedule;
pub mod signals;
pub mod store_writer;
mod vars;

pub use engine::{RunOutcome, Runner};
pub use events::{Recorder, RunEvents};
pub use lifecycle::{Lifecycle, PlainLifecycle};
pub use plan::{PlannedRun, RunRequest};
pub use store_writer::StoreWriter;

use perfarena_backend::BackendError;
use perfarena_store::StoreError;

/// Why a run (or its planning) failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run was cancelled (a signal); not an error to report, the run stops as interrupted.
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Backend(BackendError),
    // Messages hold their cause (no `#[source]`), so that one line says everything.
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
    /// What the user asked for cannot be planned (a task prefix, a candidate argument, a run
    /// id…); the message says what to do.
    #[error("{0}")]
    Input(String),
    #[error("cannot record the attempt: {0}")]
    Record(StoreError),
    /// The backend said nothing after this attempt can work (the daemon is gone, the disk is
    /// full); the attempt is recorded as an infra error and rerun on resume.
    #[error("{message}")]
    Stopped { message: String },
    #[error("{message} (and the attempt could not be recorded: {record_error})")]
    StoppedUnrecorded {
        message: String,
        record_error: String,
    },
    #[error("a runner worker panicked")]
    WorkerPanicked,
}

impl From<BackendError> for RunError {
    fn from(err: BackendError) -> RunError {
        match err {
            BackendError::Cancelled => RunError::Cancelled,
            other => RunError::Backend(other),
        }
    }
}

pub type Result<T, E = RunError> = std::result::Result<T, E>;

impl RunError {
    pub(crate) fn io(context: impl Into<String>, error: std::io::Error) -> RunError {
        RunError::Io {
            context: context.into(),
            error,
        }
    }
}

/// The current time, RFC 3339, UTC, seconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
