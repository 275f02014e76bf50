//! The event stream of a run: the one way progress leaves a backend or the runner. The progress
//! bar, the store writer and `--json` output all read it.

use serde::Serialize;

use crate::attempt::AttemptStatus;
use crate::ids::{CommitId, VariantKind};

/// Where an event's line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Setup,
    Server,
    Client,
    Build,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A variant is being prepared (checkout, patch, setup or image).
    PrepareStarted {
        task: CommitId,
        variant: VariantKind,
    },
    PrepareFinished {
        task: CommitId,
        variant: VariantKind,
        ok: bool,
        message: String,
    },
    AttemptStarted {
        task: CommitId,
        variant: VariantKind,
        round_idx: u32,
    },
    ServerReady {
        task: CommitId,
        variant: VariantKind,
        round_idx: u32,
        after_s: f64,
    },
    LogLine {
        task: CommitId,
        variant: VariantKind,
        stream: Stream,
        line: String,
    },
    AttemptFinished {
        task: CommitId,
        variant: VariantKind,
        round_idx: u32,
        status: AttemptStatus,
        primary: Option<f64>,
        duration_s: f64,
        message: String,
    },
    BuildStep {
        image: String,
        step: String,
    },
    Message {
        text: String,
    },
}

/// Receives events; implemented by the CLI (progress bar, JSON lines) and by tests.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Drops every event.
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: Event) {}
}
