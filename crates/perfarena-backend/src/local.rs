//! The `local` backend: a git worktree per variant and processes on this host.
//!
//! Baseline runs at the parent, human at the commit, each candidate at the parent with its
//! patch applied (`git apply --check` first; never forced). The suite's setup step runs once per
//! variant; each attempt starts the server in its own process group, probes readiness, runs the
//! client and tears the group down, on success, failure, timeout and Ctrl-C alike. The client's
//! and the server's wall-clock time, CPU time and peak memory come from `wait4` (see
//! `process`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use perfarena_core::builtin::BuiltinMetrics;
use perfarena_core::events::{Event, EventSink};
use perfarena_core::patch;
use perfarena_core::suite::ReadinessKind;
use perfarena_core::{AttemptStatus, RunId, VariantKind};

use crate::git::{GitRepo, apply_patch};
use crate::probe;
use crate::process::{GroupChild, WaitResult, sweep_registry, tail_lines};
use crate::{
    AttemptOutcome, AttemptSpec, Backend, BackendError, BackendKind, PrepareFailure, Prepared,
    VariantSpec,
};

pub struct LocalBackend {
    repo: GitRepo,
    /// Where worktrees go (`.perfarena/work`).
    work_root: PathBuf,
    /// Where live process groups are recorded (`.perfarena/pids`).
    registry: PathBuf,
}

impl LocalBackend {
    pub fn new(repo: GitRepo, state_dir: &Path) -> LocalBackend {
        LocalBackend {
            repo,
            work_root: state_dir.join("work"),
            registry: state_dir.join("pids"),
        }
    }

    fn worktree_path(&self, spec: &VariantSpec) -> PathBuf {
        self.work_root
            .join(spec.run_id.0.as_str())
            .join(spec.task.short_id())
            .join(spec.variant.dir_name())
    }

    fn failure(
        variant: &VariantKind,
        workdir: Option<PathBuf>,
        status: AttemptStatus,
        message: String,
        log: Option<PathBuf>,
    ) -> Prepared {
        Prepared {
            variant: variant.clone(),
            workdir,
            image: None,
            rebuild_paths: Vec::new(),
            harness_paths: Vec::new(),
            failure: Some(PrepareFailure {
                status,
                message,
                log,
            }),
        }
    }
}

impl Backend for LocalBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Local
    }

    fn prepare(
        &self,
        spec: &VariantSpec,
        events: &dyn EventSink,
    ) -> Result<Prepared, BackendError> {
        crate::create_dir(&spec.log_dir)?;
        let rev = match &spec.variant {
            VariantKind::Human => spec.task.commit.clone(),
            VariantKind::Baseline | VariantKind::Candidate(_) => match &spec.task.parent {
                Some(parent) => parent.clone(),
                None => {
                    return Ok(Self::failure(
                        &spec.variant,
                        None,
                        AttemptStatus::InfraError,
                        format!("task {} has no parent commit", spec.task.commit),
                        None,
                    ));
                }
            },
        };
        let workdir = self.worktree_path(spec);
        if let Some(parent) = workdir.parent() {
            crate::create_dir(parent)?;
        }
        if let Err(e) = self.repo.worktree_add(&workdir, rev.as_str()) {
            return Ok(Self::failure(
                &spec.variant,
                None,
                AttemptStatus::InfraError,
                format!("checkout of {rev} failed: {e}"),
                None,
            ));
        }
        let mut rebuild_paths = Vec::new();
        let mut harness_paths = Vec::new();
        if let Some(patch_spec) = &spec.patch {
            let patch_file = spec.log_dir.join("candidate.patch");
            fs::write(&patch_file, &patch_spec.text).map_err(|e| {
                BackendError::io(format!("cannot write {}", patch_file.display()), e)
            })?;
            if let Err(message) = apply_patch(&workdir, &patch_file)? {
                return Ok(Self::failure(
                    &spec.variant,
                    Some(workdir),
                    AttemptStatus::PatchFailed,
                    format!(
                        "patch {} does not apply to {}: {message}",
                        patch_spec.name,
                        rev.short(12)
                    ),
                    Some(patch_file),
                ));
            }
            let touched = patch::patch_paths(&patch_spec.text);
            rebuild_paths = patch::matching(&touched, &spec.rebuild_globs)
                .map_err(|e| BackendError::Other(e.to_string()))?;
            harness_paths = patch::matching(&touched, &spec.harness_globs)
                .map_err(|e| BackendError::Other(e.to_string()))?;
        }
        if let Some(setup) = spec.setup.as_deref().filter(|s| !s.trim().is_empty()) {
            let log = spec.log_dir.join("setup.log");
            let mut child = GroupChild::spawn(
                setup,
                &workdir,
                &spec.env,
                &log,
                Some((&self.registry, spec.run_id.0.as_str())),
            )?;
            let waited = child.wait_until(Instant::now() + spec.setup_timeout, &spec.cancel);
            child.kill_group(Duration::from_secs(2));
            let failed = |message: String| {
                Self::failure(
                    &spec.variant,
                    Some(workdir.clone()),
                    AttemptStatus::BuildFailed,
                    message,
                    Some(log.clone()),
                )
            };
            match waited {
                WaitResult::Cancelled => return Err(BackendError::Cancelled),
                WaitResult::TimedOut => {
                    return Ok(failed(format!(
                        "setup timed out after {}s",
                        spec.setup_timeout.as_secs()
                    )));
                }
                WaitResult::Exited(status) if !status.success() => {
                    let tail = tail_lines(&log, 3);
                    return Ok(failed(format!(
                        "setup exited with {}: {tail}",
                        describe_exit(status)
                    )));
                }
                WaitResult::Exited(_) => {}
            }
        }
        events.emit(Event::PrepareFinished {
            task: spec.task.commit.clone(),
            variant: spec.variant.clone(),
            ok: true,
            message: String::new(),
        });
        Ok(Prepared {
            variant: spec.variant.clone(),
            workdir: Some(workdir),
            image: None,
            rebuild_paths,
            harness_paths,
            failure: None,
        })
    }

    fn run(
        &self,
        spec: &AttemptSpec,
        prepared: &Prepared,
        events: &dyn EventSink,
    ) -> Result<AttemptOutcome, BackendError> {
        let workdir = prepared
            .workdir
            .as_deref()
            .ok_or_else(|| BackendError::Other("variant has no checkout".into()))?;
        crate::create_dir(&spec.attempt_dir)?;
        let started = Instant::now();
        let deadline = started + spec.timeout;
        let client_log = spec.attempt_dir.join("client.log");
        let registry = Some((self.registry.as_path(), spec.run_id.0.as_str()));
        let outcome =
            |status, exit_code, message: String, server_log: Option<PathBuf>, ready_after_s| {
                AttemptOutcome {
                    status,
                    exit_code,
                    message,
                    server_log,
                    client_log: client_log.clone(),
                    duration_s: started.elapsed().as_secs_f64(),
                    ready_after_s,
                    oom_killed: false,
                    builtin: BuiltinMetrics::default(),
                }
            };

        let mut server = None;
        let mut ready_after_s = None;
        let server_log = spec
            .server
            .as_ref()
            .map(|_| spec.attempt_dir.join("server.log"));
        if let (Some(command), Some(log)) = (spec.server.as_deref(), server_log.as_deref()) {
            let mut child = GroupChild::spawn(command, workdir, &spec.env, log, registry)?;
            let ready_deadline = deadline.min(started + spec.readiness.timeout);
            loop {
                if spec.cancel.is_cancelled() {
                    child.kill_group(spec.kill_grace);
                    return Err(BackendError::Cancelled);
                }
                if let Some(status) = child.try_wait() {
                    child.kill_group(spec.kill_grace);
                    let tail = tail_lines(log, 1);
                    return Ok(outcome(
                        AttemptStatus::Crashed,
                        status.code(),
                        format!(
                            "server exited with {} before it was ready: {tail}",
                            describe_exit(status)
                        ),
                        server_log.clone(),
                        None,
                    ));
                }
                let probe_timeout = spec.readiness.interval.max(Duration::from_millis(500));
                let ready = match spec.readiness.kind {
                    ReadinessKind::Http => probe::http_ready(&spec.readiness.url, probe_timeout),
                    ReadinessKind::Tcp => probe::tcp_ready(spec.port, probe_timeout),
                    ReadinessKind::None => true,
                };
                if ready {
                    let after = started.elapsed().as_secs_f64();
                    ready_after_s = Some(after);
                    events.emit(Event::ServerReady {
                        task: spec.task.clone(),
                        variant: spec.variant.clone(),
                        round_idx: spec.round_idx,
                        after_s: after,
                    });
                    break;
                }
                if Instant::now() >= ready_deadline {
                    child.kill_group(spec.kill_grace);
                    return Ok(outcome(
                        AttemptStatus::Timeout,
                        None,
                        format!(
                            "server not ready after {:.0}s (readiness timeout)",
                            started.elapsed().as_secs_f64()
                        ),
                        server_log.clone(),
                        None,
                    ));
                }
                std::thread::sleep(spec.readiness.interval);
            }
            server = Some(child);
        }

        let mut client =
            GroupChild::spawn(&spec.client, workdir, &spec.env, &client_log, registry)?;
        let waited = client.wait_until(deadline, &spec.cancel);
        client.kill_group(spec.kill_grace);
        let server_alive = server.as_mut().map(|s| s.try_wait().is_none());
        let mut builtin = BuiltinMetrics {
            // Only a client that ended by itself is measured (not one cut off by a deadline).
            client: client
                .usage()
                .filter(|_| matches!(waited, WaitResult::Exited(_))),
            server: None,
        };
        if let Some(mut server) = server {
            server.kill_group(spec.kill_grace);
            builtin.server = server.usage();
        }
        let outcome = |status, exit_code, message, server_log, ready_after_s| AttemptOutcome {
            builtin,
            ..outcome(status, exit_code, message, server_log, ready_after_s)
        };
        Ok(match waited {
            WaitResult::Cancelled => return Err(BackendError::Cancelled),
            WaitResult::TimedOut => outcome(
                AttemptStatus::Timeout,
                None,
                format!(
                    "attempt timed out after {}s while the client was running",
                    spec.timeout.as_secs()
                ),
                server_log,
                ready_after_s,
            ),
            WaitResult::Exited(status) if status.success() => outcome(
                AttemptStatus::Ok,
                Some(0),
                String::new(),
                server_log,
                ready_after_s,
            ),
            WaitResult::Exited(status) => {
                let mut message = format!("client exited with {}", describe_exit(status));
                if server_alive == Some(false) {
                    message.push_str("; the server had exited");
                }
                let tail = tail_lines(&client_log, 1);
                if !tail.is_empty() {
                    message.push_str(": ");
                    message.push_str(&tail);
                }
                outcome(
                    AttemptStatus::Crashed,
                    status.code(),
                    message,
                    server_log,
                    ready_after_s,
                )
            }
        })
    }

    fn cancel(&self, _run_id: &RunId) -> Result<(), BackendError> {
        // Attempts in flight see the cancel token and kill their groups; anything left is swept.
        sweep_registry(&self.registry, &[]);
        Ok(())
    }

    fn sweep_orphans(&self, live_runs: &[RunId]) -> Result<usize, BackendError> {
        let live: Vec<String> = live_runs.iter().map(|r| r.0.clone()).collect();
        Ok(sweep_registry(&self.registry, &live))
    }

    fn release(&self, prepared: &Prepared) -> Result<(), BackendError> {
        if let Some(workdir) = &prepared.workdir {
            self.repo.worktree_remove(workdir)?;
        }
        Ok(())
    }
}

/// "code 3" or "signal 9".
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => "an unknown status".into(),
    }
}
