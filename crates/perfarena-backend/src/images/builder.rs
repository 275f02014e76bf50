//! Runs a build plan: for each image, skip what exists, build from the exported commit (or the
//! baseline plus a patch for candidates), retry out-of-memory failures with half the jobs, bound
//! the whole ladder by the recipe's timeout, push and check the pushed digest. Every try is
//! handed to the [`BuildReporter`] as it ends (the CLI writes it to the store before the next
//! try starts); a cancelled try is not reported.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use perfarena_core::VariantKind;
use perfarena_core::patch::patch_paths;
use perfarena_core::suite::BuilderChoice;

use super::auth::CredentialSource;
use super::context::{StepResult, add_git_dir, export, layer_tar, run_step, tar_dir};
use super::dockerfile::{BuilderKind, choose_builder, heredoc_preflight, scan};
use super::engine::{BuildRequest, Engine, StreamEnd, free_disk_gib};
use super::plan::{ImageJob, Recipe};
use super::reference::ImageName;
use super::registry::RegistryClient;
use super::signature::{FailureKind, classify};
use super::{Availability, BuildStatus, ImagesError};
use crate::CancelToken;
use crate::git::{GitRepo, apply_patch};

/// The name of the Dockerfile perfarena writes into a candidate's (or a suite-provided) context.
const GENERATED_DOCKERFILE: &str = ".perfarena.Dockerfile";

/// One try of one image, as the store records it.
#[derive(Debug, Clone)]
pub struct TryRecord {
    pub try_idx: u32,
    pub max_jobs: Option<u32>,
    pub status: BuildStatus,
    pub started_at: SystemTime,
    pub duration_s: f64,
    pub log_path: Option<PathBuf>,
    /// The failure's evidence line, or why nothing was built.
    pub excerpt: Option<String>,
    pub args: BTreeMap<String, String>,
    pub digest: Option<String>,
}

/// How one image ended: its last try decides.
#[derive(Debug, Clone)]
pub struct ImageOutcome {
    pub image: String,
    pub status: BuildStatus,
    pub excerpt: Option<String>,
    pub digest: Option<String>,
    pub tries: Vec<TryRecord>,
    pub duration_s: f64,
}

/// Receives progress; the CLI records tries in the store, updates the progress file and the
/// terminal. Called from several threads with `--jobs N`.
pub trait BuildReporter: Sync {
    fn image_started(&self, job: &ImageJob);
    fn try_started(&self, job: &ImageJob, try_idx: u32, max_jobs: Option<u32>);
    /// A line of the build's output.
    fn line(&self, job: &ImageJob, line: &str);
    /// A finished try; must be durable before returning (the next try starts after).
    fn try_finished(&self, job: &ImageJob, record: &TryRecord);
    fn image_finished(&self, job: &ImageJob, outcome: &ImageOutcome);
}

#[derive(Debug, Clone)]
pub struct BuilderSettings {
    /// The whole ladder of one image, pushes included.
    pub timeout: Duration,
    pub min_max_jobs: u32,
    pub min_free_disk_gib: f64,
    pub push: bool,
    /// `build.builder`: which builder runs the builds.
    pub builder: BuilderChoice,
}

pub struct Builder<'a> {
    pub engine: &'a Engine,
    pub registry: &'a RegistryClient,
    pub credentials: &'a CredentialSource,
    pub repo: &'a GitRepo,
    /// Where a suite-provided Dockerfile is looked up (the suite file's directory).
    pub suite_dir: PathBuf,
    /// `.perfarena/builds`: logs, and temporary exports under `tmp/`.
    pub builds_dir: PathBuf,
    pub settings: BuilderSettings,
    pub cancel: CancelToken,
}

/// A file-system-safe name for an image reference.
pub fn slug(image: &str) -> String {
    image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What one try's build produced.
enum TryEnd {
    Built,
    /// Failed before or during the build: (status, excerpt, out of memory?).
    Failed(BuildStatus, String, bool),
}

impl Builder<'_> {
    /// Builds every job: humans, then baselines, then candidates, each phase with up to
    /// `parallel` builds at once. Stops at the first error that is not an image's own failure
    /// (cancellation, low disk, an engine that went away); what finished is already reported.
    pub fn run(
        &self,
        jobs: &[ImageJob],
        parallel: usize,
        reporter: &dyn BuildReporter,
    ) -> Result<Vec<ImageOutcome>, ImagesError> {
        let mut outcomes = Vec::new();
        for phase in [Phase::Human, Phase::Baseline, Phase::Candidate] {
            let queue: Mutex<VecDeque<&ImageJob>> =
                Mutex::new(jobs.iter().filter(|j| Phase::of(j) == phase).collect());
            let results: Mutex<Vec<Result<ImageOutcome, ImagesError>>> = Mutex::new(Vec::new());
            let stop = CancelToken::new();
            std::thread::scope(|scope| {
                for _ in 0..parallel.max(1) {
                    scope.spawn(|| {
                        loop {
                            if stop.is_cancelled() {
                                break;
                            }
                            let Some(job) = queue.lock().ok().and_then(|mut q| q.pop_front())
                            else {
                                break;
                            };
                            let result = self.build_one(job, reporter);
                            if result.is_err() {
                                stop.cancel();
                            }
                            if let Ok(mut r) = results.lock() {
                                r.push(result);
                            }
                        }
                    });
                }
            });
            let mut first_error = None;
            for result in results.into_inner().unwrap_or_default() {
                match result {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(e) => {
                        if first_error.is_none() || matches!(e, ImagesError::Cancelled) {
                            first_error = Some(e);
                        }
                    }
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        Ok(outcomes)
    }

    /// Produces one image (or says why not).
    pub fn build_one(
        &self,
        job: &ImageJob,
        reporter: &dyn BuildReporter,
    ) -> Result<ImageOutcome, ImagesError> {
        if self.cancel.is_cancelled() {
            return Err(ImagesError::Cancelled);
        }
        reporter.image_started(job);
        let started = Instant::now();
        let started_at = SystemTime::now();
        let mut tries: Vec<TryRecord> = Vec::new();
        let finish = |tries: Vec<TryRecord>| {
            let last = tries.last().cloned();
            let outcome = ImageOutcome {
                image: job.image.clone(),
                status: last
                    .as_ref()
                    .map(|t| t.status)
                    .unwrap_or(BuildStatus::BuildFailed),
                excerpt: last.as_ref().and_then(|t| t.excerpt.clone()),
                digest: last.as_ref().and_then(|t| t.digest.clone()),
                duration_s: started.elapsed().as_secs_f64(),
                tries,
            };
            reporter.image_finished(job, &outcome);
            outcome
        };
        let record = |tries: &mut Vec<TryRecord>, record: TryRecord| {
            reporter.try_finished(job, &record);
            tries.push(record);
        };
        let skipped = |status: BuildStatus, excerpt: String, digest: Option<String>| TryRecord {
            try_idx: 0,
            max_jobs: None,
            status,
            started_at,
            duration_s: started.elapsed().as_secs_f64(),
            log_path: None,
            excerpt: Some(excerpt),
            args: job.args.clone(),
            digest,
        };

        if let Some(reason) = &job.permanently_failed {
            record(
                &mut tries,
                skipped(BuildStatus::PermanentlyFailed, reason.clone(), None),
            );
            return Ok(finish(tries));
        }
        let name = ImageName::parse(&job.image)?;
        let deadline = started + self.settings.timeout;
        let log_dir = self.builds_dir.join(slug(&job.image));
        let stamp = started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);

        // Already there?
        let local = self.engine.inspect(&job.image)?;
        let remote = if self.settings.push || local.is_none() {
            Some(self.registry.manifest(&name))
        } else {
            None
        };
        if let Some(image) = &local {
            let in_registry = remote.as_ref().is_some_and(Availability::is_present);
            if !self.settings.push || in_registry {
                let digest = remote
                    .as_ref()
                    .and_then(|r| r.digest().map(String::from))
                    .or_else(|| repo_digest(&image.repo_digests, &name));
                record(
                    &mut tries,
                    skipped(
                        BuildStatus::AlreadyExists,
                        "already in the local engine".into(),
                        digest,
                    ),
                );
                return Ok(finish(tries));
            }
            // Built earlier but never pushed (e.g. an interrupted command): push only.
            let log = log_dir.join(format!("{stamp}-push.log"));
            let (status, excerpt, digest) = self.push_and_verify(&name, &log, deadline)?;
            let status = if status == BuildStatus::Success {
                BuildStatus::AlreadyExists
            } else {
                status
            };
            let excerpt = excerpt.or(Some("already in the local engine; pushed".into()));
            let mut try_record = skipped(status, excerpt.unwrap_or_default(), digest);
            try_record.log_path = Some(log);
            record(&mut tries, try_record);
            return Ok(finish(tries));
        }
        if let Some(Availability::Present { digest }) = &remote {
            record(
                &mut tries,
                skipped(
                    BuildStatus::AlreadyExists,
                    "already in the registry".into(),
                    digest.clone(),
                ),
            );
            return Ok(finish(tries));
        }
        if let Some(human) = &job.requires_human
            && !self.exists_anywhere(human)?
        {
            let excerpt = format!(
                "the human image {human} is in neither the local engine nor the registry: build it first (`--variant human`)"
            );
            record(
                &mut tries,
                skipped(BuildStatus::HumanImageMissing, excerpt, None),
            );
            return Ok(finish(tries));
        }
        self.check_disk()?;

        // The context, prepared once for every try.
        let tmp = self.builds_dir.join("tmp").join(format!(
            "{}-{}",
            slug(&job.image),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        let prepared = self.prepare(
            job,
            &name,
            &tmp,
            &log_dir.join(format!("{stamp}-prepare.log")),
            deadline,
        );
        let prepared = match prepared {
            Ok(Ok(prepared)) => prepared,
            Ok(Err((status, excerpt, log))) => {
                let _ = std::fs::remove_dir_all(&tmp);
                let mut try_record = skipped(status, excerpt, None);
                try_record.log_path = Some(log);
                record(&mut tries, try_record);
                return Ok(finish(tries));
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };

        // The ladder. A failed try's step images stay as the engine's build cache (the next try
        // reuses them, as may any other build): removing them would race with builds using them.
        let on_line = |line: &str| reporter.line(job, line);
        let mut max_jobs = job.max_jobs;
        let mut try_idx = 0u32;
        let result = loop {
            reporter.try_started(job, try_idx, max_jobs);
            let try_started = Instant::now();
            let try_started_at = SystemTime::now();
            let log = log_dir.join(format!("{stamp}-try{try_idx}.log"));
            let args = job.args_with_max_jobs(max_jobs);
            // A thin candidate layer runs nothing: no args to pass (the engine warns of unused ones).
            let thin = matches!(&job.recipe, Recipe::Candidate { rebuild_paths, .. } if rebuild_paths.is_empty());
            let request = BuildRequest {
                context: prepared.context.clone(),
                dockerfile: prepared.dockerfile.clone(),
                tag: job.image.clone(),
                args: if thin { BTreeMap::new() } else { args.clone() },
                // In the Dockerfile already (one LABEL step).
                labels: BTreeMap::new(),
                network: if job.is_candidate() {
                    Some("none".into())
                } else {
                    None
                },
                builder: prepared.builder,
            };
            let appended = match &prepared.layer {
                Some((base, layer)) => {
                    match self.engine.append_layer(
                        base,
                        layer.clone(),
                        &job.labels,
                        "perfarena: candidate patch layer",
                        &name,
                        &log,
                    ) {
                        Ok(StreamEnd::Done(())) => Some(Ok(StreamEnd::Done(()))),
                        Ok(_) => None, // logged; the builder makes the same layer
                        Err(e) => Some(Err(e)),
                    }
                }
                None => None,
            };
            let end = match appended {
                Some(end) => end,
                None => self
                    .engine
                    .build(request, &log, &on_line, deadline, &self.cancel),
            };
            let end = match end {
                Ok(end) => end,
                Err(e) => break Err(e),
            };
            let mut try_record = TryRecord {
                try_idx,
                max_jobs,
                status: BuildStatus::BuildFailed,
                started_at: try_started_at,
                duration_s: 0.0,
                log_path: Some(log.clone()),
                excerpt: None,
                args,
                digest: None,
            };
            let outcome = match end {
                StreamEnd::Done(()) => match self.engine.inspect(&job.image)? {
                    Some(_) => TryEnd::Built,
                    None => TryEnd::Failed(
                        BuildStatus::BuildFailed,
                        "the engine reported success but has no such image".into(),
                        false,
                    ),
                },
                StreamEnd::TimedOut => TryEnd::Failed(
                    BuildStatus::Timeout,
                    format!(
                        "the build ran past build.timeout_s = {} s (all tries of this image together)",
                        self.settings.timeout.as_secs()
                    ),
                    false,
                ),
                StreamEnd::Failed(message) => {
                    let log_text = tail(&log, 256 * 1024);
                    let failure = classify(&log_text, &message);
                    let oom = failure.kind == FailureKind::OutOfMemory;
                    let excerpt = match (failure.kind, max_jobs) {
                        (FailureKind::OutOfMemory, Some(jobs)) => {
                            format!("out of memory with max_jobs={jobs}: {}", failure.excerpt)
                        }
                        (FailureKind::NoSpace, _) => {
                            format!("disk full (not retried): {}", failure.excerpt)
                        }
                        _ => failure.excerpt,
                    };
                    TryEnd::Failed(BuildStatus::BuildFailed, excerpt, oom)
                }
            };
            match outcome {
                TryEnd::Built => {
                    if self.settings.push {
                        let (status, excerpt, digest) =
                            self.push_and_verify(&name, &log, deadline)?;
                        try_record.status = status;
                        try_record.excerpt = excerpt;
                        try_record.digest = digest;
                    } else {
                        try_record.status = BuildStatus::Success;
                        try_record.digest = None;
                    }
                    try_record.duration_s = try_started.elapsed().as_secs_f64();
                    record(&mut tries, try_record);
                    break Ok(());
                }
                TryEnd::Failed(status, excerpt, oom) => {
                    try_record.status = status;
                    try_record.excerpt = Some(excerpt);
                    try_record.duration_s = try_started.elapsed().as_secs_f64();
                    record(&mut tries, try_record);
                    let next = max_jobs.map(|j| (j / 2).max(self.settings.min_max_jobs.max(1)));
                    let can_retry =
                        oom && next.is_some() && next < max_jobs && Instant::now() < deadline;
                    if !can_retry {
                        break Ok(());
                    }
                    max_jobs = next;
                    try_idx += 1;
                }
            }
        };
        let _ = std::fs::remove_dir_all(&tmp);
        result?;
        Ok(finish(tries))
    }

    /// Whether `reference` is in the local engine or the registry (unknown counts as absent).
    fn exists_anywhere(&self, reference: &str) -> Result<bool, ImagesError> {
        if self.engine.inspect(reference)?.is_some() {
            return Ok(true);
        }
        Ok(self
            .registry
            .manifest(&ImageName::parse(reference)?)
            .is_present())
    }

    /// Refuses to start a build when the engine's disk or the store's is below the minimum.
    pub fn check_disk(&self) -> Result<(), ImagesError> {
        let min = self.settings.min_free_disk_gib;
        if min <= 0.0 {
            return Ok(());
        }
        let mut places = vec![self.builds_dir.clone()];
        // A remote engine's root is not on this host: only what we can see is checked.
        if let Some(root) = self.engine.root_dir()? {
            places.push(root);
        }
        for place in places {
            let probe = existing_ancestor(&place);
            if let Some(free) = free_disk_gib(&probe)
                && free < min
            {
                return Err(ImagesError::LowDisk {
                    path: probe.display().to_string(),
                    free_gib: free,
                    min_gib: min,
                });
            }
        }
        Ok(())
    }

    /// Pushes and checks that the registry serves the digest the engine pushed.
    fn push_and_verify(
        &self,
        name: &ImageName,
        log: &Path,
        deadline: Instant,
    ) -> Result<(BuildStatus, Option<String>, Option<String>), ImagesError> {
        let credentials = self.credentials.lookup(name.auth_key());
        // A push gets at least a minute even when the build used most of the budget.
        let deadline = deadline.max(Instant::now() + Duration::from_secs(60));
        match self
            .engine
            .push(name, credentials.as_ref(), log, deadline, &self.cancel)?
        {
            StreamEnd::Done(pushed) => match self.registry.manifest(name) {
                Availability::Present {
                    digest: Some(served),
                } if served == pushed => Ok((BuildStatus::Success, None, Some(pushed))),
                Availability::Present { digest } => Ok((
                    BuildStatus::PushFailed,
                    Some(format!(
                        "pushed {pushed} but the registry serves {}",
                        digest.as_deref().unwrap_or("no digest")
                    )),
                    Some(pushed),
                )),
                Availability::Missing => Ok((
                    BuildStatus::PushFailed,
                    Some(format!("pushed {pushed} but the registry does not have it")),
                    Some(pushed),
                )),
                Availability::Unknown { reason } => Ok((
                    BuildStatus::PushFailed,
                    Some(format!("pushed {pushed} but cannot check it: {reason}")),
                    Some(pushed),
                )),
            },
            StreamEnd::Failed(message) => {
                Ok((BuildStatus::PushFailed, Some(first_line(&message)), None))
            }
            StreamEnd::TimedOut => Ok((
                BuildStatus::PushFailed,
                Some("the push ran past build.timeout_s".into()),
                None,
            )),
        }
    }

    /// The build context and Dockerfile of a job; `Ok(Err(..))`: the image cannot be built
    /// (a patch that does not apply, a failing pre_build_patch…), with the status to record.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        job: &ImageJob,
        name: &ImageName,
        tmp: &Path,
        log: &Path,
        deadline: Instant,
    ) -> Result<Result<Prepared, (BuildStatus, String, PathBuf)>, ImagesError> {
        let fail = |status, excerpt: String| Ok(Err((status, excerpt, log.to_path_buf())));
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ImagesError::io(format!("cannot create {}", parent.display()), e))?;
        }
        let note = |text: &str| {
            use std::io::Write as _;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
            {
                let _ = writeln!(f, "{text}");
            }
        };
        let src = tmp.join("src");
        match &job.recipe {
            Recipe::Full {
                dockerfile,
                context_git,
            } => {
                note(&format!(
                    "exporting {} (git archive) for {}",
                    job.commit.short(12),
                    job.image
                ));
                export(self.repo, &job.commit, &src, None)?;
                if let Some(script) = &job.pre_build_patch {
                    note(&format!("pre_build_patch: {script}"));
                    match run_step(script, &src, log, deadline, &self.cancel)? {
                        StepResult::Ok => {}
                        StepResult::Failed(how) => {
                            return fail(
                                BuildStatus::BuildFailed,
                                format!("pre_build_patch failed ({how})"),
                            );
                        }
                        StepResult::TimedOut => {
                            return fail(
                                BuildStatus::Timeout,
                                "pre_build_patch ran past build.timeout_s".into(),
                            );
                        }
                    }
                }
                // The Dockerfile from the commit, else next to the suite; one LABEL line is
                // appended (the engine's `labels` option would add one step per label).
                let in_repo = src.join(dockerfile);
                let suite_file = self.suite_dir.join(dockerfile);
                let text = match std::fs::read_to_string(&in_repo)
                    .or_else(|_| std::fs::read_to_string(&suite_file))
                {
                    Ok(text) => text,
                    Err(_) => {
                        return fail(
                            BuildStatus::BuildFailed,
                            format!(
                                "build.dockerfile {dockerfile:?} is neither in the repository at {} nor at {}",
                                job.commit.short(12),
                                suite_file.display()
                            ),
                        );
                    }
                };
                let scanned = scan(&text);
                let (builder, why) = choose_builder(self.settings.builder, &scanned);
                note(&format!("builder: {} ({why})", builder.as_str()));
                // A heredoc the engine's Dockerfile frontend cannot parse fails here, naming its
                // line, rather than as the engine's "unknown instruction" on the heredoc's body.
                if builder == BuilderKind::BuildKit
                    && scanned.first_heredoc().is_some()
                    && let Err(message) = heredoc_preflight(
                        &scanned,
                        dockerfile,
                        self.engine.server_version()?.as_deref(),
                    )
                {
                    note(&message);
                    return fail(BuildStatus::BuildFailed, message);
                }
                if *context_git {
                    note(&format!(
                        "build.context_git: .git of {} in the context",
                        job.commit.short(12)
                    ));
                    add_git_dir(self.repo, &job.commit, &src)?;
                }
                let extra = vec![(
                    GENERATED_DOCKERFILE.to_string(),
                    with_labels(&text, &job.labels).into_bytes(),
                )];
                let context = tar_dir(&src, &extra, *context_git)?;
                Ok(Ok(Prepared {
                    context,
                    dockerfile: GENERATED_DOCKERFILE.to_string(),
                    layer: None,
                    builder,
                }))
            }
            Recipe::Candidate {
                base_image,
                patch_text,
                rebuild_paths,
                rebuild_command,
                source_dir,
                ..
            } => {
                if !rebuild_paths.is_empty() && rebuild_command.trim().is_empty() {
                    return fail(
                        BuildStatus::BuildFailed,
                        format!(
                            "the patch touches {} (build.rebuild_globs) but build.rebuild_command is empty: set the compile step to rerun",
                            rebuild_paths.join(", ")
                        ),
                    );
                }
                // The baseline must be in the engine: pull it from the registry if only there.
                if self.engine.inspect(base_image)?.is_none() {
                    let base = ImageName::parse(base_image)?;
                    match self.registry.manifest(&base) {
                        Availability::Present { .. } => {
                            let credentials = self.credentials.lookup(base.auth_key());
                            match self.engine.pull(
                                &base,
                                credentials.as_ref(),
                                log,
                                deadline,
                                &self.cancel,
                            )? {
                                StreamEnd::Done(()) => {}
                                StreamEnd::Failed(m) => {
                                    return fail(
                                        BuildStatus::BuildFailed,
                                        format!(
                                            "cannot pull the baseline image {base_image}: {}",
                                            first_line(&m)
                                        ),
                                    );
                                }
                                StreamEnd::TimedOut => {
                                    return fail(
                                        BuildStatus::Timeout,
                                        format!(
                                            "pulling the baseline image {base_image} ran past build.timeout_s"
                                        ),
                                    );
                                }
                            }
                        }
                        _ => {
                            return fail(
                                BuildStatus::BuildFailed,
                                format!(
                                    "the baseline image {base_image} is missing: build it first (`perfarena images build --variant baseline`)"
                                ),
                            );
                        }
                    }
                }
                let paths = patch_paths(patch_text);
                // The files the patch touches as they are in the baseline image: the parent's,
                // after the baseline's pre_build_patch (which needs the whole tree).
                if let Some(script) = &job.pre_build_patch {
                    export(self.repo, &job.commit, &src, None)?;
                    note(&format!("pre_build_patch (as for the baseline): {script}"));
                    match run_step(script, &src, log, deadline, &self.cancel)? {
                        StepResult::Ok => {}
                        StepResult::Failed(how) => {
                            return fail(
                                BuildStatus::BuildFailed,
                                format!("pre_build_patch failed ({how})"),
                            );
                        }
                        StepResult::TimedOut => {
                            return fail(
                                BuildStatus::Timeout,
                                "pre_build_patch ran past build.timeout_s".into(),
                            );
                        }
                    }
                } else {
                    export(self.repo, &job.commit, &src, Some(&paths))?;
                }
                // Its own repository, so that `git apply` never resolves paths against an
                // enclosing one (it would silently skip paths outside the current directory).
                let init = std::process::Command::new("git")
                    .arg("-C")
                    .arg(&src)
                    .args(["init", "-q"])
                    .output();
                if !init.map(|o| o.status.success()).unwrap_or(false) {
                    return Err(ImagesError::Git(format!(
                        "cannot init a scratch repository in {}",
                        src.display()
                    )));
                }
                // Absolute: git runs in the scratch copy.
                let patch_file = std::path::absolute(tmp.join("candidate.patch"))
                    .map_err(|e| ImagesError::io("candidate.patch", e))?;
                std::fs::write(&patch_file, patch_text).map_err(|e| {
                    ImagesError::io(format!("cannot write {}", patch_file.display()), e)
                })?;
                if let Err(message) = apply_patch(&src, &patch_file)? {
                    note(&format!("git apply: {message}"));
                    return fail(BuildStatus::PatchFailed, message);
                }
                note(&format!("patch applies: {}", paths.join(", ")));
                // The context: the patched files under files/, and a generated Dockerfile.
                let files = tmp.join("context");
                let mut copied = Vec::new();
                let mut deleted = Vec::new();
                for path in &paths {
                    let from = src.join(path);
                    if from.is_file() {
                        let to = files.join("files").join(path);
                        if let Some(parent) = to.parent() {
                            std::fs::create_dir_all(parent).map_err(|e| {
                                ImagesError::io(format!("cannot create {}", parent.display()), e)
                            })?;
                        }
                        std::fs::copy(&from, &to).map_err(|e| {
                            ImagesError::io(format!("cannot copy {}", from.display()), e)
                        })?;
                        copied.push(path.clone());
                    } else {
                        deleted.push(path.clone());
                    }
                }
                std::fs::create_dir_all(&files).map_err(|e| {
                    ImagesError::io(format!("cannot create {}", files.display()), e)
                })?;
                let dockerfile = candidate_dockerfile(
                    base_image,
                    source_dir,
                    &copied,
                    &deleted,
                    rebuild_paths,
                    rebuild_command,
                    &job.args_with_max_jobs(job.max_jobs),
                );
                let dockerfile = with_labels(&dockerfile, &job.labels);
                note(&format!(
                    "{} for {}:\n{dockerfile}",
                    GENERATED_DOCKERFILE,
                    name.repository_with_registry()
                ));
                let (builder, why) = choose_builder(self.settings.builder, &scan(&dockerfile));
                note(&format!("builder: {} ({why})", builder.as_str()));
                let context = tar_dir(
                    &files,
                    &[(GENERATED_DOCKERFILE.to_string(), dockerfile.into_bytes())],
                    false,
                )?;
                // No rebuild: the layer that Dockerfile would make is appended directly (no
                // builder, no step containers); the Dockerfile is the fallback.
                let layer =
                    if rebuild_paths.is_empty() && !(copied.is_empty() && deleted.is_empty()) {
                        Some((
                            base_image.clone(),
                            layer_tar(&files.join("files"), source_dir, &copied, &deleted)?,
                        ))
                    } else {
                        None
                    };
                Ok(Ok(Prepared {
                    context,
                    dockerfile: GENERATED_DOCKERFILE.to_string(),
                    layer,
                    builder,
                }))
            }
        }
    }
}

struct Prepared {
    context: Vec<u8>,
    dockerfile: String,
    /// A thin candidate layer appended without the builder: (base image, layer tar).
    layer: Option<(String, Vec<u8>)>,
    builder: BuilderKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Human,
    Baseline,
    Candidate,
}

impl Phase {
    fn of(job: &ImageJob) -> Phase {
        match job.variant {
            VariantKind::Human => Phase::Human,
            VariantKind::Baseline => Phase::Baseline,
            VariantKind::Candidate(_) => Phase::Candidate,
        }
    }
}

/// The Dockerfile of a candidate: FROM the baseline, the patched files copied over the source
/// (one thin layer), deletions, and the rebuild step only when the patch touches rebuild globs.
pub fn candidate_dockerfile(
    base_image: &str,
    source_dir: &str,
    copied: &[String],
    deleted: &[String],
    rebuild_paths: &[String],
    rebuild_command: &str,
    args: &BTreeMap<String, String>,
) -> String {
    let dir = source_dir.trim_end_matches('/');
    let mut out = format!("FROM {base_image}\n");
    if !copied.is_empty() {
        out.push_str(&format!("COPY files/ {dir}/\n"));
    }
    if !deleted.is_empty() {
        let quoted: Vec<String> = deleted
            .iter()
            .map(|p| perfarena_core::template::shell_word(&format!("{dir}/{p}")))
            .collect();
        out.push_str(&format!("RUN rm -f -- {}\n", quoted.join(" ")));
    }
    if !rebuild_paths.is_empty() {
        // The build args are visible to the rebuild step as variables (e.g. ${max_jobs}).
        for name in args.keys() {
            out.push_str(&format!("ARG {name}\n"));
        }
        out.push_str(&format!(
            "RUN cd {} && {}\n",
            perfarena_core::template::shell_word(dir),
            rebuild_command.trim()
        ));
    }
    out
}

/// `dockerfile` with one `LABEL` instruction for all `labels` appended (it applies to the last
/// stage, as the engine's own labels would).
pub fn with_labels(dockerfile: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = dockerfile.trim_end().to_string();
    if !labels.is_empty() {
        let pairs: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
            .collect();
        out.push_str(&format!("\nLABEL {}", pairs.join(" ")));
    }
    out.push('\n');
    out
}

fn repo_digest(repo_digests: &[String], name: &ImageName) -> Option<String> {
    let prefix = format!("{}@", name.repository_with_registry());
    repo_digests
        .iter()
        .find_map(|d| d.strip_prefix(&prefix).map(String::from))
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .chars()
        .take(240)
        .collect()
}

fn existing_ancestor(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    while !current.exists() {
        match current.parent() {
            Some(parent) if parent != current => current = parent.to_path_buf(),
            _ => break,
        }
    }
    current
}

/// The last `max_bytes` of a file, lossily decoded.
fn tail(path: &Path, max_bytes: u64) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max_bytes)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_only_candidate_is_one_copy_layer() {
        let args = BTreeMap::from([("max_jobs".to_string(), "4".to_string())]);
        let thin = candidate_dockerfile(
            "reg/toy:baseline-abc",
            "/workspace/src/",
            &["toyllm/engine.py".into()],
            &[],
            &[],
            "python3 build.py",
            &args,
        );
        assert_eq!(
            thin,
            "FROM reg/toy:baseline-abc\nCOPY files/ /workspace/src/\n"
        );
        let rebuild = candidate_dockerfile(
            "reg/toy:baseline-abc",
            "/workspace/src",
            &["csrc/kernels.txt".into()],
            &["old it's.py".into()],
            &["csrc/kernels.txt".into()],
            "MAX_JOBS=${max_jobs} python3 build.py",
            &args,
        );
        assert_eq!(
            rebuild,
            "FROM reg/toy:baseline-abc\nCOPY files/ /workspace/src/\nRUN rm -f -- '/workspace/src/old it'\\''s.py'\nARG max_jobs\nRUN cd /workspace/src && MAX_JOBS=${max_jobs} python3 build.py\n"
        );
    }

    #[test]
    fn labels_are_one_instruction() {
        let labels = BTreeMap::from([
            ("a.b".to_string(), "x y".to_string()),
            ("c".to_string(), "q\"".to_string()),
        ]);
        assert_eq!(
            with_labels("FROM x\nRUN y\n\n", &labels),
            "FROM x\nRUN y\nLABEL a.b=\"x y\" c=\"q\\\"\"\n"
        );
        assert_eq!(with_labels("FROM x", &BTreeMap::new()), "FROM x\n");
    }

    #[test]
    fn slugs_are_path_safe() {
        assert_eq!(
            slug("127.0.0.1:5000/toy:baseline-ab"),
            "127.0.0.1_5000_toy_baseline-ab"
        );
    }
}
