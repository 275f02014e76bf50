//! The run loop. Each task's variants run in rounds, each round a seeded random permutation of
//! the variants (so drift affects all alike); a variant is prepared (and checked) once, before
//! its first attempt. There is one loop, [`Runner::run_rounds`], over one or many tasks:
//!
//! - attempt by attempt (`local`, `docker`): workers take tasks from a queue (`--parallel N`),
//!   each running its task's rounds on its slot, every attempt recorded before the next begins;
//! - round by round (batch backends, [`Backend::runs_rounds`]): round `r` of every task is
//!   handed to the backend at once, recorded when it ends, then round `r + 1` follows.
//!
//! Adaptive runs look at a task's comparisons when it reaches its target and add rounds only
//! while a comparison is unclear. Everything recorded goes through the event stream's store
//! writer; a resumed run skips what is recorded.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use perfarena_backend::git::GitRepo;
use perfarena_backend::{AttemptSpec, Backend, CancelToken, Prepared, RoundSpec};
use perfarena_core::analysis::{AnalysisSettings, task_measurements};
use perfarena_core::events::{Event, RunStopReason, VerdictLine};
use perfarena_core::plan::Repeats;
use perfarena_core::stats::{
    AdaptiveRepeats, RoundsDecision, StatsConfig, interleaved_order, needs_more_rounds,
};
use perfarena_core::triage::Triage;
use perfarena_core::{AttemptRecord, AttemptStage, CommitId, Suite, Task, VariantKind};

use crate::events::RunEvents;
use crate::lifecycle::{Check, Lifecycle, Next, VariantContext};
use crate::plan::PlannedRun;
use crate::schedule::{Slot, SlotPool, TaskQueue};
use crate::{Result, RunError, now};

/// Everything the runner needs besides the run itself.
pub struct Runner<'a> {
    pub suite: &'a Suite,
    pub backend: &'a dyn Backend,
    /// The store directory (`.perfarena`): logs go under `runs/<run>/…`.
    pub state_dir: PathBuf,
    pub triage: Triage,
    /// Set by a signal (or by a failing worker, to stop the others).
    pub cancel: CancelToken,
    /// The repository under test, for choosing a task's `[[bench.eras]]` (`None`: eras that
    /// need a file never match).
    pub repo: Option<GitRepo>,
    /// Attempts running at once (`--parallel`): tasks are spread over this many workers, each
    /// keeping its task's interleaved order. Batch backends take whole rounds instead.
    pub parallel: usize,
    /// Resource slots (GPU device ids); each worker holds one while it runs.
    pub slots: Vec<Slot>,
    /// What happens to a variant between its preparation and its measurement.
    pub lifecycle: &'a dyn Lifecycle,
}

/// How a run ended (an error is returned as such, after the run is marked failed).
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Attempts recorded in this session.
    pub recorded: u64,
    pub reason: RunStopReason,
}

/// One execution of a run: the run and where its events go.
pub(crate) struct RunCx<'r> {
    pub run: &'r PlannedRun,
    pub events: RunEvents<'r>,
    recorded: AtomicU64,
}

/// An attempt set up by the runner.
#[allow(clippy::large_enum_variant)] // one per attempt, short-lived
pub(crate) enum Begun {
    /// Ready for the backend.
    Ready(AttemptSpec, AttemptRecord),
    /// Ended before it could start (a command template that does not expand).
    Ended(AttemptRecord),
}

/// Where a variant stands.
enum Phase {
    /// Prepared and checked: its attempts can run.
    Ready(Prepared),
    /// Its preparation or check failed (recorded once); it is skipped.
    Failed,
}

/// A task's way through its rounds.
struct TaskRun<'t> {
    task: &'t Task,
    variants: Vec<VariantKind>,
    /// Attempts recorded (variant, round), which a resumed run skips.
    done: BTreeSet<(VariantKind, u32)>,
    phases: HashMap<VariantKind, Phase>,
    /// Each round's order of variant indices.
    order: Vec<Vec<usize>>,
    /// Rounds (warm-up included) the task gets; adaptive runs raise it.
    target_rounds: u32,
    /// Stopped by the lifecycle (fail-fast): no more attempts.
    stopped: bool,
    /// The task's attempts recorded in this run, for adaptive looks.
    records: Vec<AttemptRecord>,
}

impl<'t> TaskRun<'t> {
    fn new(run: &PlannedRun, task: &'t Task) -> TaskRun<'t> {
        let plan = &run.plan;
        let variants = plan.variants(&task.commit);
        let records: Vec<AttemptRecord> = run
            .recorded
            .iter()
            .filter(|a| a.task == task.commit)
            .cloned()
            .collect();
        // An attempt cut short by a fatal backend error stays recorded but is not done.
        let done = records
            .iter()
            .filter(|a| !a.rerun_on_resume)
            .map(|a| (a.variant.clone(), a.round_idx))
            .collect();
        let phases = records
            .iter()
            .filter(|a| a.stage == AttemptStage::Prepare)
            .map(|a| (a.variant.clone(), Phase::Failed))
            .collect();
        let order = interleaved_order(
            variants.len(),
            (plan.warmup + plan.repeats.max_rounds()) as usize,
            plan.seed ^ seed_of(&task.commit),
        );
        let initial = plan.warmup + plan.repeats.initial_rounds();
        // A resumed adaptive run keeps the rounds its decisions asked for.
        let decided = match plan.repeats {
            Repeats::Auto { .. } => run.state.tasks.get(&task.commit).map(|t| t.target_rounds),
            Repeats::Fixed { .. } => None,
        };
        TaskRun {
            task,
            variants,
            done,
            phases,
            order,
            target_rounds: decided.map_or(initial, |d| d.max(initial)),
            stopped: false,
            records,
        }
    }

    fn wants(&self, round: u32) -> bool {
        !self.stopped && round < self.target_rounds
    }

    fn skips(&self, variant: &VariantKind, round: u32) -> bool {
        self.done.contains(&(variant.clone(), round))
            || matches!(self.phases.get(variant), Some(Phase::Failed))
    }

    fn prepared(&self, variant: &VariantKind) -> Option<&Prepared> {
        match self.phases.get(variant) {
            Some(Phase::Ready(prepared)) => Some(prepared),
            _ => None,
        }
    }
}

impl Runner<'_> {
    /// Runs (or resumes) a planned run: announces it, runs what is not recorded, and says how
    /// it stopped. Its events go to `events`; the recorder writes the run, its attempts and
    /// its state. A signal stops it as interrupted (`Ok`); an error is returned after the run
    /// is marked failed.
    pub fn execute(&self, run: &PlannedRun, events: RunEvents<'_>) -> Result<RunOutcome> {
        let swept = self
            .backend
            .sweep_orphans(&[])
            .map_err(|e| RunError::Input(format!("orphan sweep: {e}")))?;
        if swept > 0 {
            events.display.emit(Event::Message {
                text: format!(
                    "removed {swept} orphaned process group(s)/container(s) of earlier runs"
                ),
            });
        }
        events.commit(Event::RunPlanned {
            run_id: run.run_id.0.clone(),
            backend: run.backend.clone(),
            suite_hash: run.suite_hash.clone(),
            started_at: now(),
            resumed: run.resumed,
            attempts_planned: run.plan.initial_attempts(),
            recorded: run.recorded.len() as u64,
            plan: run.plan.clone(),
        })?;
        let cx = RunCx {
            run,
            events,
            recorded: AtomicU64::new(0),
        };
        let result = self.schedule(&cx);
        let reason = match &result {
            Ok(()) => RunStopReason::Completed,
            Err(RunError::Cancelled) => RunStopReason::Interrupted {
                signal: self
                    .cancel
                    .signal()
                    .and_then(crate::signals::name)
                    .map(String::from),
            },
            Err(e) => RunStopReason::Error {
                message: e.to_string(),
            },
        };
        if reason != RunStopReason::Completed {
            let _ = self.backend.cancel(&run.run_id);
        }
        if matches!(reason, RunStopReason::Interrupted { .. }) {
            let _ = self.backend.sweep_orphans(&[]);
        }
        let recorded = cx.recorded.load(Ordering::SeqCst);
        let stopped = events.commit(Event::RunStopped {
            run_id: run.run_id.0.clone(),
            reason: reason.clone(),
            recorded,
            stopped_at: now(),
        });
        match (result, stopped) {
            (Ok(()) | Err(RunError::Cancelled), Ok(_)) => Ok(RunOutcome { recorded, reason }),
            (Ok(()) | Err(RunError::Cancelled), Err(e)) => Err(e.into()),
            (Err(e), Ok(_)) => Err(e),
            (Err(e), Err(status_error)) => {
                // A full disk may refuse this too: the real error is the one to report.
                events.display.emit(Event::Message {
                    text: format!(
                        "warning: cannot mark run {} as failed: {status_error}",
                        run.run_id
                    ),
                });
                Err(e)
            }
        }
    }

    /// Hands the tasks out: all at once to a batch backend, else to the workers.
    fn schedule(&self, cx: &RunCx<'_>) -> Result<()> {
        let tasks = cx.run.tasks.iter().map(|task| TaskRun::new(cx.run, task));
        if self.backend.runs_rounds() {
            let mut tasks: Vec<TaskRun<'_>> = tasks.collect();
            let result = self.run_rounds(cx, &mut tasks, &Slot::default());
            self.release(&tasks);
            return result;
        }
        let queue = TaskQueue::new(tasks);
        let slots = SlotPool::new(self.slots.clone());
        let workers = self.parallel.min(queue.len()).max(1);
        if workers == 1 {
            return self.worker(cx, &queue, &slots);
        }
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let result = self.worker(cx, &queue, &slots);
                        if matches!(&result, Err(e) if !matches!(e, RunError::Cancelled)) {
                            // A fatal error stops the others: their attempts in flight are
                            // torn down, not recorded, and rerun on resume.
                            self.cancel.cancel();
                        }
                        result
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(RunError::WorkerPanicked)))
                .collect()
        });
        let mut interrupted = false;
        for result in results {
            match result {
                Ok(()) => {}
                Err(RunError::Cancelled) => interrupted = true,
                Err(e) => return Err(e),
            }
        }
        if interrupted {
            return Err(RunError::Cancelled);
        }
        Ok(())
    }

    /// One worker: holds a slot and runs tasks from the queue, one at a time.
    fn worker<'t>(
        &self,
        cx: &RunCx<'_>,
        queue: &TaskQueue<TaskRun<'t>>,
        slots: &SlotPool,
    ) -> Result<()> {
        let lease = slots.acquire();
        while let Some(mut task) = queue.next() {
            let result = self.run_rounds(cx, std::slice::from_mut(&mut task), lease.slot());
            self.release(std::slice::from_ref(&task));
            result?;
        }
        Ok(())
    }

    /// The round loop: round `r` of every task that wants it, then round `r + 1`. A backend
    /// that runs attempts one by one gets each when its turn comes (recorded before the next
    /// begins); a batch backend gets the whole round of every task at once.
    fn run_rounds(&self, cx: &RunCx<'_>, tasks: &mut [TaskRun<'_>], slot: &Slot) -> Result<()> {
        let batched = self.backend.runs_rounds();
        let mut round = 0u32;
        while tasks.iter().any(|t| t.wants(round)) {
            self.check_cancel()?;
            // (task index, attempts begun) of this round, for a batch backend.
            let mut batch: Vec<(usize, Vec<(AttemptSpec, AttemptRecord)>)> = Vec::new();
            for (t, task) in tasks.iter_mut().enumerate() {
                let mut begun = Vec::new();
                for idx in task.order[round as usize].clone() {
                    let variant = task.variants[idx].clone();
                    if !task.wants(round) || task.skips(&variant, round) {
                        continue;
                    }
                    self.check_cancel()?;
                    if !self.ensure_ready(cx, task, &variant, round)? {
                        continue;
                    }
                    let Some(prepared) = task.prepared(&variant) else {
                        continue;
                    };
                    match self.begin_attempt(cx, task.task, &variant, round, prepared, slot)? {
                        Begun::Ended(record) => self.finish(cx, task, record)?,
                        Begun::Ready(spec, record) if batched => begun.push((spec, record)),
                        Begun::Ready(spec, record) => {
                            let outcome = self.backend.run(&spec, prepared, &cx.events);
                            let record = self.end_attempt(record, outcome)?;
                            self.finish(cx, task, record)?;
                        }
                    }
                }
                if !begun.is_empty() {
                    batch.push((t, begun));
                }
            }
            if !batch.is_empty() {
                self.run_batch(cx, tasks, round, batch)?;
            }
            round += 1;
            for task in tasks.iter_mut() {
                if !task.stopped && round == task.target_rounds {
                    self.adaptive_look(cx, task, round)?;
                }
            }
        }
        Ok(())
    }

    /// Hands one round of several tasks to a batch backend and records every result.
    fn run_batch(
        &self,
        cx: &RunCx<'_>,
        tasks: &mut [TaskRun<'_>],
        round: u32,
        batch: Vec<(usize, Vec<(AttemptSpec, AttemptRecord)>)>,
    ) -> Result<()> {
        let outcomes = {
            let rounds: Vec<RoundSpec<'_>> = batch
                .iter()
                .map(|(t, begun)| RoundSpec {
                    task: tasks[*t].task.commit.clone(),
                    round_idx: round,
                    attempts: begun
                        .iter()
                        .filter_map(|(spec, _)| {
                            let prepared = tasks[*t].prepared(&spec.variant)?;
                            Some((spec.clone(), prepared))
                        })
                        .collect(),
                })
                .collect();
            self.backend.run_rounds(&rounds, &cx.events)?
        };
        let mut first_error = None;
        for ((t, begun), results) in batch.into_iter().zip(outcomes) {
            for ((_, record), result) in begun.into_iter().zip(results) {
                let record = self.end_attempt(record, result)?;
                // Record the whole round before stopping, so that nothing measured is lost.
                if let Err(e) = self.finish(cx, &mut tasks[t], record) {
                    first_error = first_error.or(Some(e));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(RunError::Cancelled);
        }
        Ok(())
    }

    /// Prepares and checks `variant` unless done already; a variant that fails either is
    /// recorded once (at `round`) and `false` returned.
    fn ensure_ready(
        &self,
        cx: &RunCx<'_>,
        task: &mut TaskRun<'_>,
        variant: &VariantKind,
        round: u32,
    ) -> Result<bool> {
        match task.phases.get(variant) {
            Some(Phase::Ready(_)) => return Ok(true),
            Some(Phase::Failed) => return Ok(false),
            None => {}
        }
        let prepared = self.prepare(cx, task.task, variant)?;
        let failure = match &prepared.failure {
            Some(failure) => Some(failure.clone()),
            None => {
                let log_dir = self.variant_dir(cx, task.task, variant);
                let check = self.lifecycle.check(&VariantContext {
                    run_id: &cx.run.run_id,
                    task: task.task,
                    variant,
                    prepared: &prepared,
                    backend: self.backend,
                    events: &cx.events,
                    cancel: &self.cancel,
                    log_dir: &log_dir,
                })?;
                match check {
                    Check::Pass => None,
                    Check::Fail(failure) => Some(failure),
                }
            }
        };
        let Some(failure) = failure else {
            task.phases.insert(variant.clone(), Phase::Ready(prepared));
            return Ok(true);
        };
        let record = self.failed_variant_record(cx, task.task, variant, round, &failure);
        task.phases.insert(variant.clone(), Phase::Failed);
        let _ = self.backend.release(&prepared);
        self.finish(cx, task, record)?;
        Ok(false)
    }

    /// Records an ended attempt through the event stream; an error when recording fails or
    /// when the backend said the run must stop (the attempt is recorded first).
    fn finish(&self, cx: &RunCx<'_>, task: &mut TaskRun<'_>, record: AttemptRecord) -> Result<()> {
        let stops_run = record.rerun_on_resume;
        let message = record.message.clone();
        let primary = record.sample(&self.suite.metric.primary);
        let record = match cx.events.attempt_finished(record, primary) {
            Ok(record) => record,
            Err(e) if stops_run => {
                return Err(RunError::StoppedUnrecorded {
                    message,
                    record_error: e.to_string(),
                });
            }
            Err(e) => return Err(RunError::Record(e)),
        };
        if stops_run {
            return Err(RunError::Stopped { message });
        }
        cx.recorded.fetch_add(1, Ordering::SeqCst);
        task.done.insert((record.variant.clone(), record.round_idx));
        if self.lifecycle.after_attempt(task.task, &record) == Next::StopTask {
            task.stopped = true;
        }
        task.records.push(record);
        Ok(())
    }

    /// After `rounds` rounds (warm-up included) of an adaptive run reached the task's target:
    /// how many it needs now. The decision goes to the event stream (and the run's state).
    fn adaptive_look(&self, cx: &RunCx<'_>, task: &mut TaskRun<'_>, rounds: u32) -> Result<()> {
        let Repeats::Auto { min, max } = cx.run.plan.repeats else {
            return Ok(());
        };
        let warmup = cx.run.plan.warmup;
        let rounds_done = rounds.saturating_sub(warmup);
        let adaptive = AdaptiveRepeats {
            min_rounds: min as usize,
            max_rounds: max as usize,
            ..AdaptiveRepeats::default()
        };
        let base = StatsConfig {
            confidence: self.suite.stats.confidence,
            delta: self.suite.stats.delta,
            ..StatsConfig::default()
        };
        let settings = AnalysisSettings {
            primary: self.suite.metric.primary.clone(),
            direction: self.suite.metric.direction,
            stats: adaptive.stats_config(&base),
        };
        let reports = task_measurements(std::slice::from_ref(task.task), &task.records, &settings);
        let named = reports
            .first()
            .map(|r| r.comparisons.as_slice())
            .unwrap_or_default();
        let comparisons: Vec<_> = named.iter().map(|c| c.comparison.clone()).collect();
        let decision = needs_more_rounds(&comparisons, rounds_done as usize, &adaptive);
        let target = match decision {
            RoundsDecision::Continue { until_round } => (until_round as u32).min(max),
            RoundsDecision::Stop { .. } => rounds_done,
        };
        task.target_rounds = warmup + target;
        cx.events.commit(Event::VerdictUpdated {
            task: task.task.commit.clone(),
            rounds_done,
            target_rounds: task.target_rounds,
            decision,
            comparisons: named
                .iter()
                .map(|c| VerdictLine {
                    treatment: c.treatment.clone(),
                    control: c.control.clone(),
                    verdict: c.comparison.verdict,
                    ratio: c.comparison.ratio,
                    ci_low: c.comparison.ci_low,
                    ci_high: c.comparison.ci_high,
                })
                .collect(),
        })?;
        Ok(())
    }

    /// Releases the prepared variants of tasks that are done.
    fn release(&self, tasks: &[TaskRun<'_>]) {
        for phase in tasks.iter().flat_map(|t| t.phases.values()) {
            if let Phase::Ready(prepared) = phase {
                let _ = self.backend.release(prepared);
            }
        }
    }
}

/// A per-task seed so tasks do not share one shuffle.
fn seed_of(commit: &CommitId) -> u64 {
    u64::from_str_radix(commit.short(15), 16).unwrap_or(0)
}
