//! Wires the suite's `[slurm]` table to the slurm backend: the shared log directory, the
//! repository for checkouts, and the store's `jobs` table as the backend's job ledger (job ids
//! recorded at submission, so that `--resume` re-attaches instead of resubmitting).

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context as _, Result};

use perfarena_backend::BackendError;
use perfarena_backend::git::GitRepo;
use perfarena_backend::slurm::{
    JobKey, JobLedger, LedgerEntry, SlurmBackend, SlurmOptions, validate_settings,
};
use perfarena_core::Suite;
use perfarena_store::{JobRecord, Store};

use perfarena_backend::docker::resolve_secrets;

use crate::context::{Ctx, now};

/// The store as the slurm backend's ledger (its own connection: the runner holds another).
pub struct StoreLedger {
    store: Mutex<Store>,
}

impl StoreLedger {
    pub fn open(ctx: &Ctx) -> Result<StoreLedger> {
        Ok(StoreLedger {
            store: Mutex::new(ctx.store()?),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Store) -> perfarena_store::Result<T>,
    ) -> Result<T, BackendError> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&store).map_err(|e| BackendError::Other(format!("jobs table: {e}")))
    }
}

impl JobLedger for StoreLedger {
    fn record(&self, key: &JobKey, job_id: &str, state: &str) -> Result<(), BackendError> {
        let job = JobRecord {
            run_id: key.run_id.clone(),
            task: key.task.clone(),
            variant: key.variant.clone(),
            round_idx: key.round_idx,
            backend: "slurm".into(),
            job_id: job_id.into(),
            submitted_at: now(),
            state: state.into(),
        };
        self.with(|store| store.put_job(&job))
    }

    fn lookup(&self, key: &JobKey) -> Result<Option<LedgerEntry>, BackendError> {
        let found =
            self.with(|store| store.job(&key.run_id, &key.task, &key.variant, key.round_idx))?;
        Ok(found
            .filter(|job| job.backend == "slurm")
            .map(|job| LedgerEntry {
                job_id: job.job_id,
                state: job.state,
            }))
    }

    fn set_state(&self, key: &JobKey, state: &str) -> Result<(), BackendError> {
        self.with(|store| {
            store.set_job_state(&key.run_id, &key.task, &key.variant, key.round_idx, state)
        })
    }

    fn is_reattachable(&self, job_id: &str) -> Result<bool, BackendError> {
        self.with(|store| store.job_reattachable("slurm", job_id))
    }
}

/// `slurm.log_dir` resolved against the suite's directory (default `.perfarena/slurm`).
pub fn log_root(ctx: &Ctx, suite: &Suite) -> PathBuf {
    let dir = suite.slurm.log_dir.trim();
    if dir.is_empty() {
        return ctx.state_dir.join("slurm");
    }
    let base = ctx.suite_dir();
    let path = base.join(dir);
    std::path::absolute(&path).unwrap_or(path)
}

/// The slurm backend for this project and suite.
pub fn slurm_backend(ctx: &Ctx, suite: &Suite, repo: Option<GitRepo>) -> Result<SlurmBackend> {
    validate_settings(&suite.slurm)
        .map_err(|e| anyhow::anyhow!("{}: {e}", ctx.suite_path.display()))?;
    let state_dir = std::path::absolute(&ctx.state_dir).unwrap_or_else(|_| ctx.state_dir.clone());
    let log_root = log_root(ctx, suite);
    std::fs::create_dir_all(&log_root)
        .with_context(|| format!("cannot create slurm.log_dir {}", log_root.display()))?;
    let options = SlurmOptions {
        settings: suite.slurm.clone(),
        images: suite.images.clone(),
        source_dir: suite.repo.source_dir.clone(),
        repo,
        state_dir,
        log_root,
        secrets: resolve_secrets(&suite.secrets, &ctx.suite_dir())
            .map_err(|e| anyhow::anyhow!("{}: {e}", ctx.suite_path.display()))?,
        secrets_section: suite.secrets.clone(),
    };
    let ledger = StoreLedger::open(ctx)?;
    SlurmBackend::new(options, Box::new(ledger))
        .map_err(|e| anyhow::anyhow!("{}: {e}", ctx.suite_path.display()))
}

/// `perfarena images build --backend slurm`: one job array with a task per commit (at most
/// `slurm.array_limit` at once); each array task runs `perfarena images build --commit C` with
/// the same options on its node (retry ladder, push and store records included), so the
/// perfarena binary and the project must be on a filesystem the nodes share.
pub fn images_build_on_slurm(
    ctx: &Ctx,
    suite: &Suite,
    args: &crate::commands::images::BuildArgs,
    tasks: &[perfarena_core::Task],
) -> Result<std::process::ExitCode> {
    use perfarena_backend::slurm::builds::{BuildPlan, run_builds};
    use perfarena_core::events::{Event, EventSink};

    struct Lines;
    impl EventSink for Lines {
        fn emit(&self, event: Event) {
            match event {
                Event::Message { text } => eprintln!("{text}"),
                Event::BuildStep { image, step } => eprintln!("  {image}: {step}"),
                _ => {}
            }
        }
    }

    validate_settings(&suite.slurm)
        .map_err(|e| anyhow::anyhow!("{}: {e}", ctx.suite_path.display()))?;
    let exe =
        std::env::current_exe().context("cannot find the perfarena binary to run on the nodes")?;
    let state_dir = std::path::absolute(&ctx.state_dir).unwrap_or_else(|_| ctx.state_dir.clone());
    let project = state_dir
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."));
    let suite_path =
        std::path::absolute(&ctx.suite_path).unwrap_or_else(|_| ctx.suite_path.clone());
    let mut common: Vec<String> = Vec::new();
    if let Some(variant) = args.variant {
        let name = match variant {
            crate::commands::images::VariantArg::Baseline => "baseline",
            crate::commands::images::VariantArg::Human => "human",
            crate::commands::images::VariantArg::Candidates => "candidates",
        };
        common.extend(["--variant".into(), name.into()]);
    }
    if args.no_push {
        common.push("--no-push".into());
    }
    if let Some(max_jobs) = args.max_jobs {
        common.extend(["--max-jobs".into(), max_jobs.to_string()]);
    }
    if !args.candidates.is_empty() {
        common.push("--candidates".into());
        for candidate in &args.candidates {
            // Paths relative to where perfarena was started mean nothing on a node.
            let (name, path) = candidate
                .split_once('=')
                .with_context(|| format!("--candidates {candidate:?}: expected NAME=PATCH"))?;
            let path = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
            common.push(format!("{name}={}", path.display()));
        }
    }
    let builds: Vec<BuildPlan> = tasks
        .iter()
        .map(|task| {
            let mut build_args = vec![
                "-C".to_string(),
                project.display().to_string(),
                "--suite".into(),
                suite_path.display().to_string(),
            ];
            build_args.extend([
                "images".into(),
                "build".into(),
                "--commit".into(),
                task.commit.to_string(),
            ]);
            build_args.extend(common.iter().cloned());
            BuildPlan {
                name: task.short_id().to_string(),
                program: exe.display().to_string(),
                args: build_args,
                workdir: project.clone(),
                env: Vec::new(),
            }
        })
        .collect();
    let dir = std::path::absolute(
        ctx.state_dir
            .join("builds")
            .join(format!("slurm-{}", perfarena_runner::plan::new_run_id())),
    )
    .unwrap_or_default();
    let cancel = perfarena_backend::CancelToken::new();
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || cancel.cancel()).context("cannot install the Ctrl-C handler")?;
    }
    let timeout = std::time::Duration::from_secs(suite.build.timeout_s);
    let outcomes = match run_builds(&suite.slurm, &dir, &builds, timeout, &cancel, &Lines) {
        Ok(outcomes) => outcomes,
        Err(BackendError::Cancelled) => {
            eprintln!(
                "interrupted: the build job was cancelled; run the same command again to continue"
            );
            return Ok(std::process::ExitCode::from(130));
        }
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    let mut failed = 0;
    for outcome in &outcomes {
        let mark = if outcome.ok { "✓" } else { "✗" };
        let note = if outcome.message.is_empty() {
            String::new()
        } else {
            format!(": {}", outcome.message)
        };
        eprintln!(
            "{mark} task {} ({}, log {}){note}",
            outcome.name,
            outcome.state,
            outcome.log.display()
        );
        failed += usize::from(!outcome.ok);
    }
    eprintln!(
        "images: {} task(s) built on slurm, {failed} failed; details with `perfarena images status`",
        outcomes.len()
    );
    Ok(if failed > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}
