//! Where attempts run. The [`Backend`] trait is what every backend does for one variant
//! (`prepare`) and one attempt (`run`); the runner in the CLI owns ordering, retries and the
//! store. Backends: [`local::LocalBackend`] (git worktrees and processes on this host).

pub mod docker;
pub mod git;
pub mod images;
pub mod local;
pub mod probe;
pub mod process;
pub mod slurm;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

pub use perfarena_core::builtin::BuiltinMetrics;
use perfarena_core::events::EventSink;
use perfarena_core::suite::ReadinessKind;
use perfarena_core::{AttemptStatus, CandidateName, CommitId, RunId, Task, VariantKind};

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Ctrl-C (or another cancellation) stopped the work; nothing should be recorded for it.
    #[error("cancelled")]
    Cancelled,
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("git: {0}")]
    Git(String),
    /// The service the backend drives (the Docker daemon…) cannot be reached: the run stops,
    /// and `--resume` continues it once the service is back.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

impl BackendError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> BackendError {
        BackendError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the run must stop (nothing after this attempt can work either: the daemon is
    /// gone, the disk is full); the attempt is recorded as an infra error and rerun on resume.
    pub fn stops_run(&self) -> bool {
        matches!(self, BackendError::Unavailable(_) | BackendError::Io { .. })
    }
}

/// `create_dir_all` whose error names the directory.
pub(crate) fn create_dir(path: &std::path::Path) -> Result<(), BackendError> {
    std::fs::create_dir_all(path)
        .map_err(|e| BackendError::io(format!("cannot create {}", path.display()), e))
}

/// Shared cancellation flag: set by a signal handler (or by a failing worker, to stop the
/// others), polled by backends while they wait. It remembers the signal that set it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    cancelled: AtomicBool,
    /// The signal number that cancelled, 0 for none.
    signal: AtomicI32,
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
    }
    /// Cancels because of `signal`. Only atomic stores: safe in a signal handler.
    pub fn cancel_by_signal(&self, signal: i32) {
        let _ = self
            .0
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        self.cancel();
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }
    /// The first signal that cancelled, if a signal did.
    pub fn signal(&self) -> Option<i32> {
        match self.0.signal.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }
}

/// A candidate's patch.
#[derive(Debug, Clone)]
pub struct PatchSpec {
    pub name: CandidateName,
    pub sha256: String,
    pub text: String,
}

/// What `prepare` gets: one variant of one task.
#[derive(Debug, Clone)]
pub struct VariantSpec {
    pub run_id: RunId,
    pub task: Task,
    pub variant: VariantKind,
    pub patch: Option<PatchSpec>,
    /// The image of this variant (docker/slurm backends).
    pub image: Option<String>,
    /// The setup command, already expanded (local backend: run once in the checkout).
    pub setup: Option<String>,
    pub setup_timeout: Duration,
    pub env: Vec<(String, String)>,
    /// Where this variant's preparation logs go.
    pub log_dir: PathBuf,
    /// Globs of files whose change needs a rebuild, and of the benchmark harness.
    pub rebuild_globs: Vec<String>,
    pub harness_globs: Vec<String>,
    pub cancel: CancelToken,
}

/// Why a variant cannot be measured at all.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareFailure {
    pub status: AttemptStatus,
    pub message: String,
    pub log: Option<PathBuf>,
}

/// The result of `prepare`.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub variant: VariantKind,
    /// The checkout the commands run in (local backend).
    pub workdir: Option<PathBuf>,
    pub image: Option<String>,
    /// Files the candidate's patch touches that need a rebuild (matched `rebuild_globs`).
    pub rebuild_paths: Vec<String>,
    /// Files the candidate's patch touches in the benchmark harness.
    pub harness_paths: Vec<String>,
    pub failure: Option<PrepareFailure>,
}

/// How to tell that the server is ready.
#[derive(Debug, Clone)]
pub struct ReadinessSpec {
    pub kind: ReadinessKind,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
}

/// What `run` gets: one attempt, its commands already expanded.
#[derive(Debug, Clone)]
pub struct AttemptSpec {
    pub run_id: RunId,
    pub task: CommitId,
    pub variant: VariantKind,
    pub round_idx: u32,
    /// Where `server.log` and `client.log` go.
    pub attempt_dir: PathBuf,
    pub server: Option<String>,
    pub client: String,
    pub readiness: ReadinessSpec,
    pub port: u16,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub kill_grace: Duration,
    pub cancel: CancelToken,
    /// The GPU slot of this attempt (device ids; `--parallel` gives each worker its own).
    /// Empty: the suite's default GPU request.
    pub gpus: Vec<String>,
}

/// How an attempt ended, before its log is parsed.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    /// `Ok` means the client exited 0; the runner then parses the client log (and may turn it
    /// into `NoMetrics`).
    pub status: AttemptStatus,
    pub exit_code: Option<i32>,
    pub message: String,
    pub server_log: Option<PathBuf>,
    pub client_log: PathBuf,
    pub duration_s: f64,
    pub ready_after_s: Option<f64>,
    pub oom_killed: bool,
    /// What perfarena measured of the client and the server itself (`wall_s`, `user_s`…);
    /// the runner adds it to the parsed metrics.
    pub builtin: BuiltinMetrics,
}

/// One task's attempts of one interleaved round, in the order they run.
pub struct RoundSpec<'a> {
    pub task: CommitId,
    pub round_idx: u32,
    pub attempts: Vec<(AttemptSpec, &'a Prepared)>,
}

/// Each round's attempts' results, in the order given.
pub type RoundOutcomes = Vec<Vec<Result<AttemptOutcome, BackendError>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Local,
    Docker,
    Slurm,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Docker => "docker",
            BackendKind::Slurm => "slurm",
        }
    }
}

/// What every backend does; the runner owns ordering, retries and the store.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// Makes a variant runnable (checkout, patch, setup, or image) or says why it cannot be.
    fn prepare(
        &self,
        variant: &VariantSpec,
        events: &dyn EventSink,
    ) -> Result<Prepared, BackendError>;
    /// Runs one attempt: server, readiness, client, teardown.
    fn run(
        &self,
        attempt: &AttemptSpec,
        prepared: &Prepared,
        events: &dyn EventSink,
    ) -> Result<AttemptOutcome, BackendError>;
    /// Whether the runner should hand this backend whole rounds, of many tasks at once
    /// ([`Backend::run_rounds`]) instead of one attempt at a time: a batch scheduler runs a
    /// round as one job (its variants share a node) and many tasks' rounds as one job array.
    fn runs_rounds(&self) -> bool {
        false
    }
    /// Runs several rounds (each one task's attempts of one round, in order); every attempt
    /// gets its own result. `Err` only when the whole batch stops (Ctrl-C: `Cancelled`).
    /// The default runs each attempt in turn.
    fn run_rounds(
        &self,
        rounds: &[RoundSpec<'_>],
        events: &dyn EventSink,
    ) -> Result<RoundOutcomes, BackendError> {
        let mut all = Vec::with_capacity(rounds.len());
        for round in rounds {
            let mut outcomes = Vec::with_capacity(round.attempts.len());
            for (spec, prepared) in &round.attempts {
                match self.run(spec, prepared, events) {
                    Err(BackendError::Cancelled) => return Err(BackendError::Cancelled),
                    result => outcomes.push(result),
                }
            }
            all.push(outcomes);
        }
        Ok(all)
    }
    /// Stops whatever runs for this run (Ctrl-C); also done when `run` sees the cancel token.
    fn cancel(&self, run_id: &RunId) -> Result<(), BackendError>;
    /// Removes what earlier perfarena processes left running (whose process is gone), leaving
    /// `live_runs` alone. Returns how many were removed.
    fn sweep_orphans(&self, live_runs: &[RunId]) -> Result<usize, BackendError>;
    /// Releases a prepared variant (worktrees, temporary images).
    fn release(&self, prepared: &Prepared) -> Result<(), BackendError>;
}
