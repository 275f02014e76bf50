//! `perfarena demo`: the toy example end to end, offline, on the local backend.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::commands::run::RunArgs;
use crate::context::Ctx;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where to create the example (default: a new directory under the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Measured rounds per variant.
    #[arg(long, default_value_t = 3)]
    pub repeats: u32,
    /// Only create the example project; run nothing.
    #[arg(long)]
    pub no_run: bool,
}

pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            std::env::temp_dir().join(format!("perfarena-demo-{}", crate::runner::new_run_id()))
        }
    };
    let toy = crate::toy::create(&dir)?;
    println!("toy example created in {}", toy.dir.display());
    let ctx = Ctx::new(&toy.dir, None);
    let tasks = crate::commands::tasks::read_task_rows(&toy.tasks_file)?;
    let suite = ctx.suite_required()?;
    let repo = ctx
        .repo(&suite)?
        .context("the toy suite names its repository")?;
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
    if args.no_run {
        println!(
            "next: perfarena -C {} run --candidates {}",
            toy.dir.display(),
            candidate_args(&toy).join(" ")
        );
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
    println!("report: {}", report.display());
    Ok(ExitCode::SUCCESS)
}

fn candidate_args(toy: &crate::toy::ToyProject) -> Vec<String> {
    toy.candidates
        .iter()
        .map(|(name, path)| format!("{name}={}", path.display()))
        .collect()
}
