//! `perfarena demo`: the toy example end to end, offline, on the local backend.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use crate::commands::run::RunArgs;
use crate::context::Ctx;
use crate::progress::say;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Measured rounds per variant.
    #[arg(long, default_value_t = 3)]
    pub repeats: u32,
    /// Only create the example project; run nothing.
    #[arg(long)]
    pub no_run: bool,
}

/// Where the demo project lives, and whether this invocation made it.
enum DemoDir {
    /// A fresh directory under the system temp dir (no `-C`).
    Fresh(PathBuf),
    /// The `-C` directory, absent or empty before.
    Created(PathBuf),
    /// The `-C` directory, a demo project from an earlier `perfarena demo`.
    Reused(PathBuf),
}

/// Chooses the demo's directory. The demo never writes into or over a user's files: without
/// `-C` it makes a fresh directory; with `-C` the directory must be absent, empty, or a demo
/// project written earlier (recognised by its marker file).
fn demo_dir(dir: Option<&Path>) -> Result<DemoDir> {
    let Some(dir) = dir else {
        let fresh = tempfile::Builder::new()
            .prefix("perfarena-demo-")
            .tempdir()
            .with_context(|| {
                format!(
                    "cannot create a directory for the demo under {}: set TMPDIR to a writable \
                     directory, or pass -C with a new directory",
                    std::env::temp_dir().display()
                )
            })?;
        return Ok(DemoDir::Fresh(fresh.keep()));
    };
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    if crate::toy::is_demo_project(&dir) {
        return Ok(DemoDir::Reused(dir));
    }
    if dir.exists() {
        if !dir.is_dir() {
            bail!(
                "{} is not a directory: pass -C with a new directory for the demo, or run \
                 `perfarena demo` without -C (it makes a fresh one)",
                dir.display()
            );
        }
        let mut entries = std::fs::read_dir(&dir).with_context(|| {
            format!(
                "cannot read {}: pass -C with a directory you can write",
                dir.display()
            )
        })?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty and is not a demo project: the demo never writes into your \
                 files; pass -C with a new or empty directory, or run `perfarena demo` without -C \
                 (it makes a fresh directory)",
                dir.display()
            );
        }
    }
    Ok(DemoDir::Created(dir))
}

pub fn run(dir: Option<&Path>, suite: Option<&Path>, args: &DemoArgs) -> Result<ExitCode> {
    if let Some(suite) = suite {
        bail!(
            "--suite {} does not apply to `demo`: the demo writes its own suite",
            suite.display()
        );
    }
    let toy = match demo_dir(dir)? {
        DemoDir::Fresh(dir) => {
            let toy = crate::toy::create(&dir)?;
            say(&format!("demo project: {} (new)", toy.dir.display()));
            toy
        }
        DemoDir::Created(dir) => {
            let toy = crate::toy::create(&dir).with_context(|| {
                format!(
                    "cannot create the demo in {}: pass -C with a directory you can write, or \
                     run `perfarena demo` without -C",
                    dir.display()
                )
            })?;
            say(&format!("demo project: {} (new)", toy.dir.display()));
            toy
        }
        DemoDir::Reused(dir) => {
            let toy = crate::toy::open(&dir)?;
            say(&format!(
                "demo project: {} (reused: a demo project from an earlier run)",
                toy.dir.display()
            ));
            toy
        }
    };
    let ctx = Ctx::new(&toy.dir, None);
    let tasks = crate::commands::input_files::read_rows(&toy.tasks_file)?.rows;
    let suite = ctx.suite_required()?;
    let repo = ctx
        .repo(&suite)?
        .context("the toy suite names its repository")?;
    // The demo writes its tasks under the lock; `run` takes it again for itself.
    let lock = ctx.lock_store()?;
    let mut store = ctx.store()?;
    let outcome = perfarena_core::import::import_tasks(&tasks, &[], &repo, &store.tasks()?);
    if let Some(error) = outcome.errors.first() {
        anyhow::bail!("toy task import failed: {error}");
    }
    store.upsert_tasks(
        &outcome.tasks,
        &toy.tasks_file.display().to_string(),
        &crate::context::now(),
    )?;
    drop(store);
    drop(lock);
    if args.no_run {
        say(&format!(
            "next: perfarena -C {} run --candidates {}",
            toy.dir.display(),
            candidate_args(&toy).join(" ")
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let run_args = RunArgs {
        tasks: Vec::new(),
        candidates: candidate_args(&toy),
        repeats: Some(args.repeats.to_string()),
        backend: Some("local".into()),
        parallel: 1,
        resume: false,
        run_id: None,
        seed: None,
        json: false,
    };
    let code = crate::commands::run::run(&ctx, &run_args)?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    let store = ctx.store()?;
    let model = crate::commands::report::build_model(&suite, &store, None)?;
    let report = toy.dir.join("report.md");
    std::fs::write(&report, perfarena_report::markdown(&model))
        .with_context(|| format!("cannot write {}", report.display()))?;
    say(&format!("report: {}", report.display()));
    say(&format!(
        "more: perfarena -C {} report --format html --out {}",
        toy.dir.display(),
        toy.dir.display()
    ));
    Ok(ExitCode::SUCCESS)
}

fn candidate_args(toy: &crate::toy::ToyProject) -> Vec<String> {
    toy.candidates
        .iter()
        .map(|(name, path)| format!("{name}={}", path.display()))
        .collect()
}
