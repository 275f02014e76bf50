//! The runner: plans a run (tasks × variants × rounds, interleaved in shuffled rounds), drives a
//! backend, parses each attempt's log and writes each attempt to the store before the next one
//! starts. `--resume` replays the same plan and runs only what has no recorded attempt.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use perfarena_backend::{
    AttemptSpec, Backend, BackendError, CancelToken, PatchSpec, Prepared, ReadinessSpec,
    VariantSpec,
};
use perfarena_core::analysis::{AnalysisSettings, task_reports};
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

    fn run_task(
        &mut self,
        run_id: &str,
        plan: &RunPlan,
        task: &Task,
        recorded: &mut usize,
    ) -> Result<()> {
        let variants = plan.variants(&task.commit);
        let existing = self.store.attempts(&AttemptFilter {
            run_id: Some(run_id.into()),
            task: Some(task.commit.clone()),
            variant: None,
        })?;
        // An attempt cut short by a fatal backend error (daemon gone, disk full) stays recorded
        // but does not count as done: resume reruns its round.
        let mut done: BTreeSet<(VariantKind, u32)> = existing
            .iter()
            .filter(|a| a.metadata.get("rerun_on_resume").and_then(|v| v.as_bool()) != Some(true))
            .map(|a| (a.variant.clone(), a.round_idx))
            .collect();
        let mut failed: BTreeSet<VariantKind> = existing
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
        let mut prepared: HashMap<VariantKind, Prepared> = HashMap::new();
        let mut target_rounds = plan.warmup + plan.repeats.initial_rounds();
        let mut round = 0;
        let result = (|| -> Result<()> {
            while round < target_rounds {
                for &idx in &order[round as usize] {
                    let variant = &variants[idx];
                    if done.contains(&(variant.clone(), round)) || failed.contains(variant) {
                        continue;
                    }
                    if self.cancel.is_cancelled() {
                        return Err(BackendError::Cancelled.into());
                    }
                    if !prepared.contains_key(variant) {
                        let p = self.prepare(run_id, plan, task, variant)?;
                        if let Some(failure) = &p.failure {
                            let mut record = AttemptRecord::new(
                                task.commit.clone(),
                                variant.clone(),
                                round,
                                failure.status,
                            );
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
                            record.failure = self.triage.classify_attempt(
                                record.status,
                                &record.message,
                                &[&log],
                            );
                            self.record(&record, None)?;
                            *recorded += 1;
                            failed.insert(variant.clone());
                            let _ = self.backend.release(&p);
                            continue;
                        }
                        prepared.insert(variant.clone(), p);
                    }
                    let p = &prepared[variant];
                    let record = self.attempt(run_id, plan, task, variant, round, p)?;
                    let stops_run = record
                        .metadata
                        .get("rerun_on_resume")
                        .and_then(|v| v.as_bool())
                        == Some(true);
                    if let Err(e) = self.record(&record, Some(&self.suite.metric.primary)) {
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
                    done.insert((variant.clone(), round));
                }
                round += 1;
                if round == target_rounds {
                    if let Repeats::Auto { min, max } = plan.repeats {
                        target_rounds = plan.warmup
                            + self.adaptive_target(task, run_id, round - plan.warmup, min, max)?;
                    }
                }
            }
            Ok(())
        })();
        for p in prepared.values() {
            let _ = self.backend.release(p);
        }
        result
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
        let report = task_reports(std::slice::from_ref(task), &attempts, &settings);
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

    fn attempt(
        &self,
        run_id: &str,
        plan: &RunPlan,
        task: &Task,
        variant: &VariantKind,
        round: u32,
        prepared: &Prepared,
    ) -> Result<AttemptRecord> {
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
                return Ok(record);
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
        let outcome = match self.backend.run(&spec, prepared, self.events) {
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
        value: fn(&VariantKind, u32) -> f64,
        runs: Mutex<u32>,
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
            let value = (self.value)(&spec.variant, spec.round_idx);
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

    /// Runs one task adaptively (min 3, max 12 rounds) and returns how many attempts ran.
    fn adaptive_attempts(value: fn(&VariantKind, u32) -> f64) -> u32 {
        let dir = tempfile::tempdir().unwrap();
        let suite = Suite::from_toml_str(
            "[bench]\nclient = \"bench\"\n[stats]\nmin_repeats = 3\nmax_repeats = 12\n",
            "s.toml",
        )
        .unwrap();
        let mut store = Store::open(&dir.path().join(".perfarena")).unwrap();
        let mut task = Task::new(CommitId::parse(&"a".repeat(40)).unwrap());
        task.parent = Some(CommitId::parse(&"b".repeat(40)).unwrap());
        task.models = vec!["m".into()];
        let plan = RunPlan {
            tasks: vec![task.commit.clone()],
            candidates: Vec::new(),
            repeats: Repeats::Auto { min: 3, max: 12 },
            warmup: 0,
            seed: 1,
        };
        let backend = ScriptedBackend {
            value,
            runs: Mutex::new(0),
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
        let outcome = runner.execute("r1", &plan, &[task]).unwrap();
        assert!(!outcome.interrupted);
        let runs = *backend.runs.lock().unwrap();
        assert_eq!(runs as usize, outcome.recorded);
        runs
    }

    /// A small deterministic jitter of ±1 % by round.
    fn jitter(round: u32) -> f64 {
        [
            1.0, 0.99, 1.01, 0.995, 1.005, 0.992, 1.008, 0.997, 1.003, 0.99, 1.01, 1.0,
        ][round as usize % 12]
    }

    #[test]
    fn a_clear_win_stops_at_the_first_look() {
        let attempts = adaptive_attempts(|variant, round| match variant {
            VariantKind::Human => 150.0 * jitter(round + 5),
            _ => 100.0 * jitter(round),
        });
        assert_eq!(attempts, 6, "3 rounds × 2 variants");
    }

    #[test]
    fn an_unclear_comparison_gets_more_rounds() {
        // Equal performance with ±1 % noise: inconclusive after 3 rounds, but ±2 % equivalence
        // is reachable with more, so rounds are added (never past the maximum).
        let attempts = adaptive_attempts(|variant, round| match variant {
            VariantKind::Human => 100.0 * jitter(round + 3),
            _ => 100.0 * jitter(round),
        });
        assert!(attempts > 6 && attempts <= 24, "{attempts}");
    }
}
