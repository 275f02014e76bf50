//! Planning a run: a new plan from what the user asked for ([`RunRequest`]), or the stored plan
//! and state of a run to resume, with what it has recorded so far ([`PlannedRun`]).

use std::collections::BTreeMap;

use perfarena_core::import::find_task;
use perfarena_core::plan::{Repeats, RunPlan, RunState};
use perfarena_core::{AttemptRecord, RunId, Suite, Task};
use perfarena_store::{AttemptFilter, RunRecord, Store};

use crate::candidates::load_candidates;
use crate::{Result, RunError};

/// What the user asked a new run to do (`perfarena run`'s arguments).
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Task commit prefixes; empty: every task in the store.
    pub tasks: Vec<String>,
    /// `NAME=PATH` candidate arguments.
    pub candidates: Vec<String>,
    /// A number of measured rounds, `auto`, or `None` for the suite's `bench.repeats`.
    pub repeats: Option<String>,
    pub seed: Option<u64>,
    pub run_id: Option<String>,
}

/// A run ready to execute: its plan, its tasks, and what it has already recorded.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub run_id: RunId,
    pub backend: String,
    pub suite_hash: String,
    pub plan: RunPlan,
    /// Whether the run existed before (`--resume`).
    pub resumed: bool,
    /// The plan's tasks, in the store's order.
    pub tasks: Vec<Task>,
    /// The attempts this run recorded before (resume), oldest first.
    pub recorded: Vec<AttemptRecord>,
    pub state: RunState,
    /// Candidate patches by sha256.
    pub patches: BTreeMap<String, String>,
}

/// A new run id: time plus a random suffix.
pub fn new_run_id() -> String {
    format!(
        "r{}-{:04x}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        rand::random::<u16>()
    )
}

/// The tasks named by commit prefixes (all of them when none is named).
pub fn select_tasks(all: &[Task], prefixes: &[String], flag: &str) -> Result<Vec<Task>> {
    if prefixes.is_empty() {
        return Ok(all.to_vec());
    }
    prefixes
        .iter()
        .map(|prefix| {
            find_task(all, prefix)
                .cloned()
                .map_err(|e| RunError::Input(format!("{flag} {prefix}: {e}")))
        })
        .collect()
}

/// Every task in the store; an error naming what to do when there is none.
pub fn stored_tasks(store: &Store) -> Result<Vec<Task>> {
    let tasks = store.tasks()?;
    if tasks.is_empty() {
        return Err(RunError::Input(
            "no tasks in the store: import some with `perfarena tasks import FILE`".into(),
        ));
    }
    Ok(tasks)
}

/// Plans a new run (its candidates' patches are kept in the store; the run itself is recorded
/// by the store writer when the runner announces it).
pub fn plan_new(
    store: &Store,
    suite: &Suite,
    request: &RunRequest,
    backend: &str,
) -> Result<PlannedRun> {
    let all_tasks = stored_tasks(store)?;
    let tasks = select_tasks(&all_tasks, &request.tasks, "--tasks")?;
    let repeats = match request.repeats.as_deref() {
        None => Repeats::Fixed {
            rounds: suite.bench.repeats,
        },
        Some("auto") => Repeats::Auto {
            min: suite.stats.min_repeats.max(2),
            max: suite.stats.max_repeats.max(2),
        },
        Some(n) => {
            let rounds: u32 = n.parse().ok().filter(|r| *r > 0).ok_or_else(|| {
                RunError::Input(format!(
                    "--repeats {n:?}: expected a positive number or `auto`"
                ))
            })?;
            Repeats::Fixed { rounds }
        }
    };
    let candidates = load_candidates(&request.candidates, &tasks, store)?;
    let plan = RunPlan::new(
        tasks.iter().map(|t| t.commit.clone()).collect(),
        candidates,
        repeats,
        suite.bench.warmup,
        request.seed.unwrap_or_else(rand::random),
    );
    let run_id = match &request.run_id {
        Some(given) => {
            RunId::parse(given)
                .map_err(|e| RunError::Input(format!("--run-id: {e}")))?
                .0
        }
        None => new_run_id(),
    };
    if store.run(&run_id)?.is_some() {
        return Err(RunError::Input(format!(
            "run {run_id} exists already: `perfarena run --resume --run-id {run_id}` continues it"
        )));
    }
    Ok(PlannedRun {
        run_id: RunId(run_id),
        backend: backend.into(),
        suite_hash: suite.hash(),
        patches: patches(store, &plan)?,
        tasks: tasks_of(&all_tasks, &plan),
        plan,
        resumed: false,
        recorded: Vec::new(),
        state: RunState::default(),
    })
}

/// The run `--resume` continues: the one named, else the most recent unfinished one.
pub fn run_to_resume(store: &Store, run_id: Option<&str>) -> Result<RunRecord> {
    match run_id {
        Some(id) => store
            .run(id)?
            .ok_or_else(|| RunError::Input(format!("no run {id} in the store"))),
        None => store
            .runs()?
            .into_iter()
            .find(|r| r.status != "finished")
            .ok_or_else(|| {
                RunError::Input("nothing to resume: every run in the store has finished".into())
            }),
    }
}

/// Reads a stored run back for `--resume`: its plan (migrated from an older version, or an
/// error for a newer one), its state and the attempts it recorded.
pub fn plan_resume(store: &Store, run: &RunRecord) -> Result<PlannedRun> {
    let plan = RunPlan::from_json(&run.config)
        .map_err(|e| RunError::Input(format!("run {}: unreadable plan: {e}", run.run_id)))?;
    let all_tasks = stored_tasks(store)?;
    let recorded = store.attempts(&AttemptFilter {
        run_id: Some(run.run_id.clone()),
        task: None,
        variant: None,
    })?;
    Ok(PlannedRun {
        run_id: RunId(run.run_id.clone()),
        backend: run.backend.clone(),
        suite_hash: run.suite_hash.clone(),
        patches: patches(store, &plan)?,
        tasks: tasks_of(&all_tasks, &plan),
        state: store.run_state(&run.run_id)?,
        plan,
        resumed: true,
        recorded,
    })
}

/// The plan's tasks, in the store's order.
fn tasks_of(all: &[Task], plan: &RunPlan) -> Vec<Task> {
    all.iter()
        .filter(|t| plan.tasks.contains(&t.commit))
        .cloned()
        .collect()
}

fn patches(store: &Store, plan: &RunPlan) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for candidate in &plan.candidates {
        let text = store.patch(&candidate.patch_sha)?.ok_or_else(|| {
            RunError::Input(format!(
                "patch {} missing from the store",
                candidate.patch_sha
            ))
        })?;
        out.insert(candidate.patch_sha.clone(), text);
    }
    Ok(out)
}
