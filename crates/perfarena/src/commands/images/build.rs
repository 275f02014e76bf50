//! `perfarena images build`: plan, then build with the retry ladder, recording every try in the
//! store (and its log under `.perfarena/builds/`) before the next one starts.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use perfarena_backend::CancelToken;
use perfarena_backend::images::builder::{
    BuildReporter, Builder, BuilderSettings, ImageOutcome, TryRecord,
};
use perfarena_backend::images::engine::Engine;
use perfarena_backend::images::plan::{ImageJob, PlanOptions, Recipe, plan};
use perfarena_backend::images::{BuildStatus, ImagesError};
use perfarena_core::Task;
use perfarena_core::events::{Event, EventSink};
use perfarena_core::import::find_task;
use perfarena_store::{BuildTryRow, ImageRow, Store};

use super::progress_file::ProgressFile;
use super::{BuildArgs, VariantArg, read_candidates, registry_client};
use crate::context::Ctx;
use crate::progress::note;

pub fn run(ctx: &Ctx, args: &BuildArgs) -> Result<ExitCode> {
    if !args.all && args.commits.is_empty() {
        bail!("say which tasks: --all, or --commit PREFIX...");
    }
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let suite = ctx.suite_required()?;
    let repo = ctx.repo(&suite)?.with_context(|| {
        format!(
            "{}: repo.path is not set: images are built from the repository's commits",
            ctx.suite_path.display()
        )
    })?;
    let all_tasks = if args.dry_run {
        // A dry run changes nothing: not even a new store.
        if Store::db_path(&ctx.state_dir).exists() {
            Store::open_existing(&ctx.state_dir)?.tasks()?
        } else {
            Vec::new()
        }
    } else {
        ctx.store()?.tasks()?
    };
    if all_tasks.is_empty() {
        bail!("no tasks in the store: import some with `perfarena tasks import FILE`");
    }
    let tasks: Vec<Task> = if args.all {
        all_tasks.clone()
    } else {
        args.commits
            .iter()
            .map(|prefix| {
                find_task(&all_tasks, prefix)
                    .cloned()
                    .with_context(|| format!("--commit {prefix}"))
            })
            .collect::<Result<_>>()?
    };
    let candidates = read_candidates(&args.candidates, &tasks)?;
    if args.variant == Some(VariantArg::Candidates) && candidates.is_empty() {
        bail!("--variant candidates: no candidate patches: pass --candidates NAME=PATCH");
    }
    let era_builds = perfarena_runner::eras::builds(&suite, &repo, &tasks);
    let options = PlanOptions {
        variants: VariantArg::filter(args.variant),
        max_jobs: args.max_jobs,
        dockerfiles: era_builds.dockerfiles,
        era_args: era_builds.args,
    };
    let jobs = plan(&suite, &tasks, &candidates, &options)?;

    if args.dry_run {
        crate::restore_sigpipe();
        print_plan(&jobs, &suite, !args.no_push);
        print!(
            "{}",
            perfarena_runner::eras::describe_commands(&suite, Some(&repo), &tasks)
        );
        return Ok(ExitCode::SUCCESS);
    }
    // One writer per project; array tasks on Slurm write under this lock (delegated).
    let lock = ctx.lock_store()?;
    if args.backend == "slurm" {
        return super::build_slurm::run(ctx, &suite, args, &tasks, &lock);
    }

    let store = ctx.store()?;
    for cand in &candidates {
        store.put_patch(&cand.sha256, &cand.text)?;
    }
    let engine = Engine::connect()?;
    let registry = registry_client(Vec::new());
    let credentials = perfarena_backend::images::auth::CredentialSource::from_environment();
    let cancel = CancelToken::new();
    perfarena_runner::signals::install(&cancel).context("cannot install the signal handlers")?;
    let builds_dir = std::path::absolute(ctx.state_dir.join("builds"))
        .context("cannot resolve the store directory")?;
    let builder = Builder {
        engine: &engine,
        registry: &registry,
        credentials: &credentials,
        repo: &repo,
        suite_dir: ctx
            .suite_path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default(),
        builds_dir,
        settings: BuilderSettings {
            timeout: Duration::from_secs(suite.build.timeout_s),
            min_max_jobs: suite.build.min_max_jobs,
            min_free_disk_gib: suite.build.min_free_disk_gib,
            push: !args.no_push,
            builder: suite.build.builder,
        },
        cancel: cancel.clone(),
    };
    let progress = ProgressFile::new(args.progress_json.clone(), &jobs);
    let reporter = Reporter::new(store, &progress, jobs.len() as u64, args.json);
    reporter.say(&format!(
        "{} image(s) to produce ({})",
        jobs.len(),
        if args.no_push {
            "no push"
        } else {
            "build and push"
        }
    ));
    let result = builder.run(&jobs, args.jobs, &reporter);
    reporter.bar.finish_and_clear();
    let outcomes = reporter.outcomes.into_inner().unwrap_or_default();
    match result {
        Err(ImagesError::Cancelled) => {
            progress.finish("interrupted");
            note(&format!(
                "interrupted: {} of {} image(s) finished and recorded; run the same command again to continue",
                outcomes.len(),
                jobs.len()
            ));
            Ok(ExitCode::from(perfarena_runner::signals::exit_code(
                cancel.signal(),
            )))
        }
        Err(err) => {
            progress.finish("failed");
            Err(anyhow::Error::new(err).context(format!(
                "{} of {} image(s) finished before this",
                outcomes.len(),
                jobs.len()
            )))
        }
        Ok(outcomes_in_order) => {
            progress.finish("finished");
            // Every image is recorded: a closed stdout may end the command quietly now.
            crate::restore_sigpipe();
            if args.json {
                let rows: Vec<serde_json::Value> = outcomes_in_order
                    .iter()
                    .map(|o| {
                        serde_json::json!({
                            "image": o.image, "status": o.status, "excerpt": o.excerpt, "digest": o.digest,
                            "tries": o.tries.len(), "duration_s": o.duration_s,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "version": 1, "images": rows })
                    )?
                );
            }
            let mut counts = std::collections::BTreeMap::new();
            for outcome in &outcomes_in_order {
                *counts.entry(outcome.status.as_str()).or_insert(0usize) += 1;
            }
            let summary: Vec<String> = counts
                .iter()
                .map(|(status, n)| format!("{n} {status}"))
                .collect();
            note(&format!(
                "images: {}",
                if summary.is_empty() {
                    "nothing to do".to_string()
                } else {
                    summary.join(", ")
                }
            ));
            let failed = outcomes_in_order
                .iter()
                .any(|o| !o.status.is_ok() && o.status != BuildStatus::PermanentlyFailed);
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn print_plan(jobs: &[ImageJob], suite: &perfarena_core::Suite, push: bool) {
    println!(
        "plan: {} image(s), {}; nothing is built (--dry-run)",
        jobs.len(),
        if push {
            "build then push"
        } else {
            "build, no push"
        }
    );
    for (idx, job) in jobs.iter().enumerate() {
        let args: Vec<String> = job
            .args_with_max_jobs(job.max_jobs)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("{:>3}. {} {}", idx + 1, job.variant, job.image);
        println!(
            "     task {}  source {}",
            job.task.short(12),
            job.commit.short(12)
        );
        if let Some(reason) = &job.permanently_failed {
            println!("     skip: permanently failed: {reason}");
            continue;
        }
        match &job.recipe {
            Recipe::Full {
                dockerfile,
                context_git,
            } => {
                let export = if *context_git {
                    "git export with a one-commit .git"
                } else {
                    "git export"
                };
                let builder = match suite.build.builder {
                    // Decided per Dockerfile at build time (it is read from the commit).
                    perfarena_core::suite::BuilderChoice::Auto => String::new(),
                    other => format!(", builder {}", other.as_str()),
                };
                println!(
                    "     docker build of the commit ({export}), Dockerfile {dockerfile}{builder}"
                )
            }
            Recipe::Candidate {
                base_image,
                rebuild_paths,
                patch_sha256,
                ..
            } => {
                println!(
                    "     FROM {base_image} + patch {}",
                    &patch_sha256[..12.min(patch_sha256.len())]
                );
                if rebuild_paths.is_empty() {
                    println!("     one thin layer (no file matches build.rebuild_globs)");
                } else {
                    println!(
                        "     rebuild ({}): {}",
                        rebuild_paths.join(", "),
                        suite.build.rebuild_command
                    );
                }
            }
        }
        println!(
            "     args: {}",
            if args.is_empty() {
                "(none)".to_string()
            } else {
                args.join(" ")
            }
        );
        if let Some(jobs) = job.max_jobs {
            println!(
                "     on out-of-memory: retry with max_jobs halved, down to {}",
                suite.build.min_max_jobs.max(1).min(jobs)
            );
        }
        if let Some(script) = &job.pre_build_patch {
            println!("     pre_build_patch: {script}");
        }
        if let Some(human) = &job.requires_human {
            println!("     needs the human image {human}");
        }
        if !job.shared_with.is_empty() {
            let shared: Vec<&str> = job.shared_with.iter().map(|c| c.short(12)).collect();
            println!("     shared with task(s) {}", shared.join(", "));
        }
    }
}

/// RFC 3339, UTC, seconds.
fn timestamp(time: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Records tries in the store, keeps the progress file and prints a line per image.
struct Reporter<'a> {
    store: Mutex<Store>,
    progress: &'a ProgressFile,
    bar: ProgressBar,
    json: bool,
    outcomes: Mutex<Vec<ImageOutcome>>,
}

impl<'a> Reporter<'a> {
    fn new(store: Store, progress: &'a ProgressFile, total: u64, json: bool) -> Reporter<'a> {
        let bar = ProgressBar::new(total);
        if !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {pos}/{len} images {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Reporter {
            store: Mutex::new(store),
            progress,
            bar,
            json,
            outcomes: Mutex::new(Vec::new()),
        }
    }

    fn say(&self, line: &str) {
        if self.bar.is_hidden() {
            note(line);
        } else {
            self.bar.println(line);
        }
    }
}

impl EventSink for Reporter<'_> {
    fn emit(&self, event: Event) {
        if let Event::BuildStep { step, .. } = &event {
            self.bar
                .set_message(step.chars().take(100).collect::<String>());
        }
        if self.json {
            return;
        }
        if let Event::Message { text } = event {
            self.say(&text);
        }
    }
}

impl BuildReporter for Reporter<'_> {
    fn image_started(&self, job: &ImageJob) {
        self.progress
            .update(&job.image, |e| e.state = "building".into());
        self.emit(Event::Message {
            text: format!("· {} {} ({})", job.variant, job.image, job.task.short(12)),
        });
    }

    fn try_started(&self, job: &ImageJob, try_idx: u32, max_jobs: Option<u32>) {
        self.progress.update(&job.image, |e| {
            e.try_idx = Some(try_idx);
            e.max_jobs = max_jobs;
        });
        if try_idx > 0 {
            let jobs = max_jobs
                .map(|j| format!(" with max_jobs={j}"))
                .unwrap_or_default();
            self.emit(Event::Message {
                text: format!("  retry {try_idx}{jobs} (out of memory)"),
            });
        }
    }

    fn line(&self, job: &ImageJob, line: &str) {
        self.emit(Event::BuildStep {
            image: job.image.clone(),
            step: line.to_string(),
        });
    }

    fn try_finished(&self, job: &ImageJob, record: &TryRecord) {
        // Durable before the next try starts.
        let written = self
            .store
            .lock()
            .map_err(|_| anyhow::anyhow!("store lock poisoned"))
            .and_then(|store| {
                let started_at = timestamp(record.started_at);
                store
                    .insert_build_try(&BuildTryRow {
                        task: job.task.to_string(),
                        variant: job.variant.clone(),
                        image: job.image.clone(),
                        status: record.status.as_str().into(),
                        try_idx: record.try_idx,
                        max_jobs: record.max_jobs,
                        started_at: started_at.clone(),
                        duration_s: record.duration_s,
                        log_path: record.log_path.as_ref().map(|p| p.display().to_string()),
                        excerpt: record.excerpt.clone(),
                        args: serde_json::to_value(&record.args).unwrap_or_default(),
                        digest: record.digest.clone(),
                    })
                    .context("cannot record the build in the store")?;
                if record.status.is_ok() {
                    store
                        .upsert_image(&ImageRow {
                            image: &job.image,
                            local: "present",
                            registry: if record.digest.is_some() {
                                "present"
                            } else {
                                "unknown"
                            },
                            digest: record.digest.as_deref(),
                            source: "build",
                            checked_at: &started_at,
                        })
                        .context("cannot record the image in the store")?;
                }
                Ok(())
            });
        if let Err(err) = written {
            self.say(&format!("warning: {err:#}"));
        }
        self.progress.update(&job.image, |e| {
            e.tries += 1;
            e.status = Some(record.status.to_string());
            e.excerpt = record.excerpt.clone();
            e.log = record.log_path.as_ref().map(|p| p.display().to_string());
        });
    }

    fn image_finished(&self, job: &ImageJob, outcome: &ImageOutcome) {
        self.progress.update(&job.image, |e| {
            e.state = "done".into();
            e.duration_s = Some(outcome.duration_s);
        });
        self.bar.inc(1);
        let mark = if outcome.status.is_ok() { "✓" } else { "✗" };
        let tries = if outcome.tries.len() > 1 {
            format!(", {} tries", outcome.tries.len())
        } else {
            String::new()
        };
        let excerpt = match (&outcome.excerpt, outcome.status.is_ok()) {
            (Some(text), false) => format!(": {text}"),
            _ => String::new(),
        };
        self.emit(Event::Message {
            text: format!(
                "{mark} {} {} {} ({:.1}s{tries}){excerpt}",
                job.variant, job.image, outcome.status, outcome.duration_s
            ),
        });
        if let Ok(mut outcomes) = self.outcomes.lock() {
            outcomes.push(outcome.clone());
        }
    }
}
