//! The Docker Engine API through bollard: inspect, build (classic builder or BuildKit, streaming
//! the log), push (with the pushed digest), pull from the suite's registry, tag, remove, the
//! engine's version and where it keeps its data (for the free-disk check). Blocking methods over
//! a private tokio runtime; every long call takes a deadline and the cancel token, and dropping
//! the stream cancels the engine's work.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::BuildInfoAux;
use bollard::query_parameters::{
    BuildImageOptions, BuilderVersion, CreateImageOptions, PushImageOptions, RemoveImageOptions,
};
use futures_util::StreamExt;

use super::ImagesError;
use super::auth::Credentials;
use super::dockerfile::BuilderKind;
use super::reference::ImageName;
use super::trace::{TraceLog, TraceStatus, TraceText, TraceUpdate, TraceVertex, TraceWarning};
use crate::CancelToken;

/// Short calls (inspect, info, remove) give up after this.
const SHORT_CALL: Duration = Duration::from_secs(60);

/// An image in the local engine.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalImage {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    /// `registry/repo@sha256:…` for each registry it was pushed to or pulled from.
    pub repo_digests: Vec<String>,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The build context, a tar.
    pub context: Vec<u8>,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    pub tag: String,
    pub args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `None`: the engine's default network for RUN steps; `Some("none")` for untrusted code.
    pub network: Option<String>,
    pub builder: BuilderKind,
}

/// How a build (or push, or pull) ended when it was not cancelled.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnd<T> {
    Done(T),
    /// The engine's error message.
    Failed(String),
    TimedOut,
}

pub struct Engine {
    docker: Docker,
    runtime: tokio::runtime::Runtime,
    /// `docker version`'s server version, asked once.
    version: std::sync::OnceLock<Option<String>>,
}

impl Engine {
    /// Connects as the docker CLI would (`DOCKER_HOST`, else the local socket) and pings.
    pub fn connect() -> Result<Engine, ImagesError> {
        let (runtime, docker) = runtime_and_client(2)?;
        let engine = Engine {
            docker,
            runtime,
            version: std::sync::OnceLock::new(),
        };
        engine
            .short(engine.docker.ping())?
            .map_err(|e| ImagesError::Engine(e.to_string()))?;
        Ok(engine)
    }

    fn short<F: std::future::Future>(&self, future: F) -> Result<F::Output, ImagesError> {
        self.runtime
            .block_on(async { tokio::time::timeout(SHORT_CALL, future).await })
            .map_err(|_| {
                ImagesError::Engine(format!("no answer within {} s", SHORT_CALL.as_secs()))
            })
    }

    /// The image, if the engine has it.
    pub fn inspect(&self, reference: &str) -> Result<Option<LocalImage>, ImagesError> {
        match self.short(self.docker.inspect_image(reference))? {
            Ok(image) => Ok(Some(LocalImage {
                id: image.id.unwrap_or_default(),
                labels: image
                    .config
                    .and_then(|c| c.labels)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                repo_digests: image.repo_digests.unwrap_or_default(),
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(ImagesError::Engine(e.to_string())),
        }
    }

    /// Where the engine keeps images (`docker info`'s DockerRootDir).
    pub fn root_dir(&self) -> Result<Option<PathBuf>, ImagesError> {
        let info = self
            .short(self.docker.info())?
            .map_err(|e| ImagesError::Engine(e.to_string()))?;
        Ok(info.docker_root_dir.map(PathBuf::from))
    }

    /// The engine's version (`docker version`'s server version, e.g. `20.10.24`); `None` when
    /// the engine does not say.
    pub fn server_version(&self) -> Result<Option<String>, ImagesError> {
        if let Some(version) = self.version.get() {
            return Ok(version.clone());
        }
        let version = self
            .short(self.docker.version())?
            .map_err(|e| ImagesError::Engine(e.to_string()))?
            .version;
        Ok(self.version.get_or_init(|| version).clone())
    }

    /// Removes an image by reference (its tag; layers other images use stay).
    pub fn remove(&self, reference: &str) -> Result<(), ImagesError> {
        let options = RemoveImageOptions {
            force: true,
            ..Default::default()
        };
        match self.short(self.docker.remove_image(reference, Some(options), None))? {
            Ok(_)
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(ImagesError::Engine(e.to_string())),
        }
    }

    /// Builds `request`, appending the engine's output to `log` and passing each line to
    /// `on_line`. `Err(Cancelled)` when `cancel` was set (the engine stops the build when the
    /// stream is dropped).
    pub fn build(
        &self,
        request: BuildRequest,
        log: &Path,
        on_line: &(dyn Fn(&str) + Sync),
        deadline: Instant,
        cancel: &CancelToken,
    ) -> Result<StreamEnd<()>, ImagesError> {
        if request.builder == BuilderKind::BuildKit {
            return self.build_with_buildkit(request, log, on_line, deadline, cancel);
        }
        let mut log_file = open_log(log)?;
        let options = BuildImageOptions {
            rm: true,
            // Remove the containers of failed steps too.
            forcerm: true,
            ..build_options(&request)
        };
        let body = bollard::body_full(bytes::Bytes::from(request.context));
        let stream = self.docker.build_image(options, None, Some(body));
        let mut pending = String::new();
        let result = self.drive(stream, deadline, cancel, |item| match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
                    let _ = log_file.write_all(text.as_bytes());
                    if info.status.is_some() && !text.ends_with('\n') {
                        let _ = log_file.write_all(b"\n");
                    }
                    pending.push_str(text);
                    while let Some(idx) = pending.find('\n') {
                        let line: String = pending.drain(..=idx).collect();
                        let line = line.trim_end();
                        if !line.is_empty() {
                            on_line(line);
                        }
                    }
                }
                None
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                let _ = writeln!(log_file, "{error}");
                Some(error)
            }
            Err(other) => {
                let message = other.to_string();
                let _ = writeln!(log_file, "{message}");
                Some(message)
            }
        });
        let _ = log_file.flush();
        result
    }

    /// [`Engine::build`] with BuildKit (`version=2`), through bollard's `buildkit` feature: it
    /// opens the client session BuildKit builds require (`/session`, gRPC; it answers the
    /// engine's questions, e.g. registry credentials) and decodes the progress, which the engine
    /// sends as base64 protobuf (`moby.buildkit.trace`), into `StatusResponse`s; [`TraceText`]
    /// writes them as `docker build --progress=plain` does. Labels come from the Dockerfile's
    /// LABEL line as with the classic builder; `forcerm` has no meaning here (BuildKit leaves no
    /// step containers).
    fn build_with_buildkit(
        &self,
        request: BuildRequest,
        log: &Path,
        on_line: &(dyn Fn(&str) + Sync),
        deadline: Instant,
        cancel: &CancelToken,
    ) -> Result<StreamEnd<()>, ImagesError> {
        let mut log_file = open_log(log)?;
        let _ = writeln!(log_file, "BuildKit build of {}", request.tag);
        // A runtime and a client of its own, shut down when the build ends: bollard serves the
        // session on a connection task it spawns and never stops, and the engine keeps a
        // session until its client hangs up, so on the shared runtime every build would leave a
        // session and its connection open for the life of the process. Shutting the runtime down
        // closes them (and, on Ctrl-C or a timeout, the build's stream too: the engine cancels).
        let (runtime, docker) = runtime_and_client(1)?;
        let options = BuildImageOptions {
            version: BuilderVersion::BuilderBuildKit,
            session: Some(session_id()),
            ..build_options(&request)
        };
        let body = bollard::body_full(bytes::Bytes::from(request.context));
        let stream = docker.build_image(options, None, Some(body));
        let mut trace = TraceText::new();
        let emit = |lines: Vec<String>, log_file: &mut File| {
            for line in lines {
                let _ = writeln!(log_file, "{line}");
                on_line(&line);
            }
        };
        let result = drive_on(&runtime, stream, deadline, cancel, |item| match item {
            Ok(info) => {
                match &info.aux {
                    Some(BuildInfoAux::BuildKit(status)) => {
                        emit(trace.push(&trace_update(status)), &mut log_file)
                    }
                    Some(BuildInfoAux::Default(image)) => {
                        if let Some(id) = &image.id {
                            let _ = writeln!(log_file, "image {id}");
                        }
                    }
                    None => {}
                }
                if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
                    emit(
                        text.lines()
                            .map(str::trim_end)
                            .filter(|l| !l.is_empty())
                            .map(String::from)
                            .collect(),
                        &mut log_file,
                    );
                }
                None
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                emit(trace.finish(), &mut log_file);
                let _ = writeln!(log_file, "{error}");
                Some(error)
            }
            Err(other) => {
                emit(trace.finish(), &mut log_file);
                let message = other.to_string();
                let _ = writeln!(log_file, "{message}");
                Some(message)
            }
        });
        emit(trace.finish(), &mut log_file);
        let _ = log_file.flush();
        runtime.shutdown_background();
        result
    }

    /// Makes `tag` from `base` plus one layer (`layer`: an uncompressed layer tar, paths from
    /// the root, `.wh.` whiteouts for deletions) with `labels`, without running anything: an
    /// image archive (docker save format) holding the new config and only the new layer is
    /// loaded; the engine finds the base's layers by their chain ids and reuses them. This is
    /// what appending a layer in a registry does (`crane append`), here in the engine.
    /// `Failed` when the engine does not take it (e.g. another image store): the caller builds
    /// the same layer with the builder instead.
    pub fn append_layer(
        &self,
        base: &str,
        layer: Vec<u8>,
        labels: &BTreeMap<String, String>,
        comment: &str,
        tag: &ImageName,
        log: &Path,
    ) -> Result<StreamEnd<()>, ImagesError> {
        use sha2::{Digest as _, Sha256};
        let mut log_file = open_log(log)?;
        let reference = format!("{}:{}", tag.repository_with_registry(), tag.tag_or_latest());
        let _ = writeln!(
            log_file,
            "appending one layer ({} bytes) to {base} as {reference}",
            layer.len()
        );
        let image = match self.short(self.docker.inspect_image(base))? {
            Ok(image) => image,
            Err(e) => return Ok(StreamEnd::Failed(format!("cannot inspect {base}: {e}"))),
        };
        let base_layers = image.root_fs.and_then(|r| r.layers).unwrap_or_default();
        let layer_diff = format!("sha256:{}", hex_of(&Sha256::digest(&layer)));
        let mut config = serde_json::to_value(image.config.unwrap_or_default())
            .map_err(|e| ImagesError::Other(e.to_string()))?;
        if let Some(object) = config.as_object_mut() {
            let labels_value = object.entry("Labels").or_insert(serde_json::json!({}));
            if !labels_value.is_object() {
                *labels_value = serde_json::json!({});
            }
            if let Some(map) = labels_value.as_object_mut() {
                for (k, v) in labels {
                    map.insert(k.clone(), serde_json::Value::String(v.clone()));
                }
            }
        }
        let created = chrono_like_now();
        // The base's history when it matches its layers (one non-empty entry per layer), so
        // `docker history` still tells the whole story; else one placeholder per base layer.
        // The engine's history API does not say which entries made a layer: an entry did if it
        // has a size, or is a classic builder's WORKDIR (a layer of size 0).
        let mut history: Vec<serde_json::Value> = base_layers
            .iter()
            .map(|d| serde_json::json!({ "created_by": format!("(a layer of {base}: {d})") }))
            .collect();
        if let Ok(Ok(entries)) = self.short(self.docker.image_history(base)) {
            let rebuilt: Vec<serde_json::Value> = entries
                .iter()
                .rev()
                .map(|h| {
                    let empty = h.size == 0 && h.created_by.contains("#(nop)") && !h.created_by.contains("#(nop) WORKDIR");
                    serde_json::json!({ "created": unix_to_rfc3339(h.created), "created_by": h.created_by, "comment": h.comment, "empty_layer": empty })
                })
                .collect();
            let non_empty = rebuilt.iter().filter(|h| h["empty_layer"] == false).count();
            if non_empty == base_layers.len() {
                history = rebuilt;
            }
        }
        history.push(
            serde_json::json!({ "created": created, "created_by": comment, "comment": comment }),
        );
        let mut diff_ids = base_layers.clone();
        diff_ids.push(layer_diff.clone());
        let image_config = serde_json::json!({
            "architecture": image.architecture.unwrap_or_else(|| "amd64".into()),
            "os": image.os.unwrap_or_else(|| "linux".into()),
            "created": created,
            "config": config,
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": history,
        });
        let config_bytes =
            serde_json::to_vec(&image_config).map_err(|e| ImagesError::Other(e.to_string()))?;
        let config_hex = hex_of(&Sha256::digest(&config_bytes));
        // Base layers are named but absent: the engine looks them up by chain id first.
        let layer_names: Vec<String> = diff_ids
            .iter()
            .map(|d| format!("{}/layer.tar", d.trim_start_matches("sha256:")))
            .collect();
        let manifest = serde_json::json!([{ "Config": format!("{config_hex}.json"), "RepoTags": [reference], "Layers": layer_names }]);
        let mut archive = tar::Builder::new(Vec::new());
        let mut add = |name: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_cksum();
            archive
                .append_data(&mut header, name, bytes)
                .map_err(|e| ImagesError::io("image archive", e))
        };
        add(
            "manifest.json",
            &serde_json::to_vec(&manifest).unwrap_or_default(),
        )?;
        add(&format!("{config_hex}.json"), &config_bytes)?;
        add(
            layer_names
                .last()
                .map(String::as_str)
                .unwrap_or("layer.tar"),
            &layer,
        )?;
        let archive = archive
            .into_inner()
            .map_err(|e| ImagesError::io("image archive", e))?;
        let options = bollard::query_parameters::ImportImageOptions {
            quiet: true,
            ..Default::default()
        };
        let stream = self.docker.import_image(
            options,
            bollard::body_full(bytes::Bytes::from(archive)),
            None,
        );
        let deadline = Instant::now() + SHORT_CALL;
        let end = self.drive(stream, deadline, &CancelToken::new(), |item| match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
                    let _ = write!(log_file, "{text}");
                }
                None
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => Some(error),
            Err(other) => Some(other.to_string()),
        })?;
        if let StreamEnd::Failed(message) = &end {
            let _ = writeln!(log_file, "the engine did not load the layer: {message}");
            return Ok(end);
        }
        // The tag must now name exactly the image whose config we wrote.
        match self.inspect(&reference)? {
            Some(found) if found.id == format!("sha256:{config_hex}") => Ok(StreamEnd::Done(())),
            Some(found) => Ok(StreamEnd::Failed(format!(
                "{reference} is {} after loading, not sha256:{config_hex}",
                found.id
            ))),
            None => Ok(StreamEnd::Failed(format!(
                "{reference} is missing after loading"
            ))),
        }
    }

    /// Pushes `name` (tag) to its registry; the pushed manifest digest on success.
    pub fn push(
        &self,
        name: &ImageName,
        credentials: Option<&Credentials>,
        log: &Path,
        deadline: Instant,
        cancel: &CancelToken,
    ) -> Result<StreamEnd<String>, ImagesError> {
        let mut log_file = open_log(log)?;
        let _ = writeln!(
            log_file,
            "pushing {}:{}",
            name.repository_with_registry(),
            name.tag_or_latest()
        );
        let options = PushImageOptions {
            tag: Some(name.tag_or_latest().to_string()),
            ..Default::default()
        };
        let creds = credentials.map(|c| c.to_docker(&name.registry));
        let stream = self
            .docker
            .push_image(&name.repository_with_registry(), Some(options), creds);
        let mut digest = None;
        let end = self.drive(stream, deadline, cancel, |item| match item {
            Ok(info) => {
                if let Some(status) = info.status.as_deref() {
                    // Layer progress is noise in a log; keep the rest.
                    if info.progress_detail.is_none() || !status.starts_with("Pushing") {
                        let _ = writeln!(log_file, "{status}");
                    }
                    if let Some(found) =
                        status.split_whitespace().find(|w| w.starts_with("sha256:"))
                    {
                        digest = Some(found.to_string());
                    }
                }
                None
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                let _ = writeln!(log_file, "{error}");
                Some(error)
            }
            Err(other) => Some(other.to_string()),
        })?;
        Ok(match end {
            StreamEnd::Done(()) => match digest {
                Some(d) => StreamEnd::Done(d),
                None => StreamEnd::Failed("the engine reported no digest for the push".into()),
            },
            StreamEnd::Failed(m) => StreamEnd::Failed(m),
            StreamEnd::TimedOut => StreamEnd::TimedOut,
        })
    }

    /// Pulls `name` from its registry (the suite's registry; never an implicit Docker Hub pull).
    pub fn pull(
        &self,
        name: &ImageName,
        credentials: Option<&Credentials>,
        log: &Path,
        deadline: Instant,
        cancel: &CancelToken,
    ) -> Result<StreamEnd<()>, ImagesError> {
        let mut log_file = open_log(log)?;
        let _ = writeln!(
            log_file,
            "pulling {}:{}",
            name.repository_with_registry(),
            name.tag_or_latest()
        );
        let options = CreateImageOptions {
            from_image: Some(name.repository_with_registry()),
            tag: Some(name.manifest_reference().to_string()),
            ..Default::default()
        };
        let creds = credentials.map(|c| c.to_docker(&name.registry));
        let stream = self.docker.create_image(Some(options), None, creds);
        self.drive(stream, deadline, cancel, |item| match item {
            Ok(_) => None,
            Err(e) => {
                let message = match e {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => other.to_string(),
                };
                let _ = writeln!(log_file, "{message}");
                Some(message)
            }
        })
    }

    /// Polls `stream` to its end, the deadline or cancellation; `on_item` returns an error
    /// message to stop with.
    fn drive<S, T>(
        &self,
        stream: S,
        deadline: Instant,
        cancel: &CancelToken,
        on_item: impl FnMut(T) -> Option<String>,
    ) -> Result<StreamEnd<()>, ImagesError>
    where
        S: futures_util::Stream<Item = T>,
    {
        drive_on(&self.runtime, stream, deadline, cancel, on_item)
    }
}

/// [`Engine::drive`] on `runtime`.
fn drive_on<S, T>(
    runtime: &tokio::runtime::Runtime,
    stream: S,
    deadline: Instant,
    cancel: &CancelToken,
    mut on_item: impl FnMut(T) -> Option<String>,
) -> Result<StreamEnd<()>, ImagesError>
where
    S: futures_util::Stream<Item = T>,
{
    runtime.block_on(async move {
        let mut stream = std::pin::pin!(stream);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    None => return Ok(StreamEnd::Done(())),
                    Some(item) => {
                        if let Some(error) = on_item(item) {
                            return Ok(StreamEnd::Failed(error));
                        }
                    }
                },
                _ = tick.tick() => {
                    if cancel.is_cancelled() {
                        return Err(ImagesError::Cancelled);
                    }
                    if Instant::now() >= deadline {
                        return Ok(StreamEnd::TimedOut);
                    }
                }
            }
        }
    })
}

/// A BuildKit session id: unique per build (the engine keys the build's session by it).
fn session_id() -> String {
    use sha2::{Digest as _, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{}-{:?}-{}",
        std::process::id(),
        std::time::SystemTime::now(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let hex = hex_of(&Sha256::digest(seed.as_bytes()));
    format!("perfarena-{}", &hex[..25])
}

/// bollard's decoded `StatusResponse` as the plain structs [`TraceText`] reads.
fn trace_update(status: &bollard::moby::buildkit::v1::StatusResponse) -> TraceUpdate {
    let seconds = |seconds: i64, nanos: i32| seconds as f64 + f64::from(nanos) / 1e9;
    TraceUpdate {
        vertexes: status
            .vertexes
            .iter()
            .map(|v| TraceVertex {
                digest: v.digest.clone(),
                name: v.name.clone(),
                cached: v.cached,
                started: v.started.as_ref().map(|t| seconds(t.seconds, t.nanos)),
                completed: v.completed.as_ref().map(|t| seconds(t.seconds, t.nanos)),
                error: v.error.clone(),
            })
            .collect(),
        statuses: status
            .statuses
            .iter()
            .map(|s| TraceStatus {
                id: s.id.clone(),
                vertex: s.vertex.clone(),
                current: s.current,
                total: s.total,
                completed: s.completed.is_some(),
            })
            .collect(),
        logs: status
            .logs
            .iter()
            .map(|l| TraceLog {
                vertex: l.vertex.clone(),
                time: l.timestamp.as_ref().map(|t| seconds(t.seconds, t.nanos)),
                msg: l.msg.clone(),
            })
            .collect(),
        warnings: status
            .warnings
            .iter()
            .map(|w| TraceWarning {
                vertex: w.vertex.clone(),
                short: String::from_utf8_lossy(&w.short).into_owned(),
            })
            .collect(),
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now, RFC 3339 UTC (the image config's `created`).
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    unix_to_rfc3339(secs)
}

/// Seconds since the epoch → `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
fn unix_to_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// An async runtime of `workers` threads and a client that connects as the docker CLI would
/// (`DOCKER_HOST`, else the local socket). Streams (builds, pushes) run for hours: the client
/// timeout must not cut them; every call carries its own deadline instead.
fn runtime_and_client(workers: usize) -> Result<(tokio::runtime::Runtime, Docker), ImagesError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| ImagesError::io("cannot start the async runtime", e))?;
    let docker = Docker::connect_with_defaults()
        .map_err(|e| ImagesError::Engine(e.to_string()))?
        .with_timeout(Duration::from_secs(7 * 24 * 3600));
    Ok((runtime, docker))
}

/// What every build sends, whichever builder: Dockerfile, tag, build args, labels, network.
fn build_options(request: &BuildRequest) -> BuildImageOptions {
    BuildImageOptions {
        dockerfile: request.dockerfile.clone(),
        t: Some(request.tag.clone()),
        buildargs: Some(request.args.clone().into_iter().collect::<HashMap<_, _>>()),
        labels: Some(
            request
                .labels
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        ),
        networkmode: request.network.clone(),
        ..Default::default()
    }
}

fn open_log(path: &Path) -> Result<File, ImagesError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| ImagesError::io(format!("cannot create {}", parent.display()), e))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| ImagesError::io(format!("cannot open log {}", path.display()), e))
}

/// Free space (GiB) of the filesystem holding `path`.
pub fn free_disk_gib(path: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt as _;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return None;
    }
    Some(stat.f_bavail as f64 * stat.f_frsize as f64 / (1024.0 * 1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(unix_to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(unix_to_rfc3339(1_704_196_800), "2024-01-02T12:00:00Z");
        assert_eq!(unix_to_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
