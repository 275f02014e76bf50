//! The `docker` backend: one attempt is one container from the variant's image, driven through
//! the Docker Engine API (bollard).
//!
//! The server is the container's main process (under an init, so SIGTERM reaches it); the
//! readiness probe and the client are `exec`s inside the same container, so a container with
//! `--network none` (the default for candidates) still talks to its server over loopback.
//! Without a server, the main process only holds the container open ([`HOLDER`]) and the client
//! is an `exec` too, so that the container's cgroup statistics can be read once the client has
//! ended (they vanish with the container): `user_s`, `sys_s` and `max_rss_mb` are those of the
//! whole container (server, client and probes), `wall_s` the client's exec from start to the
//! end of its output, `server_wall_s` the container's lifetime. Output
//! is streamed to `server.log` / `client.log` as it comes, with secrets redacted before it
//! touches the disk. Teardown is `docker stop` (SIGTERM, SIGKILL after the grace period), an
//! inspect for the exit code and `OOMKilled`, and removal — on success, failure, timeout and
//! Ctrl-C alike. Images are never pulled: a missing image is `missing_image`.
//!
//! Every container carries `perfarena.run/.task/.variant/.attempt` plus the owner's pid, its
//! start time and the host, so that a later start can remove what a killed perfarena left
//! (`sweep_orphans`) without touching anything else.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, DeviceRequest, ExecConfig, HostConfig, Mount, MountType, ResourcesUlimits,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};

use perfarena_core::builtin::{Usage, bytes_to_mib};
use perfarena_core::events::{Event, EventSink, Stream as LogStream};
use perfarena_core::suite::ReadinessKind;
use perfarena_core::suite_docker::{DockerSection, GpuRequest, SecretsSection, parse_byte_size};
use perfarena_core::{AttemptStatus, CommitId, RunId, VariantKind, patch};

use crate::git::GitRepo;
use crate::process::pid_alive;
use crate::{
    AttemptOutcome, AttemptSpec, Backend, BackendError, BackendKind, BuiltinMetrics,
    PrepareFailure, Prepared, VariantSpec,
};

/// Label keys on every container perfarena starts.
pub const LABEL_RUN: &str = "perfarena.run";
pub const LABEL_TASK: &str = "perfarena.task";
pub const LABEL_VARIANT: &str = "perfarena.variant";
pub const LABEL_ATTEMPT: &str = "perfarena.attempt";
pub const LABEL_PID: &str = "perfarena.pid";
pub const LABEL_PID_START: &str = "perfarena.pid_start";
pub const LABEL_HOST: &str = "perfarena.host";

/// Probes readiness from inside the container with whatever the image has.
const HTTP_PROBE: &str = r#"u="$1"
if command -v curl >/dev/null 2>&1; then exec curl -fsS -o /dev/null -m 2 "$u"; fi
if command -v wget >/dev/null 2>&1; then
  # (busybox 1.35's static wget crashes with -T: bound it with timeout(1) instead)
  if command -v timeout >/dev/null 2>&1; then exec timeout 3 wget -q -O /dev/null "$u"; fi
  exec wget -q -O /dev/null "$u"
fi
for p in python3 python; do
  if command -v $p >/dev/null 2>&1; then exec $p -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$u"; fi
done
exit 127"#;
const TCP_PROBE: &str = r#"p="$1"
for py in python3 python; do
  if command -v $py >/dev/null 2>&1; then exec $py -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2).close()' "$p"; fi
done
if command -v bash >/dev/null 2>&1; then exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1' _ "$p"; fi
if command -v nc >/dev/null 2>&1; then exec nc -z -w 2 127.0.0.1 "$p"; fi
exit 127"#;
/// Exit status of a probe script that found no tool to probe with.
const PROBE_NO_TOOL: i64 = 127;

/// A secret: the environment variable it is given as, and its value.
#[derive(Clone)]
pub struct Secret {
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({})", self.name)
    }
}

/// Reads the suite's secrets from the environment or files (`base` is the suite file's
/// directory). An unset variable or unreadable file is an error naming the key.
pub fn resolve_secrets(section: &SecretsSection, base: &Path) -> Result<Vec<Secret>, BackendError> {
    let mut out = Vec::new();
    for (name, source) in &section.vars {
        let value = if !source.env.is_empty() {
            std::env::var(&source.env).map_err(|_| {
                BackendError::Other(format!("secrets.vars.{name}: environment variable {} is not set: export it or remove the secret", source.env))
            })?
        } else {
            let path = base.join(&source.file);
            fs::read_to_string(&path)
                .map_err(|e| {
                    BackendError::io(
                        format!("secrets.vars.{name}: cannot read {}", path.display()),
                        e,
                    )
                })?
                .trim()
                .to_string()
        };
        if value.is_empty() {
            return Err(BackendError::Other(format!(
                "secrets.vars.{name}: the secret is empty"
            )));
        }
        out.push(Secret {
            name: name.clone(),
            value,
        });
    }
    Ok(out)
}

/// Where the harness files come from, resolved.
#[derive(Debug, Clone)]
pub enum HarnessSource {
    /// Each image's own files.
    Image,
    /// The task's parent revision in this repository.
    Baseline(GitRepo),
    /// A pinned directory.
    Dir(PathBuf),
}

/// What the backend needs from the suite, resolved.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    pub section: DockerSection,
    /// Where the source lives in the images (`repo.source_dir`): commands run there.
    pub source_dir: String,
    pub secrets: Vec<Secret>,
    pub secrets_section: SecretsSection,
    pub harness: HarnessSource,
    pub harness_globs: Vec<String>,
    /// `.perfarena`: harness copies go under `harness/`.
    pub state_dir: PathBuf,
}

/// The docker backend. Holds one tokio runtime; every call blocks on it.
pub struct DockerBackend {
    docker: Docker,
    runtime: tokio::runtime::Runtime,
    settings: DockerSettings,
    host: String,
    /// Read-only mounts of the harness per (run, task).
    harness_mounts: Mutex<HashMap<(String, CommitId), Vec<Mount>>>,
}

/// Where the daemon is, for messages.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

fn new_runtime() -> Result<tokio::runtime::Runtime, BackendError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("perfarena-docker")
        .build()
        .map_err(|e| BackendError::io("cannot start the docker backend's runtime", e))
}

/// Connects to the daemon named by `DOCKER_HOST` (default: the local socket), agrees on an API
/// version and pings it. The error says where it looked and what to do.
pub fn connect(runtime: &tokio::runtime::Runtime) -> Result<Docker, BackendError> {
    let host = docker_host();
    let unreachable = |e: String| {
        BackendError::Unavailable(format!(
            "cannot reach the docker daemon at {host}: {e}: start it (e.g. `bash scripts/docker-env.sh up`) or point DOCKER_HOST at it"
        ))
    };
    let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
    runtime.block_on(async {
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer within 10s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::time::timeout(Duration::from_secs(10), docker.ping())
            .await
            .map_err(|_| unreachable("no answer within 10s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(docker)
    })
}

impl DockerBackend {
    /// Connects to the daemon (a clear error before anything starts when it is unreachable).
    pub fn connect(settings: DockerSettings) -> Result<DockerBackend, BackendError> {
        let runtime = new_runtime()?;
        let docker = connect(&runtime)?;
        Ok(DockerBackend {
            docker,
            runtime,
            settings,
            host: hostname(),
            harness_mounts: Mutex::new(HashMap::new()),
        })
    }

    /// Turns an API error into a backend error: `Unavailable` when the daemon no longer
    /// answers a ping (the run stops), an infra error otherwise.
    async fn api_error(&self, context: &str, error: bollard::errors::Error) -> BackendError {
        let alive = matches!(
            tokio::time::timeout(Duration::from_secs(3), self.docker.ping()).await,
            Ok(Ok(_))
        );
        if alive {
            BackendError::Other(format!("docker: {context}: {error}"))
        } else {
            BackendError::Unavailable(format!(
                "docker daemon unreachable ({}) while trying to {context}: {error}: start it, then `perfarena run --resume`",
                docker_host()
            ))
        }
    }

    fn labels(&self, spec: &AttemptSpec) -> HashMap<String, String> {
        let pid = std::process::id();
        let mut labels = HashMap::new();
        labels.insert(LABEL_RUN.to_string(), spec.run_id.0.clone());
        labels.insert(LABEL_TASK.to_string(), spec.task.to_string());
        labels.insert(LABEL_VARIANT.to_string(), spec.variant.to_string());
        labels.insert(LABEL_ATTEMPT.to_string(), spec.round_idx.to_string());
        labels.insert(LABEL_PID.to_string(), pid.to_string());
        labels.insert(
            LABEL_PID_START.to_string(),
            process_start(pid as i32)
                .map(|s| s.to_string())
                .unwrap_or_default(),
        );
        labels.insert(LABEL_HOST.to_string(), self.host.clone());
        labels
    }

    fn kill_grace(&self, spec: &AttemptSpec) -> Duration {
        match self.settings.section.kill_grace_s {
            0 => spec.kill_grace,
            secs => Duration::from_secs(secs),
        }
    }

    /// The read-only mounts that put the task's fixed harness over every variant's copy.
    fn harness_mounts_for(
        &self,
        spec: &VariantSpec,
    ) -> Result<Result<Vec<Mount>, String>, BackendError> {
        let key = (spec.run_id.0.clone(), spec.task.commit.clone());
        if let Some(mounts) = self
            .harness_mounts
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(Ok(mounts));
        }
        let globs = &self.settings.harness_globs;
        let (root, files) = match &self.settings.harness {
            HarnessSource::Image => return Ok(Ok(Vec::new())),
            HarnessSource::Dir(dir) => {
                if !dir.is_dir() {
                    return Ok(Err(format!(
                        "docker.harness_dir {} is not a directory",
                        dir.display()
                    )));
                }
                let mut files = Vec::new();
                list_files(dir, dir, &mut files)
                    .map_err(|e| BackendError::io(format!("cannot list {}", dir.display()), e))?;
                (dir.clone(), files)
            }
            HarnessSource::Baseline(repo) => {
                let Some(parent) = &spec.task.parent else {
                    return Ok(Err(format!(
                        "task {} has no parent commit to take the harness from (docker.harness_from = \"baseline\")",
                        spec.task.short_id()
                    )));
                };
                let target = self
                    .settings
                    .state_dir
                    .join("harness")
                    .join(&spec.run_id.0)
                    .join(spec.task.short_id());
                match extract_harness(repo, parent.as_str(), globs, &target)? {
                    Ok(files) => (target, files),
                    Err(message) => return Ok(Err(message)),
                }
            }
        };
        let mounts = harness_mount_plan(&files, globs)
            .map_err(BackendError::Other)?
            .into_iter()
            .map(|rel| Mount {
                target: Some(format!(
                    "{}/{}",
                    self.settings.source_dir.trim_end_matches('/'),
                    rel
                )),
                source: Some(root.join(&rel).display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        if let Ok(mut map) = self.harness_mounts.lock() {
            map.insert(key, mounts.clone());
        }
        Ok(Ok(mounts))
    }

    /// The container to create for one attempt (pure: snapshot-tested).
    pub fn container_config(
        &self,
        spec: &AttemptSpec,
        image: &str,
        command: &str,
        mounts: Vec<Mount>,
    ) -> ContainerCreateBody {
        container_config(
            &self.settings,
            spec,
            image,
            command,
            mounts,
            self.labels(spec),
            self.kill_grace(spec),
        )
    }

    async fn run_async(
        &self,
        spec: &AttemptSpec,
        prepared: &Prepared,
        events: &dyn EventSink,
    ) -> Result<AttemptOutcome, BackendError> {
        let image = prepared
            .image
            .clone()
            .ok_or_else(|| BackendError::Other("variant has no image".into()))?;
        crate::create_dir(&spec.attempt_dir)?;
        let started = Instant::now();
        let mounts = self
            .harness_mounts
            .lock()
            .ok()
            .and_then(|m| m.get(&(spec.run_id.0.clone(), spec.task.clone())).cloned())
            .unwrap_or_default();
        let client_log = spec.attempt_dir.join("client.log");
        let server_log = spec
            .server
            .as_ref()
            .map(|_| spec.attempt_dir.join("server.log"));
        let main_command = spec.server.clone().unwrap_or_else(|| HOLDER.to_string());
        let mut config = self.container_config(spec, &image, &main_command, mounts);
        // The holder waits on a stdin that stays open and never sends anything.
        config.open_stdin = Some(spec.server.is_none());
        let name = container_name(spec);
        let created = match self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                config,
            )
            .await
        {
            Ok(created) => created,
            Err(e) => return Err(self.api_error("create the container", e).await),
        };
        let container = created.id;
        let secrets = &self.settings.secrets;
        let main_file = server_log.clone().unwrap_or_else(|| client_log.clone());
        let main_stream = if spec.server.is_some() {
            LogStream::Server
        } else {
            LogStream::Client
        };
        let mut streams = Streams::default();
        let driven = async {
            streams.main = Some(OutputPipe::open(&main_file, secrets, main_stream)?);
            let attach = AttachContainerOptionsBuilder::default()
                .stream(true)
                .stdout(true)
                .stderr(true)
                .logs(true)
                .build();
            let attached = match self.docker.attach_container(&container, Some(attach)).await {
                Ok(attached) => attached,
                Err(e) => return Err(self.api_error("attach to the container", e).await),
            };
            if let Some(pipe) = streams.main.as_mut() {
                pipe.stream = Some(attached.output);
            }
            if let Err(e) = self.docker.start_container(&container, None).await {
                return Err(self.api_error("start the container", e).await);
            }
            self.drive(spec, &container, started, &mut streams, events)
                .await
        }
        .await;
        // The client's measurements, read while the container still runs.
        let client_usage = match &driven {
            Ok(driven) => match driven.client_wall_s {
                Some(wall_s) => Some(self.container_usage(&container, wall_s).await),
                None => None,
            },
            Err(_) => None,
        };
        let teardown = self
            .teardown(
                &container,
                self.kill_grace(spec),
                &mut streams,
                events,
                spec,
            )
            .await;
        let lifetime_s = started.elapsed().as_secs_f64();
        let flushed = streams.finish();
        let driven = driven?;
        flushed?;
        let torn = teardown?;
        let builtin = BuiltinMetrics {
            client: client_usage,
            server: spec.server.as_ref().map(|_| Usage {
                wall_s: lifetime_s,
                ..Usage::default()
            }),
        };
        let mut outcome = AttemptOutcome {
            status: driven.status,
            exit_code: driven.exit_code,
            message: driven.message,
            server_log,
            client_log,
            duration_s: started.elapsed().as_secs_f64(),
            ready_after_s: driven.ready_after_s,
            oom_killed: torn.oom_killed,
            builtin,
        };
        if torn.oom_killed {
            if outcome.status == AttemptStatus::Ok {
                outcome.status = AttemptStatus::Crashed;
            }
            outcome
                .message
                .push_str(if outcome.message.is_empty() { "" } else { "; " });
            outcome
                .message
                .push_str("OOMKilled: the container hit its memory limit (docker.memory)");
        }
        if let Some(note) = torn.note {
            outcome
                .message
                .push_str(if outcome.message.is_empty() { "" } else { "; " });
            outcome.message.push_str(&note);
        }
        Ok(outcome)
    }

    /// Readiness, then the client, until done, the deadline or Ctrl-C.
    async fn drive(
        &self,
        spec: &AttemptSpec,
        container: &str,
        started: Instant,
        streams: &mut Streams,
        events: &dyn EventSink,
    ) -> Result<Driven, BackendError> {
        let deadline = started + spec.timeout;
        let ready_after_s = if spec.server.is_some() {
            match self
                .await_ready(spec, container, started, streams, events)
                .await?
            {
                Ok(after) => Some(after),
                Err(driven) => return Ok(driven),
            }
        } else {
            None
        };
        self.drive_client(spec, container, deadline, ready_after_s, streams, events)
            .await
    }

    /// Probes the server until it is ready (`Ok(seconds after start)`), or says how the attempt
    /// ended instead (`Err`).
    async fn await_ready(
        &self,
        spec: &AttemptSpec,
        container: &str,
        started: Instant,
        streams: &mut Streams,
        events: &dyn EventSink,
    ) -> Result<Result<f64, Driven>, BackendError> {
        let deadline = started + spec.timeout;
        let tick = Duration::from_millis(100);
        let ready_deadline = deadline.min(started + spec.readiness.timeout);
        let mut next_probe = Instant::now();
        loop {
            if spec.cancel.is_cancelled() {
                return Err(BackendError::Cancelled);
            }
            let state = self.container_state(container).await?;
            if !state.running {
                streams
                    .pump_for(Duration::from_millis(200), events, spec)
                    .await?;
                let log = spec.attempt_dir.join("server.log");
                let tail = crate::process::tail_lines(&log, 1);
                let code = state
                    .exit_code
                    .map(|c| format!("code {c}"))
                    .unwrap_or_else(|| "an unknown status".into());
                return Ok(Err(Driven {
                    status: AttemptStatus::Crashed,
                    exit_code: state.exit_code.map(|c| c as i32),
                    message: format!("server exited with {code} before it was ready: {tail}"),
                    ready_after_s: None,
                    client_wall_s: None,
                }));
            }
            if Instant::now() >= next_probe {
                match self.probe(container, spec).await? {
                    ProbeResult::Ready => {
                        let after = started.elapsed().as_secs_f64();
                        events.emit(Event::ServerReady {
                            task: spec.task.clone(),
                            variant: spec.variant.clone(),
                            round_idx: spec.round_idx,
                            after_s: after,
                        });
                        return Ok(Ok(after));
                    }
                    ProbeResult::NoTool => {
                        return Ok(Err(Driven {
                            status: AttemptStatus::InfraError,
                            exit_code: None,
                            message: "the image has no curl, wget or python3 to probe readiness with (bench.readiness): add one to the image or set bench.readiness.kind = \"none\"".into(),
                            ready_after_s: None,
                            client_wall_s: None,
                        }));
                    }
                    ProbeResult::NotReady => {}
                }
                next_probe = Instant::now() + spec.readiness.interval;
            }
            if Instant::now() >= ready_deadline {
                return Ok(Err(Driven::timeout(
                    format!(
                        "server not ready after {:.0}s (readiness timeout)",
                        started.elapsed().as_secs_f64()
                    ),
                    None,
                )));
            }
            streams
                .pump_for(tick.min(spec.readiness.interval), events, spec)
                .await?;
        }
    }

    /// The client, exec'd into the running container, until it ends, the deadline or Ctrl-C.
    async fn drive_client(
        &self,
        spec: &AttemptSpec,
        container: &str,
        deadline: Instant,
        ready_after_s: Option<f64>,
        streams: &mut Streams,
        events: &dyn EventSink,
    ) -> Result<Driven, BackendError> {
        let tick = Duration::from_millis(100);
        let client_log = spec.attempt_dir.join("client.log");
        streams.client = Some(OutputPipe::open(
            &client_log,
            &self.settings.secrets,
            LogStream::Client,
        )?);
        let exec = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(vec!["sh".into(), "-c".into(), spec.client.clone()]),
            ..Default::default()
        };
        let exec_id = match self.docker.create_exec(container, exec).await {
            Ok(created) => created.id,
            Err(e) => return Err(self.api_error("start the client", e).await),
        };
        let client_started = Instant::now();
        match self
            .docker
            .start_exec(
                &exec_id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: Some(64 * 1024),
                }),
            )
            .await
        {
            Ok(StartExecResults::Attached { output, .. }) => {
                if let Some(pipe) = streams.client.as_mut() {
                    pipe.stream = Some(output);
                }
            }
            Ok(StartExecResults::Detached) => {}
            Err(e) => return Err(self.api_error("start the client", e).await),
        }
        loop {
            streams.pump_for(tick, events, spec).await?;
            if spec.cancel.is_cancelled() {
                return Err(BackendError::Cancelled);
            }
            if streams.client.as_ref().is_none_or(|p| p.stream.is_none()) {
                break;
            }
            if Instant::now() >= deadline {
                return Ok(Driven::timeout(
                    format!(
                        "attempt timed out after {}s while the client was running",
                        spec.timeout.as_secs()
                    ),
                    ready_after_s,
                ));
            }
        }
        // The output ended: the exit code follows shortly.
        let mut exit_code = None;
        for _ in 0..50 {
            match self.docker.inspect_exec(&exec_id).await {
                Ok(inspect) if inspect.running == Some(false) => {
                    exit_code = inspect.exit_code;
                    break;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                // The container died under the client (e.g. OOM-killed): no exit code to read.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => break,
                Err(e) => return Err(self.api_error("read the client's exit code", e).await),
            }
        }
        // The output's end is the client's: the exit code is read after it, by polling.
        let client_ended = streams
            .client
            .as_ref()
            .and_then(|p| p.ended_at)
            .unwrap_or_else(Instant::now);
        let server_gone = spec.server.is_some() && !self.container_state(container).await?.running;
        let mut driven = client_result(exit_code, ready_after_s, &client_log, server_gone);
        driven.client_wall_s = Some(
            client_ended
                .saturating_duration_since(client_started)
                .as_secs_f64(),
        );
        Ok(driven)
    }

    /// The container's CPU time and peak memory so far (the cgroup's statistics, one shot),
    /// with the client's wall-clock time. What the daemon does not say is left out: cgroup v2
    /// reports no peak through the API, so it is read from `memory.peak` when the cgroup is
    /// visible on this host.
    async fn container_usage(&self, container: &str, wall_s: f64) -> Usage {
        let mut usage = Usage {
            wall_s,
            ..Usage::default()
        };
        let options = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stats = self.docker.stats(container, Some(options));
        let Some(Ok(stats)) = stats.next().await else {
            return usage;
        };
        let cpu = stats.cpu_stats.and_then(|c| c.cpu_usage);
        let nanos = |n: Option<u64>| n.map(|n| n as f64 / 1e9);
        usage.user_s = nanos(cpu.as_ref().and_then(|c| c.usage_in_usermode));
        usage.sys_s = nanos(cpu.as_ref().and_then(|c| c.usage_in_kernelmode));
        usage.max_rss_mb = stats
            .memory_stats
            .and_then(|m| m.max_usage)
            .or_else(|| cgroup_v2_peak(stats.id.as_deref().unwrap_or(container)))
            .map(bytes_to_mib);
        usage
    }

    async fn container_state(&self, container: &str) -> Result<ContainerRunState, BackendError> {
        match self.docker.inspect_container(container, None).await {
            Ok(inspect) => {
                let state = inspect.state.unwrap_or_default();
                Ok(ContainerRunState {
                    running: state.running.unwrap_or(false),
                    exit_code: state.exit_code,
                    oom_killed: state.oom_killed.unwrap_or(false),
                })
            }
            Err(e) => Err(self.api_error("inspect the container", e).await),
        }
    }

    async fn probe(
        &self,
        container: &str,
        spec: &AttemptSpec,
    ) -> Result<ProbeResult, BackendError> {
        let (script, arg) = match spec.readiness.kind {
            ReadinessKind::None => return Ok(ProbeResult::Ready),
            ReadinessKind::Http => (HTTP_PROBE, spec.readiness.url.clone()),
            ReadinessKind::Tcp => (TCP_PROBE, spec.port.to_string()),
        };
        let exec = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(vec![
                "sh".into(),
                "-c".into(),
                script.into(),
                "perfarena-probe".into(),
                arg,
            ]),
            ..Default::default()
        };
        let exec_id = match self.docker.create_exec(container, exec).await {
            Ok(created) => created.id,
            // The container stopped between the inspect and the probe: the caller sees it next.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => return Ok(ProbeResult::NotReady),
            Err(e) => return Err(self.api_error("probe readiness", e).await),
        };
        let run = async {
            if let Ok(StartExecResults::Attached { mut output, .. }) =
                self.docker.start_exec(&exec_id, None).await
            {
                while output.next().await.is_some() {}
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), run).await;
        match self.docker.inspect_exec(&exec_id).await {
            Ok(inspect) => Ok(match (inspect.running, inspect.exit_code) {
                (Some(false), Some(0)) => ProbeResult::Ready,
                (Some(false), Some(PROBE_NO_TOOL)) => ProbeResult::NoTool,
                _ => ProbeResult::NotReady,
            }),
            // The container died (e.g. OOM-killed) and took the exec with it: the caller's next
            // inspect of the container says how it ended.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(ProbeResult::NotReady),
            Err(e) => Err(self.api_error("probe readiness", e).await),
        }
    }

    /// Stops (SIGTERM, SIGKILL after `grace`), inspects and removes the container, pumping
    /// what output is left.
    async fn teardown(
        &self,
        container: &str,
        grace: Duration,
        streams: &mut Streams,
        events: &dyn EventSink,
        spec: &AttemptSpec,
    ) -> Result<Torn, BackendError> {
        let stop_started = Instant::now();
        let grace_s = grace.as_secs().max(1) as i32;
        let stop = self.docker.stop_container(
            container,
            Some(StopContainerOptionsBuilder::default().t(grace_s).build()),
        );
        tokio::pin!(stop);
        let stopped = loop {
            tokio::select! {
                result = &mut stop => break result,
                pumped = streams.pump_for(Duration::from_millis(100), events, spec) => { let _ = pumped; }
            }
        };
        let stop_took = stop_started.elapsed();
        if let Err(e) = stopped {
            // 304: already stopped; 404: gone. Anything else is reported after removal.
            if !matches!(
                &e,
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 304 | 404,
                    ..
                }
            ) {
                let error = self.api_error("stop the container", e).await;
                let _ = self
                    .docker
                    .remove_container(
                        container,
                        Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                    )
                    .await;
                return Err(error);
            }
        }
        // Whatever output is still buffered.
        let drain_until = Instant::now() + Duration::from_secs(3);
        while streams.any_open() && Instant::now() < drain_until {
            streams
                .pump_for(Duration::from_millis(100), events, spec)
                .await?;
        }
        let state = self.container_state(container).await;
        let removed = self
            .docker
            .remove_container(
                container,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await;
        let state = state?;
        if let Err(e) = removed {
            if !matches!(
                &e,
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                }
            ) {
                return Err(self.api_error("remove the container", e).await);
            }
        }
        let note = (state.exit_code == Some(137) && !state.oom_killed && stop_took + Duration::from_millis(200) >= grace)
            .then(|| format!("the container did not stop on SIGTERM and was killed after the {}s grace period", grace_s));
        Ok(Torn {
            oom_killed: state.oom_killed,
            note,
        })
    }

    async fn remove_where(
        &self,
        filter: impl Fn(&HashMap<String, String>) -> bool,
    ) -> Result<usize, BackendError> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), vec![LABEL_RUN.to_string()]);
        let list = match self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
        {
            Ok(list) => list,
            Err(e) => return Err(self.api_error("list containers", e).await),
        };
        let mut removed = 0;
        for summary in list {
            let labels = summary.labels.unwrap_or_default();
            // Only ever containers that carry our labels.
            if !labels.contains_key(LABEL_RUN) || !filter(&labels) {
                continue;
            }
            let Some(id) = summary.id else { continue };
            match self
                .docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                )
                .await
            {
                Ok(()) => removed += 1,
                // Gone already, or another perfarena on this host is removing it right now.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404 | 409,
                    ..
                }) => {}
                Err(e) => return Err(self.api_error("remove an orphaned container", e).await),
            }
        }
        Ok(removed)
    }
}

/// What `drive` found.
struct Driven {
    status: AttemptStatus,
    exit_code: Option<i32>,
    message: String,
    ready_after_s: Option<f64>,
    /// The client's wall-clock time, when it ended by itself.
    client_wall_s: Option<f64>,
}

impl Driven {
    fn timeout(message: String, ready_after_s: Option<f64>) -> Driven {
        Driven {
            status: AttemptStatus::Timeout,
            exit_code: None,
            message,
            ready_after_s,
            client_wall_s: None,
        }
    }
}

struct Torn {
    oom_killed: bool,
    note: Option<String>,
}

struct ContainerRunState {
    running: bool,
    exit_code: Option<i64>,
    #[allow(dead_code)]
    oom_killed: bool,
}

enum ProbeResult {
    Ready,
    NotReady,
    NoTool,
}

fn client_result(
    exit_code: Option<i64>,
    ready_after_s: Option<f64>,
    client_log: &Path,
    server_gone: bool,
) -> Driven {
    match exit_code {
        Some(0) => Driven {
            status: AttemptStatus::Ok,
            exit_code: Some(0),
            message: String::new(),
            ready_after_s,
            client_wall_s: None,
        },
        code => {
            let mut message = match code {
                Some(code) => format!("client exited with code {code}"),
                None => "client ended without an exit code".to_string(),
            };
            if server_gone {
                message.push_str("; the server had exited");
            }
            let tail = crate::process::tail_lines(client_log, 1);
            if !tail.is_empty() {
                message.push_str(": ");
                message.push_str(&tail);
            }
            Driven {
                status: AttemptStatus::Crashed,
                exit_code: code.map(|c| c as i32),
                message,
                ready_after_s,
                client_wall_s: None,
            }
        }
    }
}

/// The container to create for one attempt, from the settings and the attempt alone.
pub fn container_config(
    settings: &DockerSettings,
    spec: &AttemptSpec,
    image: &str,
    command: &str,
    mut mounts: Vec<Mount>,
    labels: HashMap<String, String>,
    grace: Duration,
) -> ContainerCreateBody {
    let section = &settings.section;
    let mut env: Vec<String> = vec!["PYTHONUNBUFFERED=1".into()];
    if section.init {
        // tini signals the server's whole process group, not only `sh`.
        env.push("TINI_KILL_PROCESS_GROUP=1".into());
    }
    env.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
    env.extend(section.env.iter().map(|(k, v)| format!("{k}={v}")));
    if settings.secrets_section.allows(&spec.variant) {
        env.extend(
            settings
                .secrets
                .iter()
                .map(|s| format!("{}={}", s.name, s.value)),
        );
    }
    for spec_mount in &section.mounts {
        if let Some((source, target)) = spec_mount.split_once(':') {
            mounts.push(Mount {
                target: Some(target.to_string()),
                source: Some(source.to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            });
        }
    }
    let device_requests = if !spec.gpus.is_empty() {
        Some(vec![gpu_request(None, Some(spec.gpus.clone()))])
    } else {
        match &section.gpus {
            request if request.is_none() => None,
            GpuRequest::Word(_) => Some(vec![gpu_request(Some(-1), None)]),
            GpuRequest::Count(n) => Some(vec![gpu_request(Some(*n as i64), None)]),
            GpuRequest::Ids(ids) => Some(vec![gpu_request(None, Some(ids.clone()))]),
        }
    };
    let memory = parse_byte_size(&section.memory).filter(|_| !section.memory.is_empty());
    let host_config = HostConfig {
        init: Some(section.init),
        network_mode: Some(section.network.for_variant(&spec.variant).to_string()),
        mounts: (!mounts.is_empty()).then_some(mounts),
        shm_size: parse_byte_size(&section.shm_size).filter(|_| !section.shm_size.is_empty()),
        memory,
        // Swap included: the limit is a real limit.
        memory_swap: memory,
        cpuset_cpus: (!section.cpuset.is_empty()).then(|| section.cpuset.clone()),
        ulimits: (!section.ulimits.is_empty()).then(|| {
            section
                .ulimits
                .iter()
                .map(|(name, value)| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(*value),
                    hard: Some(*value),
                })
                .collect()
        }),
        device_requests,
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["sh".into(), "-c".into(), command.to_string()]),
        entrypoint: Some(Vec::new()),
        env: Some(env),
        labels: Some(labels),
        working_dir: Some(settings.source_dir.clone()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        stop_timeout: Some(grace.as_secs().max(1) as i64),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// The main process of a container without a server: it holds the container open (on a stdin
/// that stays open and silent) until the teardown's SIGTERM, with no program of its own.
pub const HOLDER: &str = "trap 'exit 0' TERM; read _";

/// The peak memory of a container's cgroup v2 (`memory.peak`, Linux ≥ 5.19), where this host
/// sees it (the daemon is local), under the systemd or the cgroupfs driver's path.
fn cgroup_v2_peak(id: &str) -> Option<u64> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    [
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.peak"),
        format!("/sys/fs/cgroup/docker/{id}/memory.peak"),
    ]
    .iter()
    .find_map(|path| fs::read_to_string(path).ok()?.trim().parse().ok())
}

fn gpu_request(count: Option<i64>, device_ids: Option<Vec<String>>) -> DeviceRequest {
    DeviceRequest {
        driver: Some(String::new()),
        count,
        device_ids,
        capabilities: Some(vec![vec!["gpu".into()]]),
        options: None,
    }
}

/// A container name: readable, unique, and only characters docker accepts.
fn container_name(spec: &AttemptSpec) -> String {
    let raw = format!(
        "pa-{}-{}-{}-r{}-{:04x}",
        spec.run_id.0,
        spec.task.short(12),
        spec.variant.dir_name(),
        spec.round_idx,
        rand_u16()
    );
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ (std::process::id() << 3)) as u16
}

/// This host's name (containers are swept only by the host that started them).
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A process's start time (clock ticks since boot), so that a reused pid is not taken for the
/// perfarena that started a container.
pub fn process_start(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit(')').next()?;
    // Fields after the command: state(3) ppid(4) … starttime(22).
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the perfarena process that labelled a container is still running.
fn owner_alive(labels: &HashMap<String, String>) -> bool {
    let Some(pid) = labels.get(LABEL_PID).and_then(|p| p.parse::<i32>().ok()) else {
        return false;
    };
    if !pid_alive(pid) {
        return false;
    }
    match labels
        .get(LABEL_PID_START)
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(start) => process_start(pid) == Some(start),
        None => true,
    }
}

/// Lists files under `dir` relative to `root`.
fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            list_files(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.display().to_string());
        }
    }
    Ok(())
}

/// Writes the files of `rev` matching `globs` under `target` (once); returns their paths.
fn extract_harness(
    repo: &GitRepo,
    rev: &str,
    globs: &[String],
    target: &Path,
) -> Result<Result<Vec<String>, String>, BackendError> {
    let listing = match repo.run_ok(&["ls-tree", "-r", "-z", rev]) {
        Ok(listing) => listing,
        Err(e) => return Ok(Err(format!("cannot list the harness at {rev}: {e}"))),
    };
    let mut entries = Vec::new();
    for record in listing.split('\0').filter(|r| !r.is_empty()) {
        let Some((meta, path)) = record.split_once('\t') else {
            continue;
        };
        let mut meta = meta.split_whitespace();
        let (mode, kind) = (meta.next().unwrap_or(""), meta.next().unwrap_or(""));
        if kind == "blob" {
            entries.push((path.to_string(), mode == "100755"));
        }
    }
    let paths: Vec<String> = entries.iter().map(|(p, _)| p.clone()).collect();
    let wanted: BTreeSet<String> = patch::matching(&paths, globs)
        .map_err(|e| BackendError::Other(e.to_string()))?
        .into_iter()
        .collect();
    let done_marker = target.join(".perfarena-harness-complete");
    if !done_marker.exists() {
        let _ = fs::remove_dir_all(target);
        for (path, executable) in entries.iter().filter(|(p, _)| wanted.contains(p)) {
            let output = repo.run(&["show", &format!("{rev}:{path}")])?;
            if !output.status.success() {
                return Ok(Err(format!(
                    "cannot read {path} at {rev}: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            let file = target.join(path);
            if let Some(parent) = file.parent() {
                crate::create_dir(parent)?;
            }
            fs::write(&file, &output.stdout)
                .map_err(|e| BackendError::io(format!("cannot write {}", file.display()), e))?;
            if *executable {
                use std::os::unix::fs::PermissionsExt;
                let _ = fs::set_permissions(&file, fs::Permissions::from_mode(0o755));
            }
        }
        crate::create_dir(target)?;
        fs::write(&done_marker, rev)
            .map_err(|e| BackendError::io(format!("cannot write {}", done_marker.display()), e))?;
    }
    Ok(Ok(wanted.into_iter().collect()))
}

/// Which paths to mount read-only for the harness: a whole directory for `dir/**` globs, a
/// file for a glob without wildcards, each matching file otherwise.
pub fn harness_mount_plan(files: &[String], globs: &[String]) -> Result<Vec<String>, String> {
    let wild = |s: &str| s.contains(['*', '?', '[', '{']);
    let mut dirs: Vec<String> = Vec::new();
    let mut singles: BTreeSet<String> = BTreeSet::new();
    for glob in globs {
        let glob = glob.trim_start_matches("./").trim_end_matches('/');
        if let Some(root) = glob
            .strip_suffix("/**")
            .filter(|r| !r.is_empty() && !wild(r))
        {
            if files.iter().any(|f| f.starts_with(&format!("{root}/"))) {
                dirs.push(root.to_string());
            }
        } else if !wild(glob) {
            if files.iter().any(|f| f == glob) {
                singles.insert(glob.to_string());
            }
        } else {
            let matched = patch::matching(files, &[glob.to_string()]).map_err(|e| e.to_string())?;
            singles.extend(matched);
        }
    }
    let mut plan: Vec<String> = dirs.clone();
    plan.extend(
        singles
            .into_iter()
            .filter(|f| !dirs.iter().any(|d| f.starts_with(&format!("{d}/")))),
    );
    plan.sort();
    plan.dedup();
    Ok(plan)
}

/// Replaces every secret's value by `[redacted:NAME]` in text that is streamed in chunks: a
/// value split over two chunks is still caught, because the last `longest - 1` bytes are held
/// back until more arrives (or the end).
pub struct Redactor {
    secrets: Vec<(Vec<u8>, Vec<u8>)>,
    pending: Vec<u8>,
    hold: usize,
    /// A secret holds a newline: a complete line is no proof that no secret continues.
    spans_lines: bool,
}

impl Redactor {
    pub fn new(secrets: &[Secret]) -> Redactor {
        let secrets: Vec<(Vec<u8>, Vec<u8>)> = secrets
            .iter()
            .filter(|s| !s.value.is_empty())
            .map(|s| {
                (
                    s.value.as_bytes().to_vec(),
                    format!("[redacted:{}]", s.name).into_bytes(),
                )
            })
            .collect();
        let hold = secrets.iter().map(|(v, _)| v.len()).max().unwrap_or(1) - 1;
        let spans_lines = secrets.iter().any(|(v, _)| v.contains(&b'\n'));
        Redactor {
            secrets,
            pending: Vec::new(),
            hold,
            spans_lines,
        }
    }

    /// Takes a chunk; returns what can be written now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return chunk.to_vec();
        }
        self.pending.extend_from_slice(chunk);
        self.pending = self.redact(&self.pending);
        let mut keep = self.hold.min(self.pending.len());
        if !self.spans_lines {
            // A secret without a newline cannot continue past one: complete lines go out now.
            let after_newline = self
                .pending
                .iter()
                .rev()
                .position(|b| *b == b'\n')
                .unwrap_or(self.pending.len());
            keep = keep.min(after_newline);
        }
        let ready = self.pending.len() - keep;
        self.pending.drain(..ready).collect()
    }

    /// The end of the stream: everything left.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = self.redact(&self.pending);
        self.pending.clear();
        rest
    }

    fn redact(&self, text: &[u8]) -> Vec<u8> {
        let mut text = text.to_vec();
        for (value, replacement) in &self.secrets {
            let mut out = Vec::with_capacity(text.len());
            let mut idx = 0;
            while idx < text.len() {
                if text[idx..].starts_with(value) {
                    out.extend_from_slice(replacement);
                    idx += value.len();
                } else {
                    out.push(text[idx]);
                    idx += 1;
                }
            }
            text = out;
        }
        text
    }
}

type OutputStream = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// One output stream of the attempt going to its log file (redacted) and the event stream.
struct OutputPipe {
    path: PathBuf,
    file: File,
    redactor: Redactor,
    stream: Option<OutputStream>,
    /// When the stream ended (the process behind it exited).
    ended_at: Option<Instant>,
    kind: LogStream,
    line: Vec<u8>,
}

impl OutputPipe {
    fn open(path: &Path, secrets: &[Secret], kind: LogStream) -> Result<OutputPipe, BackendError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| BackendError::io(format!("cannot open log {}", path.display()), e))?;
        Ok(OutputPipe {
            path: path.to_path_buf(),
            file,
            redactor: Redactor::new(secrets),
            stream: None,
            ended_at: None,
            kind,
            line: Vec::new(),
        })
    }

    fn write(
        &mut self,
        bytes: &[u8],
        events: &dyn EventSink,
        spec: &AttemptSpec,
    ) -> Result<(), BackendError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(bytes)
            .map_err(|e| BackendError::io(format!("cannot write {}", self.path.display()), e))?;
        self.line.extend_from_slice(bytes);
        while let Some(pos) = self.line.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.line.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            events.emit(Event::LogLine {
                task: spec.task.clone(),
                variant: spec.variant.clone(),
                stream: self.kind,
                line: text,
            });
        }
        if self.line.len() > 64 * 1024 {
            self.line.clear();
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), BackendError> {
        let rest = self.redactor.finish();
        self.file
            .write_all(&rest)
            .map_err(|e| BackendError::io(format!("cannot write {}", self.path.display()), e))?;
        self.file
            .flush()
            .map_err(|e| BackendError::io(format!("cannot write {}", self.path.display()), e))
    }
}

/// The attempt's output streams: the container's main process (server, or client when there
/// is no server) and the exec'd client.
#[derive(Default)]
struct Streams {
    main: Option<OutputPipe>,
    client: Option<OutputPipe>,
}

impl Streams {
    fn any_open(&self) -> bool {
        [&self.main, &self.client]
            .iter()
            .any(|p| p.as_ref().is_some_and(|p| p.stream.is_some()))
    }

    /// Writes whatever output arrives during `duration`.
    async fn pump_for(
        &mut self,
        duration: Duration,
        events: &dyn EventSink,
        spec: &AttemptSpec,
    ) -> Result<(), BackendError> {
        let sleep = tokio::time::sleep(duration);
        tokio::pin!(sleep);
        loop {
            let arrived = tokio::select! {
                _ = &mut sleep => None,
                item = next_chunk(&mut self.main) => Some((true, item)),
                item = next_chunk(&mut self.client) => Some((false, item)),
            };
            match arrived {
                None => return Ok(()),
                Some((true, item)) => handle_chunk(&mut self.main, item, events, spec)?,
                Some((false, item)) => handle_chunk(&mut self.client, item, events, spec)?,
            }
        }
    }

    fn finish(&mut self) -> Result<(), BackendError> {
        for pipe in [&mut self.main, &mut self.client].into_iter().flatten() {
            pipe.finish()?;
        }
        Ok(())
    }
}

async fn next_chunk(
    pipe: &mut Option<OutputPipe>,
) -> Option<Result<LogOutput, bollard::errors::Error>> {
    match pipe.as_mut().and_then(|p| p.stream.as_mut()) {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

fn handle_chunk(
    pipe: &mut Option<OutputPipe>,
    item: Option<Result<LogOutput, bollard::errors::Error>>,
    events: &dyn EventSink,
    spec: &AttemptSpec,
) -> Result<(), BackendError> {
    let Some(pipe) = pipe.as_mut() else {
        return Ok(());
    };
    match item {
        Some(Ok(
            LogOutput::StdOut { message }
            | LogOutput::StdErr { message }
            | LogOutput::Console { message },
        )) => {
            let ready = pipe.redactor.push(&message);
            pipe.write(&ready, events, spec)
        }
        Some(Ok(LogOutput::StdIn { .. })) => Ok(()),
        // The stream broke (daemon gone) or ended: later API calls say which.
        Some(Err(_)) | None => {
            pipe.stream = None;
            pipe.ended_at = Some(Instant::now());
            Ok(())
        }
    }
}

impl Backend for DockerBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Docker
    }

    fn prepare(
        &self,
        spec: &VariantSpec,
        events: &dyn EventSink,
    ) -> Result<Prepared, BackendError> {
        crate::create_dir(&spec.log_dir)?;
        let failure = |status: AttemptStatus, message: String| Prepared {
            variant: spec.variant.clone(),
            workdir: None,
            image: spec.image.clone(),
            rebuild_paths: Vec::new(),
            harness_paths: Vec::new(),
            failure: Some(PrepareFailure {
                status,
                message,
                log: None,
            }),
        };
        let Some(image) = spec.image.clone() else {
            let why = if spec.task.parent.is_none() && spec.variant != VariantKind::Human {
                ": the task has no parent commit"
            } else {
                ""
            };
            return Ok(failure(
                AttemptStatus::InfraError,
                format!(
                    "no image name for {} (images.* templates){why}",
                    spec.variant
                ),
            ));
        };
        let inspected = self.runtime.block_on(async {
            match self.docker.inspect_image(&image).await {
                Ok(_) => Ok(true),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(false),
                Err(e) => Err(self.api_error(&format!("inspect image {image}"), e).await),
            }
        })?;
        if !inspected {
            return Ok(failure(
                AttemptStatus::MissingImage,
                format!(
                    "image {image} not found on the docker host (perfarena never pulls): build it (`perfarena images build`) or load it"
                ),
            ));
        }
        let (rebuild_paths, harness_paths) = match &spec.patch {
            Some(patch_spec) => {
                let touched = patch::patch_paths(&patch_spec.text);
                (
                    patch::matching(&touched, &spec.rebuild_globs)
                        .map_err(|e| BackendError::Other(e.to_string()))?,
                    patch::matching(&touched, &spec.harness_globs)
                        .map_err(|e| BackendError::Other(e.to_string()))?,
                )
            }
            None => (Vec::new(), Vec::new()),
        };
        if let Err(message) = self.harness_mounts_for(spec)? {
            return Ok(failure(AttemptStatus::InfraError, message));
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

    fn run(
        &self,
        spec: &AttemptSpec,
        prepared: &Prepared,
        events: &dyn EventSink,
    ) -> Result<AttemptOutcome, BackendError> {
        self.runtime
            .block_on(self.run_async(spec, prepared, events))
    }

    fn cancel(&self, run_id: &RunId) -> Result<(), BackendError> {
        let pid = std::process::id().to_string();
        self.runtime.block_on(self.remove_where(|labels| {
            labels.get(LABEL_RUN) == Some(&run_id.0)
                && labels.get(LABEL_PID) == Some(&pid)
                && labels.get(LABEL_HOST).map(String::as_str) == Some(self.host.as_str())
        }))?;
        Ok(())
    }

    fn sweep_orphans(&self, live_runs: &[RunId]) -> Result<usize, BackendError> {
        let live: Vec<&str> = live_runs.iter().map(|r| r.0.as_str()).collect();
        let me = std::process::id().to_string();
        self.runtime.block_on(self.remove_where(|labels| {
            let run = labels.get(LABEL_RUN).map(String::as_str).unwrap_or("");
            // Another host's perfarena may be alive: its containers are not ours to judge.
            let same_host = labels.get(LABEL_HOST).map(String::as_str) == Some(self.host.as_str());
            same_host
                && !live.contains(&run)
                && labels.get(LABEL_PID) != Some(&me)
                && !owner_alive(labels)
        }))
    }

    fn release(&self, _prepared: &Prepared) -> Result<(), BackendError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, value: &str) -> Secret {
        Secret {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn redaction_survives_any_chunking() {
        let text = b"token=hf_SECRET123 and again hf_SECRET123\nend hf_SECR";
        for split in 1..text.len() {
            let mut redactor = Redactor::new(&[secret("HF_TOKEN", "hf_SECRET123")]);
            let mut out = Vec::new();
            for chunk in text.chunks(split) {
                out.extend(redactor.push(chunk));
            }
            out.extend(redactor.finish());
            let out = String::from_utf8(out).unwrap();
            assert_eq!(
                out, "token=[redacted:HF_TOKEN] and again [redacted:HF_TOKEN]\nend hf_SECR",
                "split {split}"
            );
        }
        let mut none = Redactor::new(&[]);
        assert_eq!(none.push(b"abc"), b"abc");
    }

    #[test]
    fn harness_mounts_cover_dirs_files_and_patterns() {
        let files: Vec<String> = [
            "benchmarks/a.py",
            "benchmarks/sub/b.py",
            "scripts/run.sh",
            "tools/x.py",
            "tools/y.txt",
            "README.md",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let globs: Vec<String> = [
            "benchmarks/**",
            "scripts/run.sh",
            "tools/*.py",
            "missing/**",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            harness_mount_plan(&files, &globs).unwrap(),
            vec!["benchmarks", "scripts/run.sh", "tools/x.py"]
        );
        // A pattern inside a mounted directory adds nothing.
        let globs: Vec<String> = ["benchmarks/**", "**/*.py"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            harness_mount_plan(&files, &globs).unwrap(),
            vec!["benchmarks", "tools/x.py"]
        );
    }

    fn settings(docker_toml: &str) -> DockerSettings {
        let suite = perfarena_core::Suite::from_toml_str(docker_toml, "s.toml").unwrap();
        DockerSettings {
            section: suite.docker.clone(),
            source_dir: suite.repo.source_dir.clone(),
            secrets: vec![secret("HF_TOKEN", "hf_x")],
            secrets_section: suite.secrets.clone(),
            harness: HarnessSource::Image,
            harness_globs: suite.bench.harness_globs.clone(),
            state_dir: PathBuf::from("/state"),
        }
    }

    fn attempt(variant: VariantKind, gpus: &[&str]) -> AttemptSpec {
        AttemptSpec {
            run_id: RunId("r1".into()),
            task: CommitId::parse("35fad35a485eac9195c510731ba4a9d297dfd963").unwrap(),
            variant,
            round_idx: 2,
            attempt_dir: PathBuf::from("/state/runs/r1/a"),
            server: Some("vllm serve m --port 8000".into()),
            client: "python3 benchmarks/benchmark_serving.py".into(),
            readiness: crate::ReadinessSpec {
                kind: ReadinessKind::Http,
                url: "http://127.0.0.1:8000/health".into(),
                interval: Duration::from_millis(200),
                timeout: Duration::from_secs(300),
            },
            port: 8000,
            env: vec![("VLLM_USE_V1".into(), "1".into())],
            timeout: Duration::from_secs(900),
            kill_grace: Duration::from_secs(5),
            cancel: crate::CancelToken::new(),
            gpus: gpus.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// The container a GPU attempt would get (no GPU here: the generated request is the test).
    #[test]
    fn container_config_snapshots() {
        let settings = settings(
            "[docker]\ngpus = \"all\"\nshm_size = \"16g\"\nmemory = \"64g\"\ncpuset = \"0-15\"\nmounts = [\"/data/hf:/root/.cache/huggingface\"]\n[docker.ulimits]\nmemlock = -1\n[docker.env]\nHF_HUB_OFFLINE = \"1\"\n[secrets.vars]\nHF_TOKEN = { env = \"HF_TOKEN\" }\n",
        );
        let labels = HashMap::from([(LABEL_RUN.to_string(), "r1".to_string())]);
        let human = container_config(
            &settings,
            &attempt(VariantKind::Human, &[]),
            "reg/vllm:abc",
            "vllm serve m",
            Vec::new(),
            labels.clone(),
            Duration::from_secs(5),
        );
        insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!("human_all_gpus", human) });
        // A candidate on GPU slot "2,3": no secret, no network, only its slot's devices.
        let cand = VariantKind::Candidate(perfarena_core::CandidateName::parse("agent").unwrap());
        let candidate = container_config(
            &settings,
            &attempt(cand, &["2", "3"]),
            "reg/vllm:cand",
            "vllm serve m",
            Vec::new(),
            labels,
            Duration::from_secs(5),
        );
        let env = candidate.env.clone().unwrap();
        assert!(!env.iter().any(|e| e.starts_with("HF_TOKEN=")), "{env:?}");
        let host = candidate.host_config.clone().unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(
            host.device_requests.unwrap()[0].device_ids,
            Some(vec!["2".to_string(), "3".to_string()])
        );
        assert!(human.env.unwrap().contains(&"HF_TOKEN=hf_x".to_string()));
    }

    #[test]
    fn process_start_of_self() {
        assert!(process_start(std::process::id() as i32).is_some());
        assert!(owner_alive(&HashMap::from([(
            LABEL_PID.to_string(),
            std::process::id().to_string()
        )])));
        assert!(!owner_alive(&HashMap::from([(
            LABEL_PID.to_string(),
            "999999999".to_string()
        )])));
        let mut labels = HashMap::from([(LABEL_PID.to_string(), std::process::id().to_string())]);
        labels.insert(LABEL_PID_START.to_string(), "1".into());
        assert!(!owner_alive(&labels), "a reused pid is not the owner");
    }
}
