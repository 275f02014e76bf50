//! `perfarena run`: benchmark the variants of the tasks (or `--resume` an interrupted run).

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use perfarena_backend::local::LocalBackend;
use perfarena_backend::{Backend, CancelToken};
use perfarena_core::Task;
use perfarena_core::import::find_task;

use crate::context::{Ctx, now};
use crate::progress::ProgressSink;
use crate::runner::{Repeats, RunPlan, Runner, create_run, load_candidates, new_run_id};

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Tasks to run, by commit (prefix); default: all imported tasks.
    #[arg(long = "tasks", num_args = 1..)]
    pub tasks: Vec<String>,
    /// Candidate patches, NAME=PATCH: a patch file for every task, or a directory of
    /// `<commit>.patch` files.
    #[arg(long = "candidates", num_args = 1..)]
    pub candidates: Vec<String>,
    /// Measured rounds per variant (default: the suite's bench.repeats), or `auto`: the suite's
    /// stats.min_repeats, more up to stats.max_repeats only for inconclusive tasks.
    #[arg(long)]
    pub repeats: Option<String>,
    /// Where attempts run (default: local; with --resume, the backend the run started on).
    #[arg(long, value_parser = ["local", "docker", "slurm"])]
    pub backend: Option<String>,
    /// Attempts running at once (tasks spread over N workers, each task keeping its
    /// interleaved order); with GPUs, each worker gets its own slot of docker.gpu_slots.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Resume the most recent unfinished run (or the run given with --run-id).
    #[arg(long)]
    pub resume: bool,
    /// The run id (to resume a specific run).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Seed of the shuffled round order.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the event stream as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The run `--resume` continues: the one named, else the most recent unfinished one.
fn run_to_resume(
    store: &perfarena_store::Store,
    run_id: Option<&str>,
) -> Result<perfarena_store::RunRecord> {
    match run_id {
        Some(id) => store
            .run(id)?
            .with_context(|| format!("no run {id} in the store")),
        None => store
            .runs()?
            .into_iter()
            .find(|r| r.status != "finished")
            .context("nothing to resume: every run in the store has finished"),
    }
}

pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<ExitCode> {
    let suite = ctx.suite_required()?;
    suite
        .require_runnable()
        .map_err(|e| anyhow::anyhow!("{}: {e}", ctx.suite_path.display()))?;
    let repo = ctx.repo(&suite)?;
    let era_repo = repo.clone();
    let backend_name = match (&args.backend, args.resume) {
        (Some(name), _) => name.clone(),
        (None, true) => run_to_resume(&ctx.store()?, args.run_id.as_deref())?.backend,
        (None, false) => "local".to_string(),
    };
    // The backend first: an unreachable daemon is an error before anything is recorded.
    let backend: Box<dyn Backend> = match backend_name.as_str() {
        "docker" => Box::new(crate::docker_setup::docker_backend(ctx, &suite, repo)?),
        "slurm" => Box::new(crate::slurm_setup::slurm_backend(ctx, &suite, repo)?),
        _ => {
            let repo = repo.with_context(|| {
                format!(
                    "{}: repo.path is not set: the local backend needs the repository under test",
                    ctx.suite_path.display()
                )
            })?;
            Box::new(LocalBackend::new(repo, &ctx.state_dir))
        }
    };
    let gpu_slots = suite.docker.slots();
    if args.parallel == 0 {
        bail!("--parallel 0: expected at least 1");
    }
    if args.parallel > 1 && backend_name == "docker" {
        if !gpu_slots.is_empty() && gpu_slots.len() < args.parallel {
            bail!(
                "--parallel {} needs {} GPU slots; docker.gpu_slots has {}: add slots or lower --parallel",
                args.parallel,
                args.parallel,
                gpu_slots.len()
            );
        }
        if gpu_slots.is_empty() && !suite.docker.gpus.is_none() {
            bail!(
                "--parallel {} with docker.gpus set would share GPUs between attempts: list docker.gpu_slots (one per attempt running at once)",
                args.parallel
            );
        }
    }
    if args.parallel > 1 && backend.runs_rounds() {
        eprintln!(
            "note: --parallel {} is not used with slurm.job_unit = \"round\": each round of all tasks is one job array, of which slurm.array_limit ({}) run at once",
            args.parallel, suite.slurm.array_limit
        );
    }
    let mut store = ctx.store()?;
    let all_tasks = store.tasks()?;
    if all_tasks.is_empty() {
        bail!("no tasks in the store: import some with `perfarena tasks import FILE`");
    }

    let (run_id, plan) = if args.resume {
        let run = run_to_resume(&store, args.run_id.as_deref())?;
        if run.suite_hash != suite.hash() {
            eprintln!(
                "warning: the suite changed since run {} started; resuming with the current settings",
                run.run_id
            );
        }
        let plan: RunPlan = serde_json::from_value(run.config.clone())
            .with_context(|| format!("run {}: unreadable plan", run.run_id))?;
        store.set_run_status(&run.run_id, "running", None)?;
        (run.run_id, plan)
    } else {
        let tasks: Vec<Task> = if args.tasks.is_empty() {
            all_tasks.clone()
        } else {
            args.tasks
                .iter()
                .map(|prefix| {
                    find_task(&all_tasks, prefix)
                        .cloned()
                        .with_context(|| format!("--tasks {prefix}"))
                })
                .collect::<Result<_>>()?
        };
        let repeats = match args.repeats.as_deref() {
            None => Repeats::Fixed {
                rounds: suite.bench.repeats,
            },
            Some("auto") => Repeats::Auto {
                min: suite.stats.min_repeats.max(2),
                max: suite.stats.max_repeats.max(2),
            },
            Some(n) => {
                let rounds: u32 = n.parse().ok().filter(|r| *r > 0).with_context(|| {
                    format!("--repeats {n:?}: expected a positive number or `auto`")
                })?;
                Repeats::Fixed { rounds }
            }
        };
        let candidates = load_candidates(&args.candidates, &tasks, &store)?;
        let plan = RunPlan {
            tasks: tasks.iter().map(|t| t.commit.clone()).collect(),
            candidates,
            repeats,
            warmup: suite.bench.warmup,
            seed: args.seed.unwrap_or_else(rand::random),
        };
        let run_id = args.run_id.clone().unwrap_or_else(new_run_id);
        create_run(&store, &run_id, &suite, &backend_name, &plan)?;
        (run_id, plan)
    };

    let cancel = CancelToken::new();
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || cancel.cancel()).context("cannot install the Ctrl-C handler")?;
    }
    let done = store.count_attempts(Some(&run_id))? as u64;
    let sink = ProgressSink::new(plan.initial_attempts().max(done), done, args.json);
    sink.println(&format!(
        "run {run_id}: {} task(s), {} attempt(s) planned, {done} already recorded",
        plan.tasks.len(),
        plan.initial_attempts()
    ));
    let tasks = store.tasks()?;
    let triage = perfarena_core::triage::Triage::new(&suite.triage.rules)?;
    let mut runner = Runner {
        suite: &suite,
        store: &mut store,
        backend: backend.as_ref(),
        events: &sink,
        cancel: cancel.clone(),
        state_dir: ctx.state_dir.clone(),
        triage,
        parallel: args.parallel,
        gpu_slots: if backend_name == "docker" {
            gpu_slots
        } else {
            Vec::new()
        },
        repo: era_repo,
    };
    let result = runner.execute(&run_id, &plan, &tasks);
    sink.finish();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = backend.cancel(&perfarena_core::RunId(run_id.clone()));
            // A full disk may refuse this too: the real error is the one to report.
            if let Err(status_error) = store.set_run_status(&run_id, "failed", Some(&now())) {
                eprintln!("warning: cannot mark run {run_id} as failed: {status_error}");
            }
            return Err(e.context(format!(
                "run {run_id} stopped; `perfarena run --resume` continues it"
            )));
        }
    };
    if outcome.interrupted {
        let _ = backend.cancel(&perfarena_core::RunId(run_id.clone()));
        let _ = backend.sweep_orphans(&[]);
        store.set_run_status(&run_id, "interrupted", None)?;
        eprintln!(
            "interrupted: {} attempt(s) recorded in this session; `perfarena run --resume` continues run {run_id}",
            outcome.recorded
        );
        return Ok(ExitCode::from(130));
    }
    store.set_run_status(&run_id, "finished", Some(&now()))?;
    if !args.json {
        println!(
            "run {run_id} finished: {} attempt(s) recorded in this session",
            outcome.recorded
        );
        crate::commands::report::print_summary(&suite, &store, Some(&run_id))?;
        println!("full report: perfarena report [--format md|json|html|csv]");
    }
    Ok(ExitCode::SUCCESS)
}
