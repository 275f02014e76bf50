//! The runner: plans a run (tasks × variants × rounds, interleaved in shuffled rounds), drives a
//! backend, parses each attempt's log and writes each attempt to the store before the next one
//! starts. `--resume` replays the same plan and runs only what has no recorded attempt.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use perfarena_backend::{
    AttemptOutcome, AttemptSpec, Backend, BackendError, CancelToken, PatchSpec, Prepared,
    ReadinessSpec, RoundSpec, VariantSpec,
};
use perfarena_core::analysis::{AnalysisSettings, task_measurements};
use perfarena_core::events::{Event, EventSink};
use perfarena_core::parse::{FormatChoice, parse_log};
use perfarena_core::stats::{
    AdaptiveRepeats, RoundsDecision, StatsConfig, interleaved_order, needs_more_rounds,
};
use perfarena_core::template;
use perfarena_core::triage::Triage;
use perfarena_core::{
    AttemptRecord, AttemptStatus, CandidateName, CommitId, RunId, Suite, Task, VariantKind,
};
use perfarena_store::{AttemptFilter, RunRecord, Store};

use crate::context::now;

/// How many measured rounds each variant gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Repeats {
    Fixed {
        rounds: u32,
    },
    /// Adaptive: `min` rounds, more (up to `max`) only while a comparison is inconclusive.
    Auto {
        min: u32,
        max: u32,
    },
}

impl Repeats {
    fn max_rounds(self) -> u32 {
        match self {
            Repeats::Fixed { rounds } => rounds,
            Repeats::Auto { max, .. } => max,
        }
    }
    fn initial_rounds(self) -> u32 {
        match self {
            Repeats::Fixed { rounds } => rounds,
            Repeats::Auto { min, .. } => min,
        }
    }
}

/// A candidate of one task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedCandidate {
    pub task: CommitId,
    pub name: CandidateName,
    pub patch_sha: String,
}

/// What a run was asked to do; stored with the run so that `--resume` replays it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunPlan {
    pub tasks: Vec<CommitId>,
    pub candidates: Vec<PlannedCandidate>,
    pub repeats: Repeats,
    pub warmup: u32,
    pub seed: u64,
}

impl RunPlan {
    fn variants(&self, task: &CommitId) -> Vec<VariantKind> {
        let mut variants = vec![VariantKind::Baseline, VariantKind::Human];
        variants.extend(
            self.candidates
                .iter()
                .filter(|c| &c.task == task)
                .map(|c| VariantKind::Candidate(c.name.clone())),
        );
        variants
    }

    /// Planned attempts before any adaptive extension.
    pub fn initial_attempts(&self) -> u64 {
        let rounds = (self.warmup + self.repeats.initial_rounds()) as u64;
        self.tasks
            .iter()
            .map(|t| self.variants(t).len() as u64 * rounds)
            .sum()
    }
}

/// Reads `NAME=PATH` candidate arguments: PATH is one patch for every task, or a directory
/// holding `<commit prefix>*.patch|.diff` files, one per task. Returns `(task, name, patch text)`.
pub fn read_candidate_args(
    args: &[String],
    tasks: &[Task],
) -> Result<Vec<(CommitId, CandidateName, String)>> {
    let mut out = Vec::new();
    for arg in args {
        let (name, path) = arg
            .split_once('=')
            .with_context(|| format!("--candidates {arg:?}: expected NAME=PATCH (a patch file or a directory of <commit>.patch files)"))?;
        let name = CandidateName::parse(name).with_context(|| format!("--candidates {arg:?}"))?;
        let path = PathBuf::from(path);
        for task in tasks {
            let file = if path.is_dir() {
                find_task_patch(&path, task)?
            } else {
                Some(path.clone())
            };
            let Some(file) = file else { continue };
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("--candidates {name}: cannot read {}", file.display()))?;
            if text.trim().is_empty() {
                bail!("--candidates {name}: {} is empty", file.display());
            }
            out.push((task.commit.clone(), name.clone(), text));
        }
    }
    Ok(out)
}

/// Reads the candidate arguments and keeps each patch in the store, by its sha256.
pub fn load_candidates(
    args: &[String],
    tasks: &[Task],
    store: &Store,
) -> Result<Vec<PlannedCandidate>> {
    let mut out = Vec::new();
    for (task, name, text) in read_candidate_args(args, tasks)? {
        let patch_sha = perfarena_core::patch::sha256_hex(&text);
        store.put_patch(&patch_sha, &text)?;
        out.push(PlannedCandidate {
            task,
            name,
            patch_sha,
        });
    }
    Ok(out)
}

fn find_task_patch(dir: &Path, task: &Task) -> Result<Option<PathBuf>> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let is_patch = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("patch" | "diff")
        );
        let prefix: String = stem.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        if is_patch
            && prefix.len() >= 7
            && task
                .commit
                .as_str()
                .starts_with(&prefix.to_ascii_lowercase())
        {
            hits.push(path);
        }
    }
    match hits.len() {
        0 => Ok(None),
        1 => Ok(hits.pop()),
        _ => bail!(
            "{}: several patches for task {}: {:?}",
            dir.display(),
            task.short_id(),
            hits
        ),
    }
}

/// Everything the runner needs.
pub struct Runner<'a> {
    pub suite: &'a Suite,
    pub store: &'a mut Store,
    pub backend: &'a dyn Backend,
    pub events: &'a dyn EventSink,
    pub cancel: CancelToken,
    pub state_dir: PathBuf,
    pub triage: Triage,
    /// Attempts running at once (`--parallel`): tasks are spread over this many workers, each
    /// keeping its task's interleaved order.
    pub parallel: usize,
    /// GPU slots (device ids); worker `i` runs every attempt on slot `i`, so no GPU is shared.
    pub gpu_slots: Vec<Vec<String>>,
    /// The repository under test, for choosing a task's `[[bench.eras]]` (`None`: eras that
    /// need a file never match).
    pub repo: Option<perfarena_backend::git::GitRepo>,
}

/// A task's progress through its rounds.
struct TaskProgress<'t> {
    task: &'t Task,
    variants: Vec<VariantKind>,
    /// Attempts already recorded, (variant, round).
    done: BTreeSet<(VariantKind, u32)>,
    /// Variants that could not be prepared.
    failed: BTreeSet<VariantKind>,
    /// Each round's order of variant indices.
    order: Vec<Vec<usize>>,
    prepared: HashMap<VariantKind, Prepared>,
    /// Rounds (warm-up included) the task gets; adaptive runs raise it.
    target_rounds: u32,
}

impl TaskProgress<'_> {
    fn skips(&self, variant: &VariantKind, round: u32) -> bool {
        self.done.contains(&(variant.clone(), round)) || self.failed.contains(variant)
    }
}

/// An attempt set up by the runner.
#[allow(clippy::large_enum_variant)] // one per attempt, short-lived
enum Begun {
    Ready(AttemptSpec, AttemptRecord),
    Ended(AttemptRecord),
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub recorded: usize,
    pub interrupted: bool,
}

impl Runner<'_> {
    /// Runs (or resumes) `run_id` with `plan`.
    pub fn execute(&mut self, run_id: &str, plan: &RunPlan, tasks: &[Task]) -> Result<RunOutcome> {
        let swept = self
            .backend
            .sweep_orphans(&[])
            .map_err(|e| anyhow::anyhow!("orphan sweep: {e}"))?;
        if swept > 0 {
            self.events.emit(Event::Message {
                text: format!(
                    "removed {swept} orphaned process group(s)/container(s) of earlier runs"
                ),
            });
        }
        if self.backend.runs_rounds() {
            return self.execute_rounds(run_id, plan, tasks);
        }
        if self.parallel > 1 {
            return self.execute_parallel(run_id, plan, tasks);
        }
        let mut recorded = 0;
        for task in tasks.iter().filter(|t| plan.tasks.contains(&t.commit)) {
            match self.run_task(run_id, plan, task, &mut recorded) {
                Ok(()) => {}
                Err(e) if is_cancelled(&e) => {
                    return Ok(RunOutcome {
                        recorded,
                        interrupted: true,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(RunOutcome {
            recorded,
            interrupted: false,
        })
    }

    /// `--parallel N`: N workers, each with its own store connection and GPU slot, take tasks
    /// from a shared queue. A fatal error in one worker stops the others (their attempts in
    /// flight are torn down, not recorded, and rerun on resume).
    fn execute_parallel(
        &mut self,
        run_id: &str,
        plan: &RunPlan,
        tasks: &[Task],
    ) -> Result<RunOutcome> {
        let queue: std::sync::Mutex<Vec<&Task>> = std::sync::Mutex::new(
            tasks
                .iter()
                .filter(|t| plan.tasks.contains(&t.commit))
                .rev()
                .collect(),
        );
        let workers = self
            .parallel
            .min(queue.lock().map(|q| q.len()).unwrap_or(1))
            .max(1);
        let results: Vec<Result<(usize, bool)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|worker_idx| {
                    let queue = &queue;
                    let (suite, backend, events, cancel, state_dir, triage, repo) = (
                        self.suite,
                        self.backend,
                        self.events,
                        self.cancel.clone(),
                        self.state_dir.clone(),
                        self.triage.clone(),
                        self.repo.clone(),
                    );
                    let slot = self.gpu_slots.get(worker_idx).cloned();
                    scope.spawn(move || -> Result<(usize, bool)> {
                        let mut store = Store::open(&state_dir)?;
                        let mut worker = Runner {
                            suite,
                            store: &mut store,
                            backend,
                            events,
                            cancel: cancel.clone(),
                            state_dir,
                            triage,
                            parallel: 1,
                            gpu_slots: slot.into_iter().collect(),
                            repo,
                        };
                        let mut recorded = 0;
                        loop {
                            let Some(task) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                                return Ok((recorded, false));
                            };
                            match worker.run_task(run_id, plan, task, &mut recorded) {
                                Ok(()) => {}
                                Err(e) if is_cancelled(&e) => return Ok((recorded, true)),
                                Err(e) => {
                                    cancel.cancel();
                                    return Err(e);
                                }
                            }
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a runner worker panicked")))
                })
                .collect()
        });
        let mut recorded = 0;
        let mut interrupted = false;
        let mut first_error = None;
        for result in results {
            match result {
                Ok((n, cancelled)) => {
                    recorded += n;
                    interrupted |= cancelled;
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(RunOutcome {
                recorded,
                interrupted,
            }),
        }
    }

    /// What is recorded for a task so far, and its interleaved order.
    fn progress<'t>(
        &self,
        run_id: &str,
        plan: &RunPlan,
        task: &'t Task,
    ) -> Result<TaskProgress<'t>> {
        let variants = plan.variants(&task.commit);
        let existing = self.store.attempts(&AttemptFilter {
            run_id: Some(run_id.into()),
            task: Some(task.commit.clone()),
            variant: None,
        })?;
        // An attempt cut short by a fatal backend error (daemon gone, disk full) stays recorded
        // but does not count as done: resume reruns its round.
        let done: BTreeSet<(VariantKind, u32)> = existing
            .iter()
            .filter(|a| a.metadata.get("rerun_on_resume").and_then(|v| v.as_bool()) != Some(true))
            .map(|a| (a.variant.clone(), a.round_idx))
            .collect();
        let failed: BTreeSet<VariantKind> = existing
            .iter()
            .filter(|a| a.metadata.get("stage").and_then(|s| s.as_str()) == Some("prepare"))
            .map(|a| a.variant.clone())
            .collect();
        let max_rounds = plan.warmup + plan.repeats.max_rounds();
        let order = interleaved_order(
            variants.len(),
            max_rounds as usize,
            plan.seed ^ seed_of(&task.commit),
        );
        Ok(TaskProgress {
            task,
            variants,
            done,
            failed,
            order,
            prepared: HashMap::new(),
            target_rounds: plan.warmup + plan.repeats.initial_rounds(),
        })
    }

    /// Prepares `variant` unless it is already; a variant that cannot be prepared is recorded
    /// as a failed attempt and `false` returned.
    fn ensure_prepared(
        &mut self,
        run_id: &str,
        plan: &RunPlan,
        progress: &mut TaskProgress<'_>,
        variant: &VariantKind,
        round: u32,
        recorded: &mut usize,
    ) -> Result<bool> {
        if progress.prepared.contains_key(variant) {
            return Ok(true);
        }
        let task = progress.task;
        let p = self.prepare(run_id, plan, task, variant)?;
        let Some(failure) = &p.failure else {
            progress.prepared.insert(variant.clone(), p);
            return Ok(true);
        };
        let mut record =
            AttemptRecord::new(task.commit.clone(), variant.clone(), round, failure.status);
        record.run_id = Some(run_id.into());
        record.started_at = now();
        record.message = failure.message.clone();
        record.log_dir = failure.log.as_ref().map(|l| self.relative(l));
        record.backend = self.backend.kind().as_str().into();
        record.metadata = serde_json::json!({"stage": "prepare"});
        let log = failure
            .log
            .as_ref()
            .map(|l| read_lossy(l))
            .unwrap_or_default();
        record.failure = self
            .triage
            .classify_attempt(record.status, &record.message, &[&log]);
        self.record(&record, None)?;
        *recorded += 1;
        progress.failed.insert(variant.clone());
        let _ = self.backend.release(&p);
        Ok(false)
    }

    /// Records a finished attempt; an error when the backend said the run must stop.
    fn record_finished(&mut self, record: &AttemptRecord, recorded: &mut usize) -> Result<()> {
        let stops_run = record
            .metadata
            .get("rerun_on_resume")
            .and_then(|v| v.as_bool())
            == Some(true);
        if let Err(e) = self.record(record, Some(&self.suite.metric.primary)) {
            if stops_run {
                bail!(
                    "{} (and the attempt could not be recorded: {e:#})",
                    record.message
                );
            }
            return Err(e);
        }
        if stops_run {
            bail!("{}", record.message);
        }
        *recorded += 1;
        Ok(())
    }

    /// After a task's round `round` (0-based, warm-up included) ended: for an adaptive run
    /// that reached its target, how many rounds it needs now.
    fn after_round(
        &self,
        run_id: &str,
        plan: &RunPlan,
        progress: &mut TaskProgress<'_>,
        rounds_done: u32,
    ) -> Result<()> {
        if rounds_done == progress.target_rounds
            && let Repeats::Auto { min, max } = plan.repeats
        {
            progress.target_rounds = plan.warmup
                + self.adaptive_target(
                    progress.task,
                    run_id,
                    rounds_done - plan.warmup,
                    min,
                    max,
                )?;
        }
        Ok(())
    }

    fn run_task(
        &mut self,
        run_id: &str,
        plan: &RunPlan,
        task: &Task,
        recorded: &mut usize,
    ) -> Result<()> {
        let mut progress = self.progress(run_id, plan, task)?;
        let mut round = 0;
        let result = (|| -> Result<()> {
            while round < progress.target_rounds {
                for idx in progress.order[round as usize].clone() {
                    let variant = progress.variants[idx].clone();
                    if progress.skips(&variant, round) {
                        continue;
                    }
                    if self.cancel.is_cancelled() {
                        return Err(BackendError::Cancelled.into());
                    }
                    if !self.ensure_prepared(
                        run_id,
                        plan,
                        &mut progress,
                        &variant,
                        round,
                        recorded,
                    )? {
                        continue;
                    }
                    let p = &progress.prepared[&variant];
                    let record = match self.begin_attempt(run_id, plan, task, &variant, round, p)? {
                        Begun::Ready(spec, record) => {
                            let outcome = self.backend.run(&spec, p, self.events);
                            self.end_attempt(record, outcome)?
                        }
                        Begun::Ended(record) => record,
                    };
                    self.record_finished(&record, recorded)?;
                    progress.done.insert((variant.clone(), round));
                }
                round += 1;
                self.after_round(run_id, plan, &mut progress, round)?;
            }
            Ok(())
        })();
        for p in progress.prepared.values() {
            let _ = self.backend.release(p);
        }
        result
    }

    /// For backends that run whole rounds ([`Backend::runs_rounds`], a batch scheduler): round
    /// `r` of every task that needs it goes to the backend at once (each task's round in its
    /// shuffled order; many tasks as one job array), is recorded when it ends, and then round
    /// `r + 1` follows. Adaptive runs drop tasks out as their comparisons become conclusive.
    fn execute_rounds(
        &mut self,
        run_id: &str,
        plan: &RunPlan,
        tasks: &[Task],
    ) -> Result<RunOutcome> {
        let mut recorded = 0;
        let mut progress = Vec::new();
        for task in tasks.iter().filter(|t| plan.tasks.contains(&t.commit)) {
            progress.push(self.progress(run_id, plan, task)?);
        }
        let result = self.rounds_loop(run_id, plan, &mut progress, &mut recorded);
        for p in progress.iter().flat_map(|t| t.prepared.values()) {
            let _ = self.backend.release(p);
        }
        match result {
            Ok(()) => Ok(RunOutcome {
                recorded,
                interrupted: false,
            }),
            Err(e) if is_cancelled(&e) => Ok(RunOutcome {
                recorded,
                interrupted: true,
            }),
            Err(e) => Err(e),
        }
    }

    fn rounds_loop(
        &mut self,
        run_id: &str,
        plan: &RunPlan,
        progress: &mut [TaskProgress<'_>],
        recorded: &mut usize,
    ) -> Result<()> {
        let mut round = 0u32;
        while progress.iter().any(|t| round < t.target_rounds) {
            if self.cancel.is_cancelled() {
                return Err(BackendError::Cancelled.into());
            }
            // (task index, attempts begun) of this round.
            let mut begun: Vec<(usize, Vec<(AttemptSpec, AttemptRecord)>)> = Vec::new();
            for (t, task_progress) in progress.iter_mut().enumerate() {
                if round >= task_progress.target_rounds {
                    continue;
                }
                let mut attempts = Vec::new();
                for idx in task_progress.order[round as usize].clone() {
                    let variant = task_progress.variants[idx].clone();
                    if task_progress.skips(&variant, round)
                        || !self.ensure_prepared(
                            run_id,
                            plan,
                            task_progress,
                            &variant,
                            round,
                            recorded,
                        )?
                    {
                        continue;
                    }
                    let p = &task_progress.prepared[&variant];
                    match self.begin_attempt(
                        run_id,
                        plan,
                        task_progress.task,
                        &variant,
                        round,
                        p,
                    )? {
                        Begun::Ready(spec, record) => attempts.push((spec, record)),
                        Begun::Ended(record) => {
                            self.record_finished(&record, recorded)?;
                            task_progress.done.insert((variant, round));
                        }
                    }
                }
                if !attempts.is_empty() {
                    begun.push((t, attempts));
                }
            }
            if !begun.is_empty() {
                let outcomes = {
                    let rounds: Vec<RoundSpec<'_>> = begun
                        .iter()
                        .map(|(t, attempts)| RoundSpec {
                            task: progress[*t].task.commit.clone(),
                            round_idx: round,
                            attempts: attempts
                                .iter()
                                .map(|(spec, _)| {
                                    (spec.clone(), &progress[*t].prepared[&spec.variant])
                                })
                                .collect(),
                        })
                        .collect();
                    self.backend.run_rounds(&rounds, self.events)?
                };
                let mut first_error = None;
                for ((t, attempts), results) in begun.into_iter().zip(outcomes) {
                    for ((spec, record), result) in attempts.into_iter().zip(results) {
                        let record = self.end_attempt(record, result)?;
                        // Record the whole round before stopping, so that nothing measured is lost.
                        match self.record_finished(&record, recorded) {
                            Ok(()) => {
                                progress[t].done.insert((spec.variant.clone(), round));
                            }
                            Err(e) => first_error = first_error.or(Some(e)),
                        }
                    }
                }
                if let Some(e) = first_error {
                    return Err(e);
                }
            }
            round += 1;
            for task_progress in progress.iter_mut() {
                if round <= task_progress.target_rounds {
                    self.after_round(run_id, plan, task_progress, round)?;
                }
            }
        }
        Ok(())
    }

    /// After `rounds_done` measured rounds of an adaptive run: how many rounds the task needs.
    fn adaptive_target(
        &self,
        task: &Task,
        run_id: &str,
        rounds_done: u32,
        min: u32,
        max: u32,
    ) -> Result<u32> {
        let attempts = self.store.attempts(&AttemptFilter {
            run_id: Some(run_id.into()),
            task: Some(task.commit.clone()),
            variant: None,
        })?;
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
        let report = task_measurements(std::slice::from_ref(task), &attempts, &settings);
        let comparisons: Vec<_> = report[0]
            .comparisons
            .iter()
            .map(|c| c.comparison.clone())
            .collect();
        Ok(
            match needs_more_rounds(&comparisons, rounds_done as usize, &adaptive) {
                RoundsDecision::Continue { until_round } => (until_round as u32).min(max),
                RoundsDecision::Stop { .. } => rounds_done,
            },
        )
    }

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.state_dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    fn variant_dir(&self, run_id: &str, task: &Task, variant: &VariantKind) -> PathBuf {
        self.state_dir
            .join("runs")
            .join(run_id)
            .join(task.short_id())
            .join(variant.dir_name())
    }

    fn prepare(
        &self,
        run_id: &str,
        plan: &RunPlan,
        task: &Task,
        variant: &VariantKind,
    ) -> Result<Prepared> {
        self.events.emit(Event::PrepareStarted {
            task: task.commit.clone(),
            variant: variant.clone(),
        });
        let patch = match variant {
            VariantKind::Candidate(name) => {
                let planned = plan
                    .candidates
                    .iter()
                    .find(|c| c.task == task.commit && &c.name == name)
                    .with_context(|| {
                        format!("candidate {name} is not planned for {}", task.short_id())
                    })?;
                let text = self.store.patch(&planned.patch_sha)?.with_context(|| {
                    format!("patch {} missing from the store", planned.patch_sha)
                })?;
                Some(PatchSpec {
                    name: name.clone(),
                    sha256: planned.patch_sha.clone(),
                    text,
                })
            }
            _ => None,
        };
        let vars = self.vars(task, variant, None, None, 0)?;
        let commands = self.bench_commands(task);
        let setup = if commands.setup.trim().is_empty() {
            None
        } else {
            Some(template::expand(&commands.setup, &vars).context("bench.setup")?)
        };
        let spec = VariantSpec {
            run_id: RunId(run_id.into()),
            task: task.clone(),
            variant: variant.clone(),
            image: match self.backend.kind() {
                perfarena_backend::BackendKind::Local => None,
                _ => perfarena_core::images::image_ref(
                    &self.suite.images,
                    task,
                    variant,
                    patch.as_ref().map(|p| p.sha256.as_str()),
                )
                .ok(),
            },
            patch,
            setup,
            setup_timeout: Duration::from_secs(self.suite.bench.setup_timeout_s),
            env: self.env(),
            log_dir: self.variant_dir(run_id, task, variant),
            rebuild_globs: self.suite.build.rebuild_globs.clone(),
            harness_globs: self.suite.bench.harness_globs.clone(),
            cancel: self.cancel.clone(),
        };
        Ok(self.backend.prepare(&spec, self.events)?)
    }

    fn env(&self) -> Vec<(String, String)> {
        self.suite
            .bench
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Template values for one variant (and attempt, when `attempt_dir` is given).
    fn vars(
        &self,
        task: &Task,
        variant: &VariantKind,
        workdir: Option<&Path>,
        attempt_dir: Option<&Path>,
        port: u16,
    ) -> Result<BTreeMap<&'static str, String>> {
        let mut vars = BTreeMap::new();
        let model = task
            .model()
            .or_else(|| Some(self.suite.bench.default_model.clone()).filter(|m| !m.is_empty()));
        if let Some(model) = model {
            vars.insert("model", model);
        }
        vars.insert("port", port.to_string());
        vars.insert(
            "perf_command",
            task.perf_command.clone().unwrap_or_default(),
        );
        vars.insert("commit", task.commit.to_string());
        vars.insert(
            "parent",
            task.parent
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        );
        vars.insert("variant", variant.to_string());
        vars.insert("source_dir", self.suite.repo.source_dir.clone());
        if let Some(dir) = workdir {
            vars.insert("workdir", dir.display().to_string());
        }
        if let Some(dir) = attempt_dir {
            vars.insert("attempt_dir", dir.display().to_string());
        }
        let max_jobs = self
            .suite
            .build_override(task.commit.as_str())
            .and_then(|o| o.max_jobs)
            .map(|j| j.to_string());
        vars.insert(
            "max_jobs",
            max_jobs
                .or_else(|| self.suite.build.args.get("max_jobs").cloned())
                .unwrap_or_else(|| "1".into()),
        );
        Ok(vars)
    }

    /// Sets an attempt up (its directory, port, commands): `Ready` to hand to the backend, or
    /// `Ended` when it cannot start (a command template that does not expand).
    fn begin_attempt(
        &self,
        run_id: &str,
        plan: &RunPlan,
        task: &Task,
        variant: &VariantKind,
        round: u32,
        prepared: &Prepared,
    ) -> Result<Begun> {
        let attempt_dir = self
            .variant_dir(run_id, task, variant)
            .join(format!("round-{round}"));
        if attempt_dir.exists() {
            // Left by an attempt that was interrupted: keep it aside, rerun once.
            let aside = attempt_dir.with_file_name(format!(
                "round-{round}.interrupted-{}",
                chrono::Utc::now().timestamp()
            ));
            std::fs::rename(&attempt_dir, &aside)
                .with_context(|| format!("cannot move {} aside", attempt_dir.display()))?;
        }
        std::fs::create_dir_all(&attempt_dir)
            .with_context(|| format!("cannot create {}", attempt_dir.display()))?;
        let port = match self.suite.bench.port {
            0 => perfarena_backend::probe::free_port()
                .context("cannot find a free port on 127.0.0.1")?,
            port => port,
        };
        let mut record = AttemptRecord::new(
            task.commit.clone(),
            variant.clone(),
            round,
            AttemptStatus::NotRun,
        );
        record.run_id = Some(run_id.into());
        record.is_warmup = round < plan.warmup;
        record.started_at = now();
        record.backend = self.backend.kind().as_str().into();
        record.log_dir = Some(self.relative(&attempt_dir));
        record.image = prepared.image.clone();
        record.metadata = serde_json::json!({
            "port": port,
            "rebuild_paths": prepared.rebuild_paths,
            "harness_paths": prepared.harness_paths,
        });
        let bench = self.bench_commands(task);
        if let Some(era) = &bench.era {
            record.metadata["era"] = serde_json::json!(era);
            record.metadata["era_reason"] = serde_json::json!(bench.reason);
        }
        let vars = self.vars(
            task,
            variant,
            prepared.workdir.as_deref(),
            Some(&attempt_dir),
            port,
        )?;
        let expand = |field: &str, template_text: &str| {
            template::expand(template_text, &vars).map_err(|e| format!("{field}: {e}"))
        };
        let commands = (|| -> std::result::Result<_, String> {
            let server = if bench.server.trim().is_empty() {
                None
            } else {
                Some(expand("bench.server", &bench.server)?)
            };
            let client = expand("bench.client", &bench.client)?;
            let url = expand("bench.readiness.url", &bench.readiness_url)?;
            Ok((server, client, url))
        })();
        let (server, client, url) = match commands {
            Ok(commands) => commands,
            Err(message) => {
                record.status = AttemptStatus::InfraError;
                record.message = if message.contains("{model}") {
                    format!(
                        "{message}: the task names no model; add `models` to the task or set bench.default_model"
                    )
                } else {
                    message
                };
                return Ok(Begun::Ended(record));
            }
        };
        self.events.emit(Event::AttemptStarted {
            task: task.commit.clone(),
            variant: variant.clone(),
            round_idx: round,
        });
        let spec = AttemptSpec {
            run_id: RunId(run_id.into()),
            task: task.commit.clone(),
            variant: variant.clone(),
            round_idx: round,
            attempt_dir: attempt_dir.clone(),
            server,
            client,
            readiness: ReadinessSpec {
                kind: self.suite.bench.readiness.kind,
                url,
                interval: Duration::from_millis(self.suite.bench.readiness.interval_ms),
                timeout: Duration::from_secs(self.suite.bench.readiness.timeout_s),
            },
            port,
            env: self.env(),
            timeout: Duration::from_secs(self.suite.bench.timeout_s),
            kill_grace: Duration::from_secs(self.suite.bench.kill_grace_s),
            cancel: self.cancel.clone(),
            gpus: self.gpu_slots.first().cloned().unwrap_or_default(),
        };
        Ok(Begun::Ready(spec, record))
    }

    /// Turns the backend's result into the attempt's record: status, metrics parsed from the
    /// client's log, triage of failures.
    fn end_attempt(
        &self,
        mut record: AttemptRecord,
        result: std::result::Result<AttemptOutcome, BackendError>,
    ) -> Result<AttemptRecord> {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(BackendError::Cancelled) => return Err(BackendError::Cancelled.into()),
            Err(e) => {
                record.status = AttemptStatus::InfraError;
                record.message = e.to_string();
                record.failure = self
                    .triage
                    .classify_attempt(record.status, &record.message, &[]);
                if e.stops_run() {
                    record.metadata["rerun_on_resume"] = serde_json::json!(true);
                }
                return Ok(record);
            }
        };
        record.status = outcome.status;
        record.exit_code = outcome.exit_code;
        record.duration_s = outcome.duration_s;
        record.message = outcome.message;
        if let Some(ready) = outcome.ready_after_s {
            record.metadata["ready_after_s"] = serde_json::json!(ready);
        }
        if outcome.oom_killed {
            record.metadata["oom_killed"] = serde_json::json!(true);
        }
        if record.status == AttemptStatus::Ok {
            let text = read_lossy(&outcome.client_log);
            // The suite checked the name when it was read.
            let choice =
                FormatChoice::from_name(&self.suite.metric.parser).unwrap_or(FormatChoice::Auto);
            match parse_log(&text, &choice, &self.suite.metric.custom) {
                Ok(parsed) => {
                    record.samples = parsed.flatten();
                    record.metadata["format"] = serde_json::json!(parsed.format);
                    if !parsed.warnings.is_empty() {
                        record.metadata["parse_warnings"] = serde_json::json!(parsed.warnings);
                    }
                    if record.sample(&self.suite.metric.primary).is_none() {
                        record.status = AttemptStatus::NoMetrics;
                        let found: Vec<&str> =
                            record.samples.iter().map(|(k, _)| k.as_str()).collect();
                        record.message = format!(
                            "primary metric `{}` not in the client's output (found: {})",
                            self.suite.metric.primary,
                            found.join(", ")
                        );
                    }
                }
                Err(e) => {
                    record.status = AttemptStatus::NoMetrics;
                    record.message = format!("client exited 0 but its output has no result: {e}");
                }
            }
        }
        if record.status != AttemptStatus::Ok {
            let server = outcome
                .server_log
                .as_deref()
                .map(read_lossy)
                .unwrap_or_default();
            let client = read_lossy(&outcome.client_log);
            record.failure =
                self.triage
                    .classify_attempt(record.status, &record.message, &[&server, &client]);
        }
        Ok(record)
    }

    /// The task's commands: the plain `[bench]` ones, or those of its era (chosen from the
    /// task's parent revision, so that every variant of a task runs the same commands).
    fn bench_commands(&self, task: &Task) -> perfarena_core::eras::BenchCommands {
        crate::eras_git::commands(self.suite, self.repo.as_ref(), task)
    }

    /// Writes an attempt and tells the event stream.
    fn record(&mut self, record: &AttemptRecord, primary: Option<&str>) -> Result<()> {
        self.store
            .insert_attempt(record)
            .context("cannot record the attempt")?;
        self.events.emit(Event::AttemptFinished {
            task: record.task.clone(),
            variant: record.variant.clone(),
            round_idx: record.round_idx,
            status: record.status,
            primary: primary.and_then(|p| record.sample(p)),
            duration_s: record.duration_s,
            message: record.message.clone(),
        });
        Ok(())
    }
}

/// A log file as text (empty when unreadable), without failing on non-UTF-8 bytes.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn is_cancelled(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<BackendError>(),
        Some(BackendError::Cancelled)
    )
}

/// A per-task seed so tasks do not share one shuffle.
fn seed_of(commit: &CommitId) -> u64 {
    u64::from_str_radix(commit.short(15), 16).unwrap_or(0)
}

/// A new run id: time plus a random suffix.
pub fn new_run_id() -> String {
    format!(
        "r{}-{:04x}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        rand::random::<u16>()
    )
}

/// Creates the run row for a new run.
pub fn create_run(
    store: &Store,
    run_id: &str,
    suite: &Suite,
    backend: &str,
    plan: &RunPlan,
) -> Result<()> {
    store.create_run(&RunRecord {
        run_id: run_id.into(),
        suite_hash: suite.hash(),
        backend: backend.into(),
        started_at: now(),
        finished_at: None,
        status: "running".into(),
        config: serde_json::to_value(plan)?,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The runner's decisions on scripted measurements: a backend that "measures" fixed values,
    //! so that the adaptive-repeats decision is exact, not subject to this machine's noise.

    use std::sync::Mutex;

    use perfarena_backend::{AttemptOutcome, BackendKind, Prepared, VariantSpec};
    use perfarena_core::events::NullSink;

    use super::*;

    /// Writes a vLLM result table whose output throughput is `value(variant, round)`.
    struct ScriptedBackend {
        value: fn(&CommitId, &VariantKind, u32) -> f64,
        runs: Mutex<u32>,
        /// Takes whole rounds (like the slurm backend with `job_unit = "round"`).
        rounds: bool,
        /// Each `run_rounds` call: (task, round, attempts) of every round in it.
        batches: Mutex<Vec<Vec<(CommitId, u32, usize)>>>,
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
            Ok(Prepared {
                variant: spec.variant.clone(),
                workdir: None,
                image: None,
                rebuild_paths: Vec::new(),
                harness_paths: Vec::new(),
                failure: None,
            })
        }
        fn run(
            &self,
            spec: &AttemptSpec,
            _prepared: &Prepared,
            _events: &dyn EventSink,
        ) -> Result<AttemptOutcome, BackendError> {
            *self.runs.lock().unwrap() += 1;
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
            })
        }
        fn runs_rounds(&self) -> bool {
            self.rounds
        }
        fn run_rounds(
            &self,
            rounds: &[RoundSpec<'_>],
            events: &dyn EventSink,
        ) -> Result<perfarena_backend::RoundOutcomes, BackendError> {
            self.batches.lock().unwrap().push(
                rounds
                    .iter()
                    .map(|r| (r.task.clone(), r.round_idx, r.attempts.len()))
                    .collect(),
            );
            let mut all = Vec::new();
            for round in rounds {
                all.push(
                    round
                        .attempts
                        .iter()
                        .map(|(spec, p)| self.run(spec, p, events))
                        .collect(),
                );
            }
            Ok(all)
        }
        fn cancel(&self, _run_id: &RunId) -> Result<(), BackendError> {
            Ok(())
        }
        fn sweep_orphans(&self, _live_runs: &[RunId]) -> Result<usize, BackendError> {
            Ok(0)
        }
        fn release(&self, _prepared: &Prepared) -> Result<(), BackendError> {
            Ok(())
        }
    }

    fn commit(c: char) -> CommitId {
        CommitId::parse(&c.to_string().repeat(40)).unwrap()
    }

    /// Runs the tasks `a…` and `c…` adaptively (min 3, max 12 rounds); returns how many attempts
    /// ran for each, and the backend (for its batches).
    fn adaptive_run(
        value: fn(&CommitId, &VariantKind, u32) -> f64,
        tasks: &[char],
        rounds: bool,
    ) -> (BTreeMap<CommitId, usize>, ScriptedBackend) {
        let dir = tempfile::tempdir().unwrap();
        let suite = Suite::from_toml_str(
            "[bench]\nclient = \"bench\"\n[stats]\nmin_repeats = 3\nmax_repeats = 12\n",
            "s.toml",
        )
        .unwrap();
        let mut store = Store::open(&dir.path().join(".perfarena")).unwrap();
        let tasks: Vec<Task> = tasks
            .iter()
            .map(|c| {
                let mut task = Task::new(commit(*c));
                task.parent = Some(commit('b'));
                task.models = vec!["m".into()];
                task
            })
            .collect();
        let plan = RunPlan {
            tasks: tasks.iter().map(|t| t.commit.clone()).collect(),
            candidates: Vec::new(),
            repeats: Repeats::Auto { min: 3, max: 12 },
            warmup: 0,
            seed: 1,
        };
        let backend = ScriptedBackend {
            value,
            runs: Mutex::new(0),
            rounds,
            batches: Mutex::new(Vec::new()),
        };
        let mut runner = Runner {
            suite: &suite,
            store: &mut store,
            backend: &backend,
            events: &NullSink,
            cancel: CancelToken::new(),
            state_dir: dir.path().join(".perfarena"),
            triage: Triage::builtin(),
            parallel: 1,
            gpu_slots: Vec::new(),
            repo: None,
        };
        let outcome = runner.execute("r1", &plan, &tasks).unwrap();
        assert!(!outcome.interrupted);
        let runs = *backend.runs.lock().unwrap();
        assert_eq!(runs as usize, outcome.recorded);
        let mut per_task = BTreeMap::new();
        for attempt in store.attempts(&AttemptFilter::default()).unwrap() {
            *per_task.entry(attempt.task).or_insert(0) += 1;
        }
        (per_task, backend)
    }

    /// Runs one task adaptively (min 3, max 12 rounds) and returns how many attempts ran.
    fn adaptive_attempts(value: fn(&CommitId, &VariantKind, u32) -> f64) -> usize {
        adaptive_run(value, &['a'], false).0.values().sum()
    }

    /// A small deterministic jitter of ±1 % by round.
    fn jitter(round: u32) -> f64 {
        [
            1.0, 0.99, 1.01, 0.995, 1.005, 0.992, 1.008, 0.997, 1.003, 0.99, 1.01, 1.0,
        ][round as usize % 12]
    }

    #[test]
    fn a_clear_win_stops_at_the_first_look() {
        let attempts = adaptive_attempts(|_, variant, round| match variant {
            VariantKind::Human => 150.0 * jitter(round + 5),
            _ => 100.0 * jitter(round),
        });
        assert_eq!(attempts, 6, "3 rounds × 2 variants");
    }

    #[test]
    fn an_unclear_comparison_gets_more_rounds() {
        // Equal performance with ±1 % noise: inconclusive after 3 rounds, but ±2 % equivalence
        // is reachable with more, so rounds are added (never past the maximum).
        let attempts = adaptive_attempts(|_, variant, round| match variant {
            VariantKind::Human => 100.0 * jitter(round + 3),
            _ => 100.0 * jitter(round),
        });
        assert!(attempts > 6 && attempts <= 24, "{attempts}");
    }

    /// Clear win for task `a…`, equal performance (inconclusive at first) for task `c…`.
    fn two_tasks(task: &CommitId, variant: &VariantKind, round: u32) -> f64 {
        match (task.as_str().starts_with('a'), variant) {
            (true, VariantKind::Human) => 150.0 * jitter(round + 5),
            (false, VariantKind::Human) => 100.0 * jitter(round + 3),
            _ => 100.0 * jitter(round),
        }
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
}
