//! `perfarena images build --backend slurm`: one job array with a task per commit, each running
//! `perfarena images build --commit C` on a node under this command's store lock.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use perfarena_backend::BackendError;
use perfarena_backend::slurm::validate_settings;
use perfarena_core::Suite;

use super::{BuildArgs, VariantArg};
use crate::context::Ctx;
use crate::progress::note;

/// `perfarena images build --backend slurm`: one job array with a task per commit (at most
/// `slurm.array_limit` at once); each array task runs `perfarena images build --commit C` with
/// the same options on its node (retry ladder, push and store records included), so the
/// perfarena binary and the project must be on a filesystem the nodes share.
pub fn run(
    ctx: &Ctx,
    suite: &Suite,
    args: &BuildArgs,
    tasks: &[perfarena_core::Task],
    lock: &perfarena_runner::lock::StoreLock,
) -> Result<std::process::ExitCode> {
    use perfarena_backend::slurm::builds::{BuildPlan, run_builds};
    use perfarena_core::events::{Event, EventSink};

    struct Lines;
    impl EventSink for Lines {
        fn emit(&self, event: Event) {
            match event {
                Event::Message { text } => note(&text),
                Event::BuildStep { image, step } => note(&format!("  {image}: {step}")),
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
            VariantArg::Baseline => "baseline",
            VariantArg::Human => "human",
            VariantArg::Candidates => "candidates",
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
                // Each array task writes its tries under this command's lock.
                env: vec![lock.delegate_env()],
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
    perfarena_runner::signals::install(&cancel).context("cannot install the signal handlers")?;
    let timeout = std::time::Duration::from_secs(suite.build.timeout_s);
    let outcomes = match run_builds(&suite.slurm, &dir, &builds, timeout, &cancel, &Lines) {
        Ok(outcomes) => outcomes,
        Err(BackendError::Cancelled) => {
            note(
                "interrupted: the build job was cancelled; run the same command again to continue",
            );
            return Ok(std::process::ExitCode::from(
                perfarena_runner::signals::exit_code(cancel.signal()),
            ));
        }
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    let mut failed = 0;
    for outcome in &outcomes {
        let mark = if outcome.ok { "✓" } else { "✗" };
        let detail = if outcome.message.is_empty() {
            String::new()
        } else {
            format!(": {}", outcome.message)
        };
        note(&format!(
            "{mark} task {} ({}, log {}){detail}",
            outcome.name,
            outcome.state,
            outcome.log.display()
        ));
        failed += usize::from(!outcome.ok);
    }
    note(&format!(
        "images: {} task(s) built on slurm, {failed} failed; details with `perfarena images status`",
        outcomes.len()
    ));
    Ok(if failed > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}
