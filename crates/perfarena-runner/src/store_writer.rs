//! The store writer: the consumer of the event stream that records it in the store. It is the
//! only path by which a run's attempts, its state and its status are written; the runner waits
//! for it before the next attempt begins.

use std::sync::Mutex;

use perfarena_core::events::{Event, RunStopReason};
use perfarena_core::plan::{RunState, TaskRounds};
use perfarena_store::{RunRecord, Store, StoreError};

use crate::events::Recorder;

/// Records a run's events in the store.
pub struct StoreWriter {
    store: Mutex<Store>,
    /// The run being recorded and its state as last saved (adaptive decisions, how it
    /// stopped).
    run: Mutex<(String, RunState)>,
}

impl StoreWriter {
    pub fn new(store: Store) -> StoreWriter {
        StoreWriter {
            store: Mutex::new(store),
            run: Mutex::new((String::new(), RunState::default())),
        }
    }

    /// The store back, for what follows the run (its summary).
    pub fn into_store(self) -> Store {
        self.store.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn with_store<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut store)
    }

    fn save_state(&self, change: impl FnOnce(&mut RunState)) -> Result<(), StoreError> {
        let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        let (run_id, state) = &mut *run;
        change(state);
        self.with_store(|store| store.save_run_state(run_id, state))
    }
}

impl Recorder for StoreWriter {
    fn record(&self, event: &mut Event) -> Result<(), StoreError> {
        match event {
            Event::RunPlanned {
                run_id,
                backend,
                suite_hash,
                started_at,
                resumed,
                plan,
                ..
            } => {
                let loaded = self.with_store(|store| {
                    if *resumed {
                        store.set_run_status(run_id, "running", None)?;
                        store.run_state(run_id)
                    } else {
                        store.create_run(&RunRecord {
                            run_id: run_id.clone(),
                            suite_hash: suite_hash.clone(),
                            backend: backend.clone(),
                            started_at: started_at.clone(),
                            finished_at: None,
                            status: "running".into(),
                            config: plan.to_json(),
                        })?;
                        Ok(RunState::default())
                    }
                })?;
                *self.run.lock().unwrap_or_else(|e| e.into_inner()) = (run_id.clone(), loaded);
                Ok(())
            }
            Event::AttemptFinished { record, .. } => {
                record.id = self.with_store(|store| store.insert_attempt(record))?;
                Ok(())
            }
            Event::VerdictUpdated {
                task,
                target_rounds,
                decision,
                ..
            } => self.save_state(|state| {
                state.tasks.insert(
                    task.clone(),
                    TaskRounds {
                        target_rounds: *target_rounds,
                        decision: *decision,
                    },
                );
            }),
            Event::RunStopped {
                run_id,
                reason,
                stopped_at,
                ..
            } => {
                // An interrupted run is not over: it has no finish time until it resumes.
                let finished_at = match reason {
                    RunStopReason::Interrupted { .. } => None,
                    _ => Some(stopped_at.as_str()),
                };
                self.with_store(|store| {
                    store.set_run_status(run_id, reason.run_status(), finished_at)
                })?;
                let reason = reason.clone();
                self.save_state(|state| state.stopped = Some(reason))
            }
            _ => Ok(()),
        }
    }
}
