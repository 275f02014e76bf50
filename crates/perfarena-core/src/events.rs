//! The event stream of a run or an image build: the one way progress leaves the runner and the
//! backends. Its consumers are the store writer (the only path by which attempts and build tries
//! are recorded), the progress display, `--json` event lines and build logs.
//!
//! The stream is a stable, versioned format: `--json` writes each event as one JSON object
//! with `version` ([`EVENTS_VERSION`]) and `event` (the variant's snake_case name) beside the
//! variant's fields (docs/events.md). Adding an event or an optional field keeps the version;
//! renaming or removing one raises it.

use serde::{Deserialize, Serialize};

use crate::attempt::AttemptRecord;
use crate::ids::{CommitId, VariantKind};
use crate::plan::RunPlan;
pub use crate::plan::RunStopReason;
use crate::stats::{RoundsDecision, Verdict};

/// The version of the event stream's JSON form.
pub const EVENTS_VERSION: u32 = 1;

/// Where an event's line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Setup,
    Server,
    Client,
    Build,
}

/// One comparison's verdict at an adaptive look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictLine {
    pub treatment: VariantKind,
    pub control: VariantKind,
    pub verdict: Verdict,
    pub ratio: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A run starts (or resumes): its plan and how much of it is recorded already.
    RunPlanned {
        run_id: String,
        backend: String,
        suite_hash: String,
        started_at: String,
        resumed: bool,
        attempts_planned: u64,
        recorded: u64,
        plan: RunPlan,
    },
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
    /// An attempt ended (or a variant could not be prepared): the record as stored, its id
    /// set by the store writer, and the value of the primary metric when it has one.
    AttemptFinished {
        record: Box<AttemptRecord>,
        primary: Option<f64>,
    },
    /// An adaptive look at a task's comparisons after `rounds_done` measured rounds, and
    /// the decision: more rounds (up to `target_rounds`, warm-up included) or stop.
    VerdictUpdated {
        task: CommitId,
        rounds_done: u32,
        target_rounds: u32,
        decision: RoundsDecision,
        comparisons: Vec<VerdictLine>,
    },
    /// A line of an image build's log.
    BuildStep {
        image: String,
        step: String,
    },
    Message {
        text: String,
    },
    /// The run stopped; `recorded` counts the attempts recorded in this session.
    RunStopped {
        run_id: String,
        reason: RunStopReason,
        recorded: u64,
        stopped_at: String,
    },
}

impl Event {
    /// The `--json` line of this event: `version` and `event` beside the event's fields.
    pub fn to_json_line(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            version: u32,
            #[serde(flatten)]
            event: &'a Event,
        }
        // Events are made of strings, numbers and JSON values: they always serialise.
        serde_json::to_string(&Line {
            version: EVENTS_VERSION,
            event: self,
        })
        .unwrap_or_default()
    }

    /// Reads a `--json` line back; a line of a newer version is an error.
    pub fn from_json_line(line: &str) -> Result<Event, String> {
        let mut value: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let version = value.get("version").and_then(|v| v.as_u64());
        match version {
            Some(v) if v <= EVENTS_VERSION as u64 => {}
            Some(v) => {
                return Err(format!(
                    "event version {v} is newer than this perfarena understands ({EVENTS_VERSION})"
                ));
            }
            None => return Err("an event line without `version`".into()),
        }
        if let Some(object) = value.as_object_mut() {
            object.remove("version");
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::AttemptStatus;

    #[test]
    fn json_lines_carry_the_version_and_read_back() {
        let mut record = AttemptRecord::new(
            CommitId::parse(&"a".repeat(40)).unwrap(),
            VariantKind::Human,
            2,
            AttemptStatus::Ok,
        );
        record.samples.push(("tput".into(), 12.5));
        let events = [
            Event::AttemptFinished {
                record: Box::new(record),
                primary: Some(12.5),
            },
            Event::RunStopped {
                run_id: "r1".into(),
                reason: RunStopReason::Interrupted {
                    signal: Some("SIGHUP".into()),
                },
                recorded: 3,
                stopped_at: "2026-01-01T00:00:00Z".into(),
            },
        ];
        for event in events {
            let line = event.to_json_line();
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(value["version"], EVENTS_VERSION, "{line}");
            assert!(value["event"].is_string(), "{line}");
            assert_eq!(Event::from_json_line(&line).unwrap(), event);
        }
    }

    #[test]
    fn a_newer_event_line_is_refused() {
        let line = format!(
            r#"{{"version":{},"event":"message","text":"hi"}}"#,
            EVENTS_VERSION + 1
        );
        assert!(Event::from_json_line(&line).unwrap_err().contains("newer"));
        assert!(
            Event::from_json_line(r#"{"event":"message","text":"hi"}"#)
                .unwrap_err()
                .contains("without `version`")
        );
    }
}
