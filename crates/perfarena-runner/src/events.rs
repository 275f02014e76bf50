//! Where the runner's events go: first to the [`Recorder`] (the store writer), which must
//! succeed before the run goes on, then to the display (an [`EventSink`]: progress bars,
//! `--json` lines, build logs), which cannot fail.

use perfarena_core::AttemptRecord;
use perfarena_core::events::{Event, EventSink};
use perfarena_store::StoreError;

/// A consumer of events that records them: what it returns `Ok` for is durable.
pub trait Recorder: Send + Sync {
    /// Records what the event carries (an attempt, the run's state…) and fills in what the
    /// record got (an attempt's id); ignores events that carry nothing to record.
    fn record(&self, event: &mut Event) -> Result<(), StoreError>;
}

/// Records nothing (runs whose results only the display sees, and tests).
pub struct NoRecorder;

impl Recorder for NoRecorder {
    fn record(&self, _event: &mut Event) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The two consumers of a run's events.
#[derive(Clone, Copy)]
pub struct RunEvents<'a> {
    pub recorder: &'a dyn Recorder,
    pub display: &'a dyn EventSink,
}

impl<'a> RunEvents<'a> {
    pub fn new(recorder: &'a dyn Recorder, display: &'a dyn EventSink) -> RunEvents<'a> {
        RunEvents { recorder, display }
    }

    /// Records the event, then shows it; shown only once recorded.
    pub fn commit(&self, mut event: Event) -> Result<Event, StoreError> {
        self.recorder.record(&mut event)?;
        self.display.emit(event.clone());
        Ok(event)
    }

    /// Records a finished attempt and returns it as stored (with its id).
    pub fn attempt_finished(
        &self,
        record: AttemptRecord,
        primary: Option<f64>,
    ) -> Result<AttemptRecord, StoreError> {
        match self.commit(Event::AttemptFinished {
            record: Box::new(record),
            primary,
        })? {
            Event::AttemptFinished { record, .. } => Ok(*record),
            _ => unreachable!("commit returns the event it was given"),
        }
    }
}

/// Events from the backends (log lines, readiness, preparation) carry nothing to record: they
/// go to the display only.
impl EventSink for RunEvents<'_> {
    fn emit(&self, event: Event) {
        self.display.emit(event);
    }
}
