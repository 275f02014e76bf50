//! The hooks of a variant's way through a run: prepared → checked → measured. The runner calls
//! [`Lifecycle::check`] once a variant is prepared, before its first attempt, and
//! [`Lifecycle::after_attempt`] after each recorded attempt. [`PlainLifecycle`] passes
//! everything; correctness checks and fail-fast are lifecycles.

use std::path::Path;

use perfarena_backend::{Backend, CancelToken, PrepareFailure, Prepared};
use perfarena_core::events::EventSink;
use perfarena_core::{AttemptRecord, RunId, Task, VariantKind};

use crate::Result;

/// A prepared variant, as a check sees it.
pub struct VariantContext<'a> {
    pub run_id: &'a RunId,
    pub task: &'a Task,
    pub variant: &'a VariantKind,
    pub prepared: &'a Prepared,
    pub backend: &'a dyn Backend,
    pub events: &'a dyn EventSink,
    pub cancel: &'a CancelToken,
    /// The variant's directory under the run (`…/runs/<run>/<task>/<variant>`), for logs.
    pub log_dir: &'a Path,
}

/// Whether a prepared variant may be measured.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Pass,
    /// Recorded once like a failed preparation (status, message, log); the variant is skipped
    /// for the rest of the run, and on resume.
    Fail(PrepareFailure),
}

/// Whether a task goes on after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// No more attempts for this task in this run (its other variants' attempts of the round
    /// included).
    StopTask,
}

pub trait Lifecycle: Send + Sync {
    /// Called once per variant after `prepare` succeeded, before its first attempt. `Err`
    /// stops the run.
    fn check(&self, _variant: &VariantContext<'_>) -> Result<Check> {
        Ok(Check::Pass)
    }

    /// Called after each attempt is recorded (with the record as stored).
    fn after_attempt(&self, _task: &Task, _record: &AttemptRecord) -> Next {
        Next::Continue
    }
}

/// Every variant is measured; every task runs its planned rounds.
pub struct PlainLifecycle;

impl Lifecycle for PlainLifecycle {}
