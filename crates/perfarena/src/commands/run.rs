//! `perfarena run`: benchmark the variants of the tasks (or `--resume` an interrupted run).

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use perfarena_backend::local::LocalBackend;
use perfarena_backend::{Backend, CancelToken};
use perfarena_core::events::RunStopReason;
use perfarena_runner::schedule::Slot;
use perfarena_runner::{PlainLifecycle, RunEvents, RunRequest, Runner, StoreWriter, plan, signals};

use crate::context::Ctx;
use crate::progress::{ProgressSink, note, say};

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

pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<ExitCode> {
    let suite = ctx.suite_required()?;
    // One writer per project: a second `run` stops here, before anything is planned.
    let _lock = ctx.lock_store()?;
    suite
        .require_runnable()
        .map_err(|e| anyhow::anyhow!("{}: {e}", ctx.suite_path.display()))?;
    let repo = ctx.repo(&suite)?;
    let era_repo = repo.clone();
    let backend_name = match (&args.backend, args.resume) {
        (Some(name), _) => name.clone(),
        (None, true) => plan::run_to_resume(&ctx.store()?, args.run_id.as_deref())?.backend,
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
        note(&format!(
            "note: --parallel {} is not used with slurm.job_unit = \"round\": each round of all tasks is one job array, of which slurm.array_limit ({}) run at once",
            args.parallel, suite.slurm.array_limit
        ));
    }
    let store = ctx.store()?;
    let planned = if args.resume {
        let run = plan::run_to_resume(&store, args.run_id.as_deref())?;
        if run.suite_hash != suite.hash() {
            note(&format!(
                "warning: the suite changed since run {} started; resuming with the current settings",
                run.run_id
            ));
        }
        plan::plan_resume(&store, &run)?
    } else {
        let request = RunRequest {
            tasks: args.tasks.clone(),
            candidates: args.candidates.clone(),
            repeats: args.repeats.clone(),
            seed: args.seed,
            run_id: args.run_id.clone(),
        };
        plan::plan_new(&store, &suite, &request, &backend_name)?
    };

    let cancel = CancelToken::new();
    signals::install(&cancel).context("cannot install the signal handlers")?;
    let sink = ProgressSink::new(args.json);
    let writer = StoreWriter::new(store);
    let runner = Runner {
        suite: &suite,
        backend: backend.as_ref(),
        state_dir: ctx.state_dir.clone(),
        triage: perfarena_core::triage::Triage::new(&suite.triage.rules)?,
        cancel: cancel.clone(),
        repo: era_repo,
        parallel: args.parallel,
        slots: if backend_name == "docker" {
            gpu_slots.into_iter().map(|gpus| Slot { gpus }).collect()
        } else {
            Vec::new()
        },
        lifecycle: &PlainLifecycle,
    };
    let run_id = planned.run_id.clone();
    let result = runner.execute(&planned, RunEvents::new(&writer, &sink));
    sink.finish();
    let outcome = result.map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "run {run_id} stopped; `perfarena run --resume` continues it"
        ))
    })?;
    if let RunStopReason::Interrupted { signal } = &outcome.reason {
        note(&format!(
            "interrupted{}: {} attempt(s) recorded in this session; `perfarena run --resume` continues run {run_id}",
            signal
                .as_deref()
                .map(|s| format!(" by {s}"))
                .unwrap_or_default(),
            outcome.recorded
        ));
        return Ok(ExitCode::from(signals::exit_code(cancel.signal())));
    }
    if !args.json {
        // The run is recorded: from here a closed stdout may end the command quietly.
        crate::restore_sigpipe();
        say(&format!(
            "run {run_id} finished: {} attempt(s) recorded in this session",
            outcome.recorded
        ));
        let store = writer.into_store();
        crate::commands::report::print_summary(&suite, &store, Some(&run_id.0))?;
        say("full report: perfarena report [--format md|json|html|csv]");
    }
    Ok(ExitCode::SUCCESS)
}
