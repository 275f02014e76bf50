//! The run engine on scripted measurements: a backend that "measures" fixed values (so the
//! adaptive decisions are exact, not subject to this machine's noise), a real store, and the
//! event stream the runner emits: its sequence, what the store writer recorded from it, resume,
//! the lifecycle hooks, slots and the errors that stop a run.

use std::collections::BTreeMap;
use std::sync::Mutex;

use perfarena_backend::{
    AttemptOutcome, AttemptSpec, Backend, BackendError, BackendKind, CancelToken, PrepareFailure,
    Prepared, RoundOutcomes, RoundSpec, VariantSpec,
};
use perfarena_core::events::{Event, EventSink, RunStopReason};
use perfarena_core::plan::RunState;
use perfarena_core::stats::{RoundsDecision, interleaved_order};
use perfarena_core::triage::Triage;
use perfarena_core::{
    AttemptRecord, AttemptStage, AttemptStatus, CommitId, RunId, Suite, Task, VariantKind,
};
use perfarena_runner::lifecycle::{Check, Lifecycle, Next, VariantContext};
use perfarena_runner::schedule::Slot;
use perfarena_runner::{
    PlainLifecycle, PlannedRun, RunError, RunEvents, RunOutcome, RunRequest, Runner, StoreWriter,
    plan,
};
use perfarena_store::{AttemptFilter, Store};

type Value = fn(&CommitId, &VariantKind, u32) -> f64;
/// One `run` call: (task, variant, round, GPU slot).
type Ran = (CommitId, VariantKind, u32, Vec<String>);

/// Writes a vLLM result table whose output throughput is `value(task, variant, round)`.
struct ScriptedBackend {
    value: Value,
    /// Takes whole rounds (like the slurm backend with `job_unit = "round"`).
    rounds: bool,
    /// Each `run_rounds` call: (task, round, attempts) of every round in it.
    batches: Mutex<Vec<Vec<(CommitId, u32, usize)>>>,
    /// Every `run`: (task, variant, round, GPU slot).
    runs: Mutex<Vec<Ran>>,
    /// After this many attempts, the next one cancels the run (as a signal would).
    cancel_after: Option<usize>,
    /// The attempt (variant, round) whose backend fails as if the daemon were gone.
    unavailable_at: Option<(VariantKind, u32)>,
    /// Checked in every `run`: the store holds every attempt that ended before this one.
    store_dir: Option<std::path::PathBuf>,
    released: Mutex<usize>,
}

impl ScriptedBackend {
    fn new(value: Value) -> ScriptedBackend {
        ScriptedBackend {
            value,
            rounds: false,
            batches: Mutex::new(Vec::new()),
            runs: Mutex::new(Vec::new()),
            cancel_after: None,
            unavailable_at: None,
            store_dir: None,
            released: Mutex::new(0),
        }
    }
}

impl Backend for ScriptedBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Local
    }
    fn prepare(
        &self,
        spec: &VariantSpec,
        _events: &dyn EventSink,
    ) -> Result<Prepared, BackendError> {
        let broken = spec
            .variant
            .candidate()
            .is_some_and(|c| c.as_str() == "broken");
        Ok(Prepared {
            variant: spec.variant.clone(),
            workdir: None,
            image: None,
            rebuild_paths: Vec::new(),
            harness_paths: Vec::new(),
            failure: broken.then(|| PrepareFailure {
                status: AttemptStatus::PatchFailed,
                message: "error: patch failed: server.py:3".into(),
                log: None,
            }),
        })
    }
    fn run(
        &self,
        spec: &AttemptSpec,
        _prepared: &Prepared,
        _events: &dyn EventSink,
    ) -> Result<AttemptOutcome, BackendError> {
        let ran = {
            let mut runs = self.runs.lock().unwrap();
            runs.push((
                spec.task.clone(),
                spec.variant.clone(),
                spec.round_idx,
                spec.gpus.clone(),
            ));
            runs.len()
        };
        if let Some(dir) = &self.store_dir {
            // A connection of its own: what the store writer committed, nothing in flight.
            let store = Store::open_existing(dir).unwrap();
            let committed = store.count_attempts(Some(spec.run_id.0.as_str())).unwrap();
            assert_eq!(
                committed as usize,
                ran - 1,
                "attempt {ran} began before the last was committed"
            );
        }
        if self.cancel_after == Some(ran - 1) {
            spec.cancel.cancel();
            return Err(BackendError::Cancelled);
        }
        if self.unavailable_at == Some((spec.variant.clone(), spec.round_idx)) {
            return Err(BackendError::Unavailable(
                "cannot reach the Docker daemon".into(),
            ));
        }
        std::fs::create_dir_all(&spec.attempt_dir).unwrap();
        let value = (self.value)(&spec.task, &spec.variant, spec.round_idx);
        let log = spec.attempt_dir.join("client.log");
        let table = format!(
            "============ Serving Benchmark Result ============\nSuccessful requests:                     10\nBenchmark duration (s):                  1.00\nOutput token throughput (tok/s):         {value:.3}\n==================================================\n"
        );
        std::fs::write(&log, table).unwrap();
        Ok(AttemptOutcome {
            status: AttemptStatus::Ok,
            exit_code: Some(0),
            message: String::new(),
            server_log: None,
            client_log: log,
            duration_s: 0.1,
            ready_after_s: None,
            oom_killed: false,
            builtin: Default::default(),
        })
    }
    fn runs_rounds(&self) -> bool {
        self.rounds
    }
    fn run_rounds(
        &self,
        rounds: &[RoundSpec<'_>],
        events: &dyn EventSink,
    ) -> Result<RoundOutcomes, BackendError> {
        self.batches.lock().unwrap().push(
            rounds
                .iter()
                .map(|r| (r.task.clone(), r.round_idx, r.attempts.len()))
                .collect(),
        );
        Ok(rounds
            .iter()
            .map(|round| {
                round
                    .attempts
                    .iter()
                    .map(|(spec, p)| self.run(spec, p, events))
                    .collect()
            })
            .collect())
    }
    fn cancel(&self, _run_id: &RunId) -> Result<(), BackendError> {
        Ok(())
    }
    fn sweep_orphans(&self, _live_runs: &[RunId]) -> Result<usize, BackendError> {
        Ok(0)
    }
    fn release(&self, _prepared: &Prepared) -> Result<(), BackendError> {
        *self.released.lock().unwrap() += 1;
        Ok(())
    }
}

/// Keeps every event it is shown.
#[derive(Default)]
struct Collect(Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Collect {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

fn commit(c: char) -> CommitId {
    CommitId::parse(&c.to_string().repeat(40)).unwrap()
}

/// A project: a suite, a store with tasks `tasks` (all of parent `b…`), candidate patches.
struct Project {
    dir: tempfile::TempDir,
    suite: Suite,
}

impl Project {
    fn new(tasks: &[char], suite_extra: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let suite = Suite::from_toml_str(
            &format!("[bench]\nclient = \"bench\"\n[stats]\nmin_repeats = 3\nmax_repeats = 12\n{suite_extra}"),
            "s.toml",
        )
        .unwrap();
        let tasks: Vec<Task> = tasks
            .iter()
            .map(|c| {
                let mut task = Task::new(commit(*c));
                task.parent = Some(commit('b'));
                task.models = vec!["m".into()];
                task
            })
            .collect();
        let project = Project { dir, suite };
        project
            .store()
            .upsert_tasks(&tasks, "tasks.jsonl", "2026-01-01T00:00:00Z")
            .unwrap();
        project
    }

    fn state_dir(&self) -> std::path::PathBuf {
        self.dir.path().join(".perfarena")
    }

    fn store(&self) -> Store {
        Store::open(&self.state_dir()).unwrap()
    }

    fn patch(&self, name: &str) -> String {
        let path = self.dir.path().join(format!("{name}.patch"));
        std::fs::write(&path, "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n").unwrap();
        format!("{name}={}", path.display())
    }

    fn plan(&self, request: &RunRequest) -> PlannedRun {
        plan::plan_new(&self.store(), &self.suite, request, "local").unwrap()
    }

    fn resume(&self, run_id: &str) -> PlannedRun {
        let store = self.store();
        let run = plan::run_to_resume(&store, Some(run_id)).unwrap();
        plan::plan_resume(&store, &run).unwrap()
    }

    /// Executes `run` on `backend`; returns the outcome and every event shown.
    fn execute(
        &self,
        run: &PlannedRun,
        backend: &ScriptedBackend,
        parallel: usize,
        slots: Vec<Slot>,
        lifecycle: &dyn Lifecycle,
    ) -> (Result<RunOutcome, RunError>, Vec<Event>) {
        let writer = StoreWriter::new(self.store());
        let shown = Collect::default();
        let runner = Runner {
            suite: &self.suite,
            backend,
            state_dir: self.state_dir(),
            triage: Triage::builtin(),
            cancel: CancelToken::new(),
            repo: None,
            parallel,
            slots,
            lifecycle,
        };
        let outcome = runner.execute(run, RunEvents::new(&writer, &shown));
        (outcome, shown.take())
    }

    fn attempts(&self) -> Vec<AttemptRecord> {
        self.store().attempts(&AttemptFilter::default()).unwrap()
    }
}

fn request(repeats: &str) -> RunRequest {
    RunRequest {
        repeats: Some(repeats.into()),
        seed: Some(1),
        run_id: Some("r1".into()),
        ..RunRequest::default()
    }
}

/// Runs the tasks adaptively (min 3, max 12 rounds); returns how many attempts each got, and
/// the backend (for its batches).
fn adaptive_run(
    value: Value,
    tasks: &[char],
    rounds: bool,
) -> (BTreeMap<CommitId, usize>, ScriptedBackend) {
    let project = Project::new(tasks, "");
    let run = project.plan(&request("auto"));
    let backend = ScriptedBackend {
        rounds,
        ..ScriptedBackend::new(value)
    };
    let (outcome, _) = project.execute(&run, &backend, 1, Vec::new(), &PlainLifecycle);
    let outcome = outcome.unwrap();
    assert_eq!(outcome.reason, RunStopReason::Completed);
    assert_eq!(backend.runs.lock().unwrap().len() as u64, outcome.recorded);
    let mut per_task = BTreeMap::new();
    for attempt in project.attempts() {
        *per_task.entry(attempt.task).or_insert(0) += 1;
    }
    (per_task, backend)
}

/// A small deterministic jitter of ±1 % by round.
fn jitter(round: u32) -> f64 {
    [
        1.0, 0.99, 1.01, 0.995, 1.005, 0.992, 1.008, 0.997, 1.003, 0.99, 1.01, 1.0,
    ][round as usize % 12]
}

fn clear_win(_: &CommitId, variant: &VariantKind, round: u32) -> f64 {
    match variant {
        VariantKind::Human => 150.0 * jitter(round + 5),
        _ => 100.0 * jitter(round),
    }
}

fn no_change(_: &CommitId, variant: &VariantKind, round: u32) -> f64 {
    match variant {
        VariantKind::Human => 100.0 * jitter(round + 3),
        _ => 100.0 * jitter(round),
    }
}

/// Clear win for task `a…`, equal performance (inconclusive at first) for task `c…`.
fn two_tasks(task: &CommitId, variant: &VariantKind, round: u32) -> f64 {
    if task.as_str().starts_with('a') {
        clear_win(task, variant, round)
    } else {
        no_change(task, variant, round)
    }
}

#[test]
fn a_clear_win_stops_at_the_first_look() {
    let (per_task, _) = adaptive_run(clear_win, &['a'], false);
    assert_eq!(per_task.values().sum::<usize>(), 6, "3 rounds × 2 variants");
}

#[test]
fn an_unclear_comparison_gets_more_rounds() {
    // Equal performance with ±1 % noise: inconclusive after 3 rounds, but ±2 % equivalence
    // is reachable with more, so rounds are added (never past the maximum).
    let (per_task, _) = adaptive_run(no_change, &['a'], false);
    let attempts: usize = per_task.values().sum();
    assert!(attempts > 6 && attempts <= 24, "{attempts}");
}

#[test]
fn a_round_backend_gets_each_round_of_every_task_at_once() {
    let (per_task, backend) = adaptive_run(two_tasks, &['a', 'c'], true);
    let (sequential, _) = adaptive_run(two_tasks, &['a', 'c'], false);
    assert_eq!(per_task, sequential, "the same decisions either way");
    assert_eq!(per_task[&commit('a')], 6, "the clear win stops at 3 rounds");
    assert!(per_task[&commit('c')] > 6, "{per_task:?}");
    let batches = backend.batches.lock().unwrap();
    // Round-major: batch r holds round r of every task still running, whole rounds.
    for (r, batch) in batches.iter().enumerate() {
        assert!(
            batch
                .iter()
                .all(|(_, round, n)| *round as usize == r && *n == 2),
            "{batches:?}"
        );
        let tasks: Vec<char> = batch
            .iter()
            .map(|(t, _, _)| t.as_str().chars().next().unwrap())
            .collect();
        if r < 3 {
            assert_eq!(tasks, vec!['a', 'c'], "{batches:?}");
        } else {
            assert_eq!(
                tasks,
                vec!['c'],
                "only the unclear task goes on: {batches:?}"
            );
        }
    }
    assert_eq!(batches.len() * 2, per_task[&commit('c')]);
}

/// What an event says, in a word, for comparing sequences.
fn key(event: &Event) -> String {
    match event {
        Event::RunPlanned {
            resumed, recorded, ..
        } => format!("planned resumed={resumed} recorded={recorded}"),
        Event::PrepareStarted { variant, .. } => format!("prepare {variant}"),
        Event::AttemptStarted {
            variant, round_idx, ..
        } => format!("start {variant} {round_idx}"),
        Event::AttemptFinished { record, .. } => format!(
            "finish {} {} {}",
            record.variant, record.round_idx, record.status
        ),
        Event::VerdictUpdated {
            rounds_done,
            target_rounds,
            ..
        } => {
            format!("verdict {rounds_done} -> {target_rounds}")
        }
        Event::RunStopped {
            reason, recorded, ..
        } => format!("stopped {} {recorded}", reason.run_status()),
        other => format!("{other:?}"),
    }
}

#[test]
fn a_run_produces_the_expected_event_sequence() {
    let project = Project::new(&['a'], "");
    let mut req = request("2");
    req.candidates = vec![project.patch("broken")];
    let run = project.plan(&req);
    let backend = ScriptedBackend::new(clear_win);
    let (outcome, events) = project.execute(&run, &backend, 1, Vec::new(), &PlainLifecycle);
    let outcome = outcome.unwrap();
    assert_eq!(
        outcome,
        RunOutcome {
            recorded: 5,
            reason: RunStopReason::Completed
        }
    );

    // The rounds' order is the seeded shuffle of (baseline, human, candidate:broken): the
    // plan's seed xor the task's seed (its first 15 hex digits).
    let variants = [
        VariantKind::Baseline,
        VariantKind::Human,
        "candidate:broken".parse().unwrap(),
    ];
    let task_seed = u64::from_str_radix(commit('a').short(15), 16).unwrap();
    let order = interleaved_order(3, 2, 1 ^ task_seed);
    let mut expected = vec!["planned resumed=false recorded=0".to_string()];
    let mut prepared = Vec::new();
    for (round, indices) in order.iter().enumerate() {
        for &i in indices {
            let variant = &variants[i];
            if !prepared.contains(variant) {
                prepared.push(variant.clone());
                expected.push(format!("prepare {variant}"));
                if variant.candidate().is_some() {
                    // Recorded once, at the round it was to run first; skipped after.
                    expected.push(format!("finish {variant} {round} patch_failed"));
                    continue;
                }
            }
            if variant.candidate().is_none() {
                expected.push(format!("start {variant} {round}"));
                expected.push(format!("finish {variant} {round} ok"));
            }
        }
    }
    expected.push("stopped finished 5".into());
    let seen: Vec<String> = events.iter().map(key).collect();
    assert_eq!(seen, expected);
    assert_eq!(
        *backend.released.lock().unwrap(),
        3,
        "every prepared variant is released"
    );
}

#[test]
fn the_store_holds_exactly_what_the_events_carried() {
    let project = Project::new(&['a', 'c'], "");
    let mut req = request("auto");
    req.candidates = vec![project.patch("broken")];
    let run = project.plan(&req);
    let backend = ScriptedBackend::new(two_tasks);
    let (outcome, events) = project.execute(&run, &backend, 1, Vec::new(), &PlainLifecycle);
    outcome.unwrap();

    let carried: Vec<AttemptRecord> = events
        .iter()
        .filter_map(|e| match e {
            Event::AttemptFinished { record, .. } => Some((**record).clone()),
            _ => None,
        })
        .collect();
    let stored = project.attempts();
    assert_eq!(
        stored, carried,
        "the same records, ids included, in the same order"
    );
    assert!(stored.iter().all(|a| a.id > 0));
    assert_eq!(
        stored
            .iter()
            .filter(|a| a.stage == AttemptStage::Prepare)
            .count(),
        2,
        "one preparation failure per task"
    );

    let store = project.store();
    let row = store.run("r1").unwrap().unwrap();
    assert_eq!(row.status, "finished");
    assert!(row.finished_at.is_some());
    let Some(Event::RunPlanned {
        plan, suite_hash, ..
    }) = events.first()
    else {
        panic!("the first event announces the run: {:?}", events.first());
    };
    assert_eq!(row.config, plan.to_json());
    assert_eq!(&row.suite_hash, suite_hash);

    // The run's state holds the last adaptive decision of each task, as the events said.
    let mut decided = RunState::default();
    for event in &events {
        if let Event::VerdictUpdated {
            task,
            target_rounds,
            decision,
            ..
        } = event
        {
            decided.tasks.insert(
                task.clone(),
                perfarena_core::plan::TaskRounds {
                    target_rounds: *target_rounds,
                    decision: *decision,
                },
            );
        }
    }
    decided.stopped = Some(RunStopReason::Completed);
    assert_eq!(store.run_state("r1").unwrap(), decided);
    assert!(matches!(
        decided.tasks[&commit('a')].decision,
        RoundsDecision::Stop { .. }
    ));
}

#[test]
fn every_attempt_is_committed_before_the_next_begins() {
    let project = Project::new(&['a', 'c'], "");
    let run = project.plan(&request("3"));
    let backend = ScriptedBackend {
        store_dir: Some(project.state_dir()),
        ..ScriptedBackend::new(clear_win)
    };
    let (outcome, _) = project.execute(&run, &backend, 1, Vec::new(), &PlainLifecycle);
    assert_eq!(outcome.unwrap().recorded, 12);
}

#[test]
fn an_interrupted_adaptive_run_resumes_with_its_decisions() {
    let (uninterrupted, _) = adaptive_run(two_tasks, &['a', 'c'], false);
    let project = Project::new(&['a', 'c'], "");
    let run = project.plan(&request("auto"));
    // Interrupted in task c's extra rounds, after its first look asked for more.
    let backend = ScriptedBackend {
        cancel_after: Some(uninterrupted[&commit('a')] + 8),
        ..ScriptedBackend::new(two_tasks)
    };
    let (outcome, events) = project.execute(&run, &backend, 1, Vec::new(), &PlainLifecycle);
    let outcome = outcome.unwrap();
    assert_eq!(outcome.reason, RunStopReason::Interrupted { signal: None });
    assert_eq!(
        events.last().map(key).as_deref(),
        Some("stopped interrupted 14")
    );
    let store = project.store();
    assert_eq!(store.run("r1").unwrap().unwrap().status, "interrupted");
    let state = store.run_state("r1").unwrap();
    let decided = state.tasks[&commit('c')].target_rounds;
    assert!(decided > 3, "{state:?}");
    drop(store);

    let resumed = project.resume("r1");
    assert_eq!(resumed.recorded.len(), 14);
    let (outcome, events) = project.execute(
        &resumed,
        &ScriptedBackend::new(two_tasks),
        1,
        Vec::new(),
        &PlainLifecycle,
    );
    assert_eq!(outcome.unwrap().reason, RunStopReason::Completed);
    assert_eq!(key(&events[0]), "planned resumed=true recorded=14");
    // The first look after resuming is where the last decision said, not the first look's
    // round again (which would judge more data than that look was planned for).
    let first_look = events.iter().find_map(|e| match e {
        Event::VerdictUpdated {
            task, rounds_done, ..
        } if *task == commit('c') => Some(*rounds_done),
        _ => None,
    });
    assert_eq!(first_look, Some(decided));
    let mut per_task = BTreeMap::new();
    for attempt in project.attempts() {
        *per_task.entry(attempt.task).or_insert(0) += 1;
    }
    assert_eq!(
        per_task, uninterrupted,
        "the resumed run ends where an uninterrupted one does"
    );
    assert_eq!(
        project.store().run("r1").unwrap().unwrap().status,
        "finished"
    );
}

#[test]
fn a_fatal_backend_error_records_the_attempt_marks_the_run_failed_and_resume_reruns_it() {
    let project = Project::new(&['a'], "");
    let run = project.plan(&request("2"));
    let backend = ScriptedBackend {
        unavailable_at: Some((VariantKind::Human, 1)),
        ..ScriptedBackend::new(clear_win)
    };
    let (outcome, events) = project.execute(&run, &backend, 1, Vec::new(), &PlainLifecycle);
    let err = outcome.unwrap_err();
    assert_eq!(err.to_string(), "cannot reach the Docker daemon");
    let Some(Event::RunStopped {
        reason: RunStopReason::Error { message },
        ..
    }) = events.last()
    else {
        panic!("{:?}", events.last());
    };
    assert_eq!(message, "cannot reach the Docker daemon");
    let attempts = project.attempts();
    let cut = attempts
        .iter()
        .find(|a| a.rerun_on_resume)
        .expect("the cut attempt is recorded");
    assert_eq!((cut.status, cut.round_idx), (AttemptStatus::InfraError, 1));
    assert_eq!(project.store().run("r1").unwrap().unwrap().status, "failed");

    let (outcome, _) = project.execute(
        &project.resume("r1"),
        &ScriptedBackend::new(clear_win),
        1,
        Vec::new(),
        &PlainLifecycle,
    );
    outcome.unwrap();
    let ok = project
        .attempts()
        .iter()
        .filter(|a| a.status == AttemptStatus::Ok)
        .count();
    assert_eq!(
        ok, 4,
        "every (variant, round) measured once the daemon is back"
    );
}

/// Fails the human variant's check; stops a task after its first measured attempt.
struct Strict {
    stop_after_first: bool,
}

impl Lifecycle for Strict {
    fn check(&self, variant: &VariantContext<'_>) -> perfarena_runner::Result<Check> {
        assert!(
            variant.prepared.failure.is_none(),
            "only prepared variants are checked"
        );
        Ok(match variant.variant {
            VariantKind::Human => Check::Fail(PrepareFailure {
                status: AttemptStatus::BuildFailed,
                message: "correctness check: wrong output".into(),
                log: None,
            }),
            _ => Check::Pass,
        })
    }
    fn after_attempt(&self, _task: &Task, record: &AttemptRecord) -> Next {
        if self.stop_after_first && record.stage == AttemptStage::Attempt {
            Next::StopTask
        } else {
            Next::Continue
        }
    }
}

#[test]
fn a_failed_check_is_recorded_once_and_the_variant_skipped() {
    let project = Project::new(&['a'], "");
    let run = project.plan(&request("3"));
    let backend = ScriptedBackend::new(clear_win);
    let strict = Strict {
        stop_after_first: false,
    };
    let (outcome, _) = project.execute(&run, &backend, 1, Vec::new(), &strict);
    assert_eq!(
        outcome.unwrap().recorded,
        4,
        "3 baseline attempts + the failed check"
    );
    let human: Vec<AttemptRecord> = project
        .attempts()
        .into_iter()
        .filter(|a| a.variant == VariantKind::Human)
        .collect();
    assert_eq!(human.len(), 1);
    assert_eq!(human[0].stage, AttemptStage::Prepare);
    assert_eq!(human[0].message, "correctness check: wrong output");
    // Resume keys on the typed stage: the human variant is not tried again.
    let again = ScriptedBackend::new(clear_win);
    let (outcome, _) = project.execute(&project.resume("r1"), &again, 1, Vec::new(), &strict);
    assert_eq!(outcome.unwrap().recorded, 0);
}

#[test]
fn a_lifecycle_can_stop_a_task() {
    let project = Project::new(&['a', 'c'], "");
    let run = project.plan(&request("3"));
    let backend = ScriptedBackend::new(clear_win);
    let (outcome, _) = project.execute(
        &run,
        &backend,
        1,
        Vec::new(),
        &Strict {
            stop_after_first: true,
        },
    );
    outcome.unwrap();
    let measured = project
        .attempts()
        .iter()
        .filter(|a| a.stage == AttemptStage::Attempt)
        .count();
    assert_eq!(measured, 2, "one attempt per task, then each task stops");
}

#[test]
fn parallel_workers_each_hold_a_slot() {
    let project = Project::new(&['a', 'c', 'd', 'e'], "");
    let run = project.plan(&request("2"));
    let backend = ScriptedBackend::new(clear_win);
    let slots = vec![
        Slot {
            gpus: vec!["0".into()],
        },
        Slot {
            gpus: vec!["1".into()],
        },
    ];
    let (outcome, _) = project.execute(&run, &backend, 2, slots, &PlainLifecycle);
    assert_eq!(outcome.unwrap().recorded, 16);
    let runs = backend.runs.lock().unwrap();
    let mut slot_of_task: BTreeMap<CommitId, Vec<Vec<String>>> = BTreeMap::new();
    for (task, _, _, gpus) in runs.iter() {
        let seen = slot_of_task.entry(task.clone()).or_default();
        if !seen.contains(gpus) {
            seen.push(gpus.clone());
        }
    }
    assert!(
        slot_of_task
            .values()
            .all(|s| s.len() == 1 && s[0].len() == 1),
        "a task keeps its worker's slot: {slot_of_task:?}"
    );
    assert_eq!(project.attempts().len(), 16);
}
