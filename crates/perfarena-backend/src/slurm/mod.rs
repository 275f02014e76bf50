//! The `slurm` backend: attempts run as batch jobs submitted with `sbatch --parsable` from
//! generated scripts (kept in the attempt's directory), tracked with `squeue`/`sacct`/`scontrol`,
//! and their logs copied from the shared log directory into the attempt's directory when they
//! end. A job holds one attempt (`slurm.job_unit = "attempt"`) or one task's interleaved round
//! (`"round"`, the default; many tasks' rounds go as one job array, see `rounds.rs`).
//!
//! Variants are prepared like the local backend (a git worktree, the patch, the setup step) for
//! the `plain` launcher and for container launchers that mount the checkout into one image;
//! otherwise each variant runs in its own image. Job ids go to a [`JobLedger`] (the store's
//! `jobs` table) at submission, so that `--resume` re-attaches to a job instead of submitting it
//! again; a job Slurm has forgotten without a result is submitted once more. Ctrl-C cancels the
//! job in flight (`scancel`), and jobs of dead perfarena processes are swept on the next start.

pub mod builds;
pub mod cli;
mod rounds;
pub mod script;
pub mod status;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use perfarena_core::builtin::bytes_to_mib;
use perfarena_core::events::{Event, EventSink};
use perfarena_core::suite::{
    ImagesConfig, SlurmJobUnit, SlurmLauncher, SlurmSection, SlurmSetupOn,
};
use perfarena_core::{AttemptStatus, CommitId, RunId, VariantKind, patch};

use crate::git::GitRepo;
use crate::local::LocalBackend;
use crate::process::{pid_alive, tail_lines};
use crate::{
    AttemptOutcome, AttemptSpec, Backend, BackendError, BackendKind, BuiltinMetrics,
    PrepareFailure, Prepared, VariantSpec,
};

use self::cli::{QueueState, SlurmCli};
use self::script::{AttemptScript, JobHeader, LaunchTarget};
use self::status::{FinalState, LogTails, StatusFile, is_terminal, verdict};

/// Which attempt a job belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobKey {
    pub run_id: String,
    pub task: CommitId,
    pub variant: VariantKind,
    pub round_idx: u32,
}

/// A job as the ledger remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub job_id: String,
    /// `submitted`, `rerun` (submitted again after the first job vanished), `cancelled`,
    /// `vanished` or `ended:<slurm state>`.
    pub state: String,
}

/// Where job ids are kept across perfarena processes (the store's `jobs` table in the CLI).
pub trait JobLedger: Send + Sync {
    /// Records the job of an attempt at submission (replacing an earlier one).
    fn record(&self, key: &JobKey, job_id: &str, state: &str) -> Result<(), BackendError>;
    fn lookup(&self, key: &JobKey) -> Result<Option<LedgerEntry>, BackendError>;
    fn set_state(&self, key: &JobKey, state: &str) -> Result<(), BackendError>;
    /// Whether a later `--resume` may still re-attach to this job (it is recorded as submitted
    /// for a run that has not finished); such jobs are not swept as orphans.
    fn is_reattachable(&self, job_id: &str) -> Result<bool, BackendError>;
}

/// A ledger in memory (tests, and uses without a store).
#[derive(Debug, Default)]
pub struct MemoryLedger(Mutex<HashMap<JobKey, LedgerEntry>>);

impl JobLedger for MemoryLedger {
    fn record(&self, key: &JobKey, job_id: &str, state: &str) -> Result<(), BackendError> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(
            key.clone(),
            LedgerEntry {
                job_id: job_id.into(),
                state: state.into(),
            },
        );
        Ok(())
    }
    fn lookup(&self, key: &JobKey) -> Result<Option<LedgerEntry>, BackendError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned())
    }
    fn set_state(&self, key: &JobKey, state: &str) -> Result<(), BackendError> {
        if let Some(entry) = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(key)
        {
            entry.state = state.into();
        }
        Ok(())
    }
    fn is_reattachable(&self, job_id: &str) -> Result<bool, BackendError> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map
            .values()
            .any(|e| e.job_id == job_id && (e.state == "submitted" || e.state == "rerun")))
    }
}

/// What the slurm backend is built from.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    pub settings: SlurmSection,
    pub images: ImagesConfig,
    /// `repo.source_dir`: where the source is inside images.
    pub source_dir: String,
    /// The repository under test (needed for checkouts: the plain launcher, or `slurm.image`).
    pub repo: Option<GitRepo>,
    /// `.perfarena` of the project.
    pub state_dir: PathBuf,
    /// The shared directory jobs write to (`slurm.log_dir`, resolved).
    pub log_root: PathBuf,
    /// The suite's secrets (resolved) and which variants get them (`secrets.allow`).
    pub secrets: Vec<crate::docker::Secret>,
    pub secrets_section: perfarena_core::suite_docker::SecretsSection,
}

/// Checks the `[slurm]` table; errors name the key.
pub fn validate_settings(settings: &SlurmSection) -> Result<(), String> {
    if !script::valid_time_limit(settings.time_limit.trim()) {
        return Err(format!(
            "slurm.time_limit = {:?}: expected minutes, \"H:MM:SS\" or \"D-HH:MM:SS\"",
            settings.time_limit
        ));
    }
    if settings.array_limit == 0 {
        return Err("slurm.array_limit must be at least 1".into());
    }
    if settings.cpus == 0 {
        return Err("slurm.cpus must be at least 1".into());
    }
    if settings.poll_interval_ms == 0 {
        return Err("slurm.poll_interval_ms must be at least 1".into());
    }
    for mount in &settings.mounts {
        if !mount.contains(':') {
            return Err(format!(
                "slurm.mounts: {mount:?} is not HOST_PATH:CONTAINER_PATH"
            ));
        }
    }
    for (key, value) in [
        ("slurm.partition", &settings.partition),
        ("slurm.account", &settings.account),
        ("slurm.qos", &settings.qos),
        ("slurm.mem", &settings.mem),
        ("slurm.gpu_type", &settings.gpu_type),
    ] {
        if value.chars().any(char::is_whitespace) {
            return Err(format!("{key} = {value:?} must not contain spaces"));
        }
    }
    Ok(())
}

/// Runs attempts as Slurm jobs.
pub struct SlurmBackend {
    options: SlurmOptions,
    local: Option<LocalBackend>,
    ledger: Box<dyn JobLedger>,
    cli: SlurmCli,
    /// Jobs this process submitted (or re-attached to) that may still run: job id → run id.
    live: Mutex<BTreeMap<String, String>>,
    /// The node each task's first attempt ran on (`slurm.same_node`).
    nodes: Mutex<HashMap<CommitId, String>>,
    owner: String,
    /// A short hash of the project's state directory: the sweep touches only this project's jobs.
    project: String,
}

/// `host:pid` of this process, stored in each job's comment.
fn owner_label() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A short, stable hash of a project's state directory (FNV-1a), naming the project in job
/// comments so that the orphan sweep touches only this project's jobs.
pub fn project_label(state_dir: &Path) -> String {
    let path = fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.to_string_lossy().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", hash & 0xffff_ffff_ffff)
}

/// perfarena's labels in a job comment: `perfarena.run=R;perfarena.task=T;…`.
pub fn parse_comment(comment: &str) -> BTreeMap<String, String> {
    comment
        .split(';')
        .filter_map(|part| part.split_once('='))
        .filter(|(key, _)| key.starts_with("perfarena."))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

const PREPARED_MARKER: &str = "prepared.slurm.json";

enum Tracked {
    Ended(FinalState),
    Vanished,
}

impl SlurmBackend {
    pub fn new(
        options: SlurmOptions,
        ledger: Box<dyn JobLedger>,
    ) -> Result<SlurmBackend, BackendError> {
        validate_settings(&options.settings).map_err(BackendError::Other)?;
        let needs_checkout = options.settings.launcher == SlurmLauncher::Plain
            || !options.settings.image.trim().is_empty();
        if needs_checkout && options.repo.is_none() {
            return Err(BackendError::Other(
                "the slurm backend with the plain launcher (or slurm.image) checks out each variant: set repo.path in the suite".into(),
            ));
        }
        let local = options
            .repo
            .clone()
            .map(|repo| LocalBackend::new(repo, &options.state_dir));
        let project = project_label(&options.state_dir);
        Ok(SlurmBackend {
            options,
            local,
            ledger,
            cli: SlurmCli,
            live: Mutex::new(BTreeMap::new()),
            nodes: Mutex::new(HashMap::new()),
            owner: owner_label(),
            project,
        })
    }

    fn settings(&self) -> &SlurmSection {
        &self.options.settings
    }

    fn needs_checkout(&self) -> bool {
        self.settings().launcher == SlurmLauncher::Plain || !self.settings().image.trim().is_empty()
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.settings().poll_interval_ms.max(1))
    }

    /// The shared directory of one attempt: `<log_dir>/<run>/<task>/<variant>/round-N`.
    pub fn job_root(&self, spec: &AttemptSpec) -> PathBuf {
        self.options
            .log_root
            .join(&spec.run_id.0)
            .join(spec.task.short(12))
            .join(spec.variant.dir_name())
            .join(format!("round-{}", spec.round_idx))
    }

    fn comment(&self, key: &JobKey) -> String {
        format!(
            "perfarena.run={};perfarena.task={};perfarena.variant={};perfarena.project={};perfarena.owner={}",
            key.run_id,
            key.task.short(12),
            key.variant,
            self.project,
            self.owner
        )
    }

    /// The job script of an attempt.
    pub fn attempt_script(
        &self,
        spec: &AttemptSpec,
        prepared: &Prepared,
        job_root: &Path,
    ) -> Result<AttemptScript, BackendError> {
        let settings = self.settings();
        let job_name = format!(
            "pa-{}-{}-r{}",
            spec.task.short(12),
            spec.variant.dir_name(),
            spec.round_idx
        );
        let default_time = spec.timeout + spec.kill_grace * 2 + Duration::from_secs(60);
        let header = JobHeader::from_settings(
            settings,
            job_name,
            job_root.join("slurm-%j.out"),
            default_time,
        );
        let source_dir = self.options.source_dir.clone();
        let target = match settings.launcher {
            SlurmLauncher::Plain => {
                let workdir = prepared
                    .workdir
                    .clone()
                    .ok_or_else(|| BackendError::Other("variant has no checkout".into()))?;
                LaunchTarget::Plain { workdir }
            }
            launcher => {
                let shared_image = settings.image.trim();
                if shared_image.is_empty() {
                    let image = prepared
                        .image
                        .clone()
                        .ok_or_else(|| BackendError::Other("variant has no image".into()))?;
                    LaunchTarget::Container {
                        launcher,
                        image,
                        mount: None,
                        workdir: source_dir,
                    }
                } else {
                    let checkout = prepared
                        .workdir
                        .clone()
                        .ok_or_else(|| BackendError::Other("variant has no checkout".into()))?;
                    LaunchTarget::Container {
                        launcher,
                        image: shared_image.to_string(),
                        mount: Some((checkout, source_dir.clone())),
                        workdir: source_dir,
                    }
                }
            }
        };
        for path in [job_root.to_path_buf()].iter().chain(match &target {
            LaunchTarget::Plain { workdir } => Some(workdir),
            _ => None,
        }) {
            if path.to_string_lossy().chars().any(char::is_whitespace) {
                return Err(BackendError::Other(format!(
                    "{} contains a space: batch scripts need paths without spaces (move the project or set slurm.log_dir)",
                    path.display()
                )));
            }
        }
        Ok(AttemptScript {
            header,
            about: vec![
                format!("perfarena attempt: run {}, task {}, variant {}, round {}", spec.run_id.0, spec.task, spec.variant, spec.round_idx),
                "Written by perfarena before submission; resubmit by hand with `sbatch <this file>`.".into(),
                format!("The job writes its logs and status file to {}/job-<job id>/.", job_root.display()),
            ],
            target,
            job_root: job_root.to_path_buf(),
            server: spec.server.clone(),
            client: spec.client.clone(),
            readiness: spec.readiness.kind,
            readiness_url: spec.readiness.url.clone(),
            readiness_interval: spec.readiness.interval,
            readiness_timeout: spec.readiness.timeout,
            port: spec.port,
            timeout: spec.timeout,
            kill_grace: spec.kill_grace,
            env: spec.env.clone(),
            labels: vec![
                ("perfarena.run".into(), spec.run_id.0.clone()),
                ("perfarena.task".into(), spec.task.short(12).to_string()),
                ("perfarena.variant".into(), spec.variant.to_string()),
            ],
            gpus: settings.gpus,
            mounts: settings.mounts.clone(),
            launcher_args: settings.launcher_args.clone(),
            prologue: settings.prologue.clone(),
            secrets: if self.options.secrets_section.allows(&spec.variant) {
                self.secret_names()
            } else {
                Vec::new()
            },
            withheld: if self.options.secrets_section.allows(&spec.variant) {
                Vec::new()
            } else {
                self.secret_names()
            },
        })
    }

    fn secret_names(&self) -> Vec<String> {
        self.options
            .secrets
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    /// The secrets as sbatch's environment (the job inherits it; scripts name them only).
    fn secret_env(&self) -> Vec<(String, String)> {
        self.options
            .secrets
            .iter()
            .map(|s| (s.name.clone(), s.value.clone()))
            .collect()
    }

    /// Replaces secret values in a log the job wrote by `[redacted:NAME]` (in place).
    fn redact_file(&self, path: &Path) -> Result<(), BackendError> {
        if self.options.secrets.is_empty() || !path.exists() {
            return Ok(());
        }
        let text = fs::read(path)
            .map_err(|e| BackendError::io(format!("cannot read {}", path.display()), e))?;
        let mut redactor = crate::docker::Redactor::new(&self.options.secrets);
        let mut out = redactor.push(&text);
        out.extend(redactor.finish());
        if out != text {
            fs::write(path, out)
                .map_err(|e| BackendError::io(format!("cannot write {}", path.display()), e))?;
        }
        Ok(())
    }

    /// Writes the job script and submits it; `Ok(Err(message))` when sbatch refuses it.
    fn submit(
        &self,
        spec: &AttemptSpec,
        prepared: &Prepared,
        key: &JobKey,
        job_root: &Path,
        rerun: bool,
    ) -> Result<Result<String, String>, BackendError> {
        let script = self.attempt_script(spec, prepared, job_root)?.render();
        let script_path = spec.attempt_dir.join("job.sh");
        write_script(&script_path, &script)?;
        write_script(&job_root.join("job.sh"), &script)?;
        let mut extra = vec![format!("--comment={}", self.comment(key))];
        if self.settings().same_node
            && let Some(node) = self
                .nodes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&spec.task)
        {
            extra.push(format!("--nodelist={node}"));
        }
        let submitted = self
            .cli
            .submit_with_env(&script_path, &extra, &self.secret_env())?;
        if let Ok(job_id) = &submitted {
            self.live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(job_id.clone(), key.run_id.clone());
            self.ledger
                .record(key, job_id, if rerun { "rerun" } else { "submitted" })?;
        }
        Ok(submitted)
    }

    /// Waits for a job to end, emitting `ServerReady` when its status file says so. On
    /// cancellation the job is cancelled and `Err(Cancelled)` returned.
    fn track(
        &self,
        job_id: &str,
        key: &JobKey,
        spec: &AttemptSpec,
        job_root: &Path,
        events: &dyn EventSink,
    ) -> Result<Tracked, BackendError> {
        let status_path = job_root.join(format!("job-{job_id}")).join("status");
        let mut ready_seen = false;
        let mut unreachable_since: Option<Instant> = None;
        loop {
            if spec.cancel.is_cancelled() {
                self.cancel_jobs(&[job_id.to_string()]);
                let _ = self.ledger.set_state(key, "cancelled");
                return Err(BackendError::Cancelled);
            }
            match self.cli.queue_state(job_id) {
                Ok(QueueState::Listed { state, .. }) if is_terminal(&state) => {
                    let final_state = self.cli.final_state(job_id)?.unwrap_or(FinalState {
                        state,
                        exit_code: None,
                        signal: None,
                        node: None,
                        reason: None,
                        source: "squeue",
                    });
                    return Ok(Tracked::Ended(final_state));
                }
                Ok(QueueState::Listed { state, .. }) => {
                    unreachable_since = None;
                    if !ready_seen && state == "RUNNING" {
                        let status = StatusFile::parse(
                            &fs::read_to_string(&status_path).unwrap_or_default(),
                        );
                        if let Some(after) = status.ready_after_s() {
                            ready_seen = true;
                            events.emit(Event::ServerReady {
                                task: spec.task.clone(),
                                variant: spec.variant.clone(),
                                round_idx: spec.round_idx,
                                after_s: after,
                            });
                        }
                    }
                }
                Ok(QueueState::Unknown) => {
                    return Ok(match self.cli.final_state(job_id)? {
                        Some(final_state) => Tracked::Ended(final_state),
                        None => Tracked::Vanished,
                    });
                }
                Err(e) => {
                    // The controller may restart; give it a few minutes before giving up.
                    let since = *unreachable_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(300) {
                        return Err(BackendError::Unavailable(format!(
                            "slurm has not answered for 5 minutes while job {job_id} ran: {e}"
                        )));
                    }
                }
            }
            std::thread::sleep(self.poll_interval());
        }
    }

    /// `scancel`, then waits (up to a minute) until the jobs have left the queue.
    fn cancel_jobs(&self, job_ids: &[String]) {
        if job_ids.is_empty() {
            return;
        }
        let _ = self.cli.cancel(job_ids);
        let deadline = Instant::now() + Duration::from_secs(60);
        for job_id in job_ids {
            while Instant::now() < deadline {
                match self.cli.queue_state(job_id) {
                    Ok(QueueState::Listed { state, .. }) if !is_terminal(&state) => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    _ => break,
                }
            }
            self.live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(job_id);
        }
    }

    /// Copies the job's logs into the attempt's directory and maps its end to an outcome.
    fn finish(
        &self,
        job_id: &str,
        final_state: FinalState,
        key: &JobKey,
        spec: &AttemptSpec,
        job_root: &Path,
        started: Instant,
    ) -> Result<AttemptOutcome, BackendError> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job_id);
        let job_dir = job_root.join(format!("job-{job_id}"));
        let read_status =
            || StatusFile::parse(&fs::read_to_string(job_dir.join("status")).unwrap_or_default());
        let mut status = read_status();
        if matches!(final_state.state.as_str(), "COMPLETED" | "FAILED") && !status.has_result() {
            // A shared filesystem may show the last lines late.
            let deadline = Instant::now() + Duration::from_secs(5);
            while !status.has_result() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
                status = read_status();
            }
        }
        let dir = &spec.attempt_dir;
        crate::create_dir(dir)?;
        // A program may print a secret: the logs are redacted where the job left them too.
        for name in ["server.log", "client.log"] {
            self.redact_file(&job_dir.join(name))?;
        }
        self.redact_file(&job_root.join(format!("slurm-{job_id}.out")))?;
        for name in ["server.log", "client.log", "status"] {
            copy_if_present(&job_dir.join(name), &dir.join(name))?;
        }
        copy_if_present(
            &job_root.join(format!("slurm-{job_id}.out")),
            &dir.join("job.out"),
        )?;
        self.redact_file(&dir.join("job.out"))?;
        if !dir.join("job.sh").exists() {
            copy_if_present(&job_root.join("job.sh"), &dir.join("job.sh"))?;
        }
        fs::write(dir.join("job.id"), format!("{job_id}\n")).map_err(|e| {
            BackendError::io(format!("cannot write {}", dir.join("job.id").display()), e)
        })?;
        let client_log = dir.join("client.log");
        if !client_log.exists() {
            fs::write(&client_log, "").map_err(|e| {
                BackendError::io(format!("cannot write {}", client_log.display()), e)
            })?;
        }
        let server_log = spec.server.as_ref().map(|_| dir.join("server.log"));
        if self.settings().same_node
            && let Some(node) = status
                .node()
                .map(str::to_string)
                .or_else(|| final_state.node.clone())
        {
            self.nodes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(spec.task.clone())
                .or_insert(node);
        }
        let tails = LogTails {
            server: server_log
                .as_deref()
                .map(|l| tail_lines(l, 1))
                .unwrap_or_default(),
            client: tail_lines(&client_log, 1),
            job: tail_lines(&dir.join("job.out"), 2),
        };
        let header_time = self.attempt_time_limit(spec);
        let judged = verdict(
            &final_state,
            &status,
            &tails,
            job_id,
            &header_time,
            spec.timeout.as_secs(),
        );
        let _ = self
            .ledger
            .set_state(key, &format!("ended:{}", final_state.state));
        let mut builtin = BuiltinMetrics {
            client: status.usage("client"),
            server: status.usage("server"),
        };
        // A job of one attempt: its peak memory is the attempt's (server and client), when
        // accounting is on. A round job holds several attempts: its peak is no one's.
        if self.settings().job_unit == SlurmJobUnit::Attempt
            && let Some(client) = builtin.client.as_mut()
            && let Ok(Some(bytes)) = self.cli.job_max_rss(job_id)
        {
            client.max_rss_mb = Some(bytes_to_mib(bytes));
        }
        Ok(AttemptOutcome {
            status: judged.status,
            exit_code: judged.exit_code,
            message: judged.message,
            server_log,
            client_log,
            duration_s: status
                .duration_s()
                .unwrap_or_else(|| started.elapsed().as_secs_f64()),
            ready_after_s: status.ready_after_s(),
            oom_killed: judged.oom_killed,
            builtin,
        })
    }

    /// Runs `bench.setup` in the checkout as a Slurm job (`slurm.setup_on = "node"`), so that
    /// it compiles with the node's toolchain; its log becomes the variant's `setup.log`.
    /// `Some(failure)` when it did not succeed.
    fn setup_job(
        &self,
        spec: &VariantSpec,
        setup: &str,
        workdir: &Path,
        events: &dyn EventSink,
    ) -> Result<Option<PrepareFailure>, BackendError> {
        let dir = self
            .options
            .log_root
            .join(&spec.run_id.0)
            .join(spec.task.commit.short(12))
            .join(spec.variant.dir_name())
            .join("setup");
        let command = builds::BuildPlan {
            name: format!("setup of {} {}", spec.task.commit.short(12), spec.variant),
            program: "sh".into(),
            args: vec!["-c".into(), setup.to_string()],
            workdir: workdir.to_path_buf(),
            env: spec.env.clone(),
        };
        let outcome = builds::run_builds(
            self.settings(),
            &dir,
            std::slice::from_ref(&command),
            spec.setup_timeout,
            &spec.cancel,
            events,
        )?
        .into_iter()
        .next()
        .ok_or_else(|| BackendError::Other("the setup job reported nothing".into()))?;
        crate::create_dir(&spec.log_dir)?;
        let log = spec.log_dir.join("setup.log");
        copy_if_present(&outcome.log, &log)?;
        if outcome.ok {
            return Ok(None);
        }
        let tail = tail_lines(&log, 3);
        let message = match (outcome.state.as_str(), outcome.exit_code) {
            ("TIMEOUT", _) => format!(
                "setup job hit its slurm time limit (bench.setup_timeout_s = {}s or slurm.time_limit)",
                spec.setup_timeout.as_secs()
            ),
            ("OUT_OF_MEMORY", _) => {
                "setup job ran out of memory (oom-kill): raise slurm.mem".to_string()
            }
            (_, Some(code)) => format!("setup exited with code {code}: {tail}"),
            (state, None) => format!("setup job ended {state}: {}", outcome.message),
        };
        Ok(Some(PrepareFailure {
            status: AttemptStatus::BuildFailed,
            message,
            log: Some(log),
        }))
    }

    fn attempt_time_limit(&self, spec: &AttemptSpec) -> String {
        let limit = self.settings().time_limit.trim();
        if limit.is_empty() {
            script::time_limit(spec.timeout + spec.kill_grace * 2 + Duration::from_secs(60))
        } else {
            limit.to_string()
        }
    }

    fn prepare_image(
        &self,
        spec: &VariantSpec,
        events: &dyn EventSink,
    ) -> Result<Prepared, BackendError> {
        let failure = |status, message: String| Prepared {
            variant: spec.variant.clone(),
            workdir: None,
            image: None,
            rebuild_paths: Vec::new(),
            harness_paths: Vec::new(),
            failure: Some(PrepareFailure {
                status,
                message,
                log: None,
            }),
        };
        let image = match &spec.image {
            Some(image) => image.clone(),
            None => match perfarena_core::images::image_ref(
                &self.options.images,
                &spec.task,
                &spec.variant,
                spec.patch.as_ref().map(|p| p.sha256.as_str()),
            ) {
                Ok(image) => image,
                Err(e) => {
                    return Ok(failure(
                        AttemptStatus::InfraError,
                        format!(
                            "no image name for {} {}: {e}",
                            spec.task.short_id(),
                            spec.variant
                        ),
                    ));
                }
            },
        };
        let (mut rebuild_paths, mut harness_paths) = (Vec::new(), Vec::new());
        if let Some(patch_spec) = &spec.patch {
            let touched = patch::patch_paths(&patch_spec.text);
            rebuild_paths = patch::matching(&touched, &spec.rebuild_globs)
                .map_err(|e| BackendError::Other(e.to_string()))?;
            harness_paths = patch::matching(&touched, &spec.harness_globs)
                .map_err(|e| BackendError::Other(e.to_string()))?;
        }
        events.emit(Event::PrepareFinished {
            task: spec.task.commit.clone(),
            variant: spec.variant.clone(),
            ok: true,
            message: String::new(),
        });
        Ok(Prepared {
            variant: spec.variant.clone(),
            workdir: None,
            image: Some(image),
            rebuild_paths,
            harness_paths,
            failure: None,
        })
    }
}

fn write_script(path: &Path, text: &str) -> Result<(), BackendError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        crate::create_dir(parent)?;
    }
    fs::write(path, text)
        .map_err(|e| BackendError::io(format!("cannot write {}", path.display()), e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| BackendError::io(format!("cannot chmod {}", path.display()), e))
}

fn copy_if_present(from: &Path, to: &Path) -> Result<(), BackendError> {
    if from.exists() {
        fs::copy(from, to).map_err(|e| {
            BackendError::io(
                format!("cannot copy {} to {}", from.display(), to.display()),
                e,
            )
        })?;
    }
    Ok(())
}

/// What a successful preparation left, so that a resumed run can reuse the checkout in which
/// its re-attached jobs still run.
#[derive(serde::Serialize, serde::Deserialize)]
struct PreparedMarker {
    workdir: PathBuf,
    rebuild_paths: Vec<String>,
    harness_paths: Vec<String>,
}

impl Backend for SlurmBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Slurm
    }

    fn prepare(
        &self,
        spec: &VariantSpec,
        events: &dyn EventSink,
    ) -> Result<Prepared, BackendError> {
        if !self.needs_checkout() {
            return self.prepare_image(spec, events);
        }
        let local = self.local.as_ref().ok_or_else(|| {
            BackendError::Other("the slurm backend needs repo.path for checkouts".into())
        })?;
        let marker = spec.log_dir.join(PREPARED_MARKER);
        // A resumed run: the checkout of the interrupted process is complete (the marker is
        // written last) and jobs re-attached to may still run in it, so it is kept.
        if let Ok(text) = fs::read_to_string(&marker)
            && let Ok(found) = serde_json::from_str::<PreparedMarker>(&text)
            && found.workdir.is_dir()
        {
            events.emit(Event::PrepareFinished {
                task: spec.task.commit.clone(),
                variant: spec.variant.clone(),
                ok: true,
                message: "reused checkout".into(),
            });
            return Ok(Prepared {
                variant: spec.variant.clone(),
                workdir: Some(found.workdir),
                image: Some(self.settings().image.clone()).filter(|i| !i.trim().is_empty()),
                rebuild_paths: found.rebuild_paths,
                harness_paths: found.harness_paths,
                failure: None,
            });
        }
        let setup = spec
            .setup
            .clone()
            .filter(|s| !s.trim().is_empty() && self.settings().setup_on == SlurmSetupOn::Node);
        let mut prepared = match &setup {
            Some(_) => {
                // The checkout and patch here; the setup step below, as a job on a node.
                let mut without_setup = spec.clone();
                without_setup.setup = None;
                local.prepare(&without_setup, events)?
            }
            None => local.prepare(spec, events)?,
        };
        if prepared.failure.is_none()
            && let (Some(setup), Some(workdir)) = (&setup, &prepared.workdir)
        {
            prepared.failure = self.setup_job(spec, setup, workdir, events)?;
        }
        if prepared.failure.is_none() {
            if let Some(workdir) = &prepared.workdir {
                let text = serde_json::to_string(&PreparedMarker {
                    workdir: workdir.clone(),
                    rebuild_paths: prepared.rebuild_paths.clone(),
                    harness_paths: prepared.harness_paths.clone(),
                })
                .map_err(|e| BackendError::Other(e.to_string()))?;
                fs::write(&marker, text).map_err(|e| {
                    BackendError::io(format!("cannot write {}", marker.display()), e)
                })?;
            }
            prepared.image = Some(self.settings().image.clone()).filter(|i| !i.trim().is_empty());
        }
        Ok(prepared)
    }

    fn run(
        &self,
        spec: &AttemptSpec,
        prepared: &Prepared,
        events: &dyn EventSink,
    ) -> Result<AttemptOutcome, BackendError> {
        crate::create_dir(&spec.attempt_dir)?;
        let job_root = self.job_root(spec);
        fs::create_dir_all(&job_root).map_err(|e| {
            BackendError::io(
                format!("cannot create {} (slurm.log_dir)", job_root.display()),
                e,
            )
        })?;
        let key = JobKey {
            run_id: spec.run_id.0.clone(),
            task: spec.task.clone(),
            variant: spec.variant.clone(),
            round_idx: spec.round_idx,
        };
        let started = Instant::now();
        let mut rerun = false;
        let mut attach = None;
        // A job recorded for this attempt (by an earlier process of this run) is re-attached to,
        // unless it was cancelled (Ctrl-C) or given up on.
        if let Some(entry) = self.ledger.lookup(&key)?
            && (entry.state == "submitted"
                || entry.state == "rerun"
                || entry.state.starts_with("ended:"))
        {
            rerun = entry.state == "rerun";
            events.emit(Event::Message {
                text: format!(
                    "  {} {} round {}: re-attached to slurm job {}",
                    spec.task.short(12),
                    spec.variant,
                    spec.round_idx,
                    entry.job_id
                ),
            });
            self.live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(entry.job_id.clone(), key.run_id.clone());
            // Record the new owner, so that a sweep by another process leaves the job alone.
            let _ = self.cli.set_comment(&entry.job_id, &self.comment(&key));
            attach = Some(entry.job_id);
        }
        loop {
            let job_id = match attach.take() {
                Some(job_id) => job_id,
                None => match self.submit(spec, prepared, &key, &job_root, rerun)? {
                    Ok(job_id) => job_id,
                    Err(message) => {
                        return Ok(AttemptOutcome {
                            status: AttemptStatus::InfraError,
                            exit_code: None,
                            message: format!("sbatch refused the job: {message}"),
                            server_log: None,
                            client_log: spec.attempt_dir.join("client.log"),
                            duration_s: started.elapsed().as_secs_f64(),
                            ready_after_s: None,
                            oom_killed: false,
                            builtin: Default::default(),
                        });
                    }
                },
            };
            match self.track(&job_id, &key, spec, &job_root, events)? {
                Tracked::Ended(final_state) => {
                    return self.finish(&job_id, final_state, &key, spec, &job_root, started);
                }
                Tracked::Vanished => {
                    // Slurm forgot the job; its status file may still hold its result.
                    let status = StatusFile::parse(
                        &fs::read_to_string(job_root.join(format!("job-{job_id}")).join("status"))
                            .unwrap_or_default(),
                    );
                    if let Some(result) = status.get("result") {
                        let state = if result == "ok" {
                            "COMPLETED"
                        } else {
                            "FAILED"
                        };
                        let final_state = FinalState {
                            state: state.into(),
                            source: "status file",
                            ..FinalState::default()
                        };
                        return self.finish(&job_id, final_state, &key, spec, &job_root, started);
                    }
                    self.live
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&job_id);
                    if rerun {
                        let _ = self.ledger.set_state(&key, "vanished");
                        return Ok(AttemptOutcome {
                            status: AttemptStatus::InfraError,
                            exit_code: None,
                            message: format!(
                                "slurm job {job_id} vanished without a result, and so did the job before it; check the controller (slurmctld log)"
                            ),
                            server_log: None,
                            client_log: spec.attempt_dir.join("client.log"),
                            duration_s: started.elapsed().as_secs_f64(),
                            ready_after_s: None,
                            oom_killed: false,
                            builtin: Default::default(),
                        });
                    }
                    events.emit(Event::Message {
                        text: format!(
                            "  {} {} round {}: slurm job {job_id} vanished without a result; submitting it once more",
                            spec.task.short(12),
                            spec.variant,
                            spec.round_idx
                        ),
                    });
                    rerun = true;
                }
            }
        }
    }

    fn runs_rounds(&self) -> bool {
        self.settings().job_unit == SlurmJobUnit::Round
    }

    fn run_rounds(
        &self,
        rounds: &[crate::RoundSpec<'_>],
        events: &dyn EventSink,
    ) -> Result<crate::RoundOutcomes, BackendError> {
        // Whatever `job_unit` says: a caller that hands over rounds gets round jobs.
        self.run_rounds_as_jobs(rounds, events)
    }

    fn cancel(&self, run_id: &RunId) -> Result<(), BackendError> {
        let ids: Vec<String> = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, run)| **run == run_id.0)
            .map(|(id, _)| id.clone())
            .collect();
        self.cancel_jobs(&ids);
        Ok(())
    }

    fn sweep_orphans(&self, live_runs: &[RunId]) -> Result<usize, BackendError> {
        let host = hostname();
        let mut orphans = Vec::new();
        for job in self.cli.my_jobs()? {
            let labels = parse_comment(&job.comment);
            let Some(run) = labels.get("perfarena.run") else {
                continue;
            };
            if labels.get("perfarena.project") != Some(&self.project)
                || live_runs.iter().any(|r| &r.0 == run)
            {
                continue;
            }
            let Some((owner_host, owner_pid)) = labels
                .get("perfarena.owner")
                .and_then(|o| o.rsplit_once(':'))
            else {
                continue;
            };
            let Ok(pid) = owner_pid.parse::<i32>() else {
                continue;
            };
            // Jobs submitted from another host are that host's business; jobs of live
            // processes are theirs; jobs a `--resume` can re-attach to are kept for it.
            if owner_host != host
                || pid == std::process::id() as i32
                || pid_alive(pid)
                || self.ledger.is_reattachable(&job.job_id)?
            {
                continue;
            }
            orphans.push(job.job_id);
        }
        let count = orphans.len();
        self.cancel_jobs(&orphans);
        Ok(count)
    }

    fn release(&self, prepared: &Prepared) -> Result<(), BackendError> {
        match (&self.local, &prepared.workdir) {
            (Some(local), Some(_)) => local.release(prepared),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_round_trip() {
        let labels = parse_comment(
            "perfarena.run=r1;perfarena.task=abc;perfarena.variant=candidate:x;perfarena.owner=h:12;other=1",
        );
        assert_eq!(labels["perfarena.run"], "r1");
        assert_eq!(labels["perfarena.variant"], "candidate:x");
        assert_eq!(labels["perfarena.owner"], "h:12");
        assert!(!labels.contains_key("other"));
    }

    #[test]
    fn settings_are_checked() {
        let mut settings = perfarena_core::Suite::defaults().slurm;
        assert!(validate_settings(&settings).is_ok());
        settings.time_limit = "1h".into();
        assert!(
            validate_settings(&settings)
                .unwrap_err()
                .contains("slurm.time_limit")
        );
        settings.time_limit = "10".into();
        settings.mounts = vec!["/models".into()];
        assert!(
            validate_settings(&settings)
                .unwrap_err()
                .contains("slurm.mounts")
        );
    }

    #[test]
    fn the_memory_ledger_remembers() {
        let ledger = MemoryLedger::default();
        let key = JobKey {
            run_id: "r".into(),
            task: CommitId::parse("abcdef1").unwrap(),
            variant: VariantKind::Baseline,
            round_idx: 0,
        };
        assert!(ledger.lookup(&key).unwrap().is_none());
        ledger.record(&key, "5", "submitted").unwrap();
        ledger.set_state(&key, "ended:COMPLETED").unwrap();
        assert_eq!(
            ledger.lookup(&key).unwrap().unwrap(),
            LedgerEntry {
                job_id: "5".into(),
                state: "ended:COMPLETED".into()
            }
        );
    }
}
