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
