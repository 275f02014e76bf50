//! `perfarena tasks import|list`.

use std::process::ExitCode;

use anyhow::Result;

use perfarena_core::import::{self, CommitResolver, NoRepository};

use super::input_files::{read_bytes, read_rows};

use crate::context::{Ctx, now};

#[derive(clap::Subcommand, Debug)]
pub enum TasksCommand {
    /// Import tasks from JSONL, JSON (array or object of rows) or Parquet files.
    Import(ImportArgs),
    /// List the imported tasks.
    List(ListArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Task files.
    #[arg(required = true)]
    files: Vec<std::path::PathBuf>,
    /// Files mapping commit → parent (a JSON object, or rows with commit/parent).
    #[arg(long = "mapping")]
    mappings: Vec<std::path::PathBuf>,
    /// Stop at the first bad row and import nothing.
    #[arg(long)]
    strict: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, command: &TasksCommand) -> Result<ExitCode> {
    match command {
        TasksCommand::Import(args) => import_cmd(ctx, args),
        TasksCommand::List(args) => list(ctx, args),
    }
}

fn import_cmd(ctx: &Ctx, args: &ImportArgs) -> Result<ExitCode> {
    let _lock = ctx.lock_store()?;
    let suite = ctx.suite()?;
    let repo = ctx.repo(&suite)?;
    let resolver: &dyn CommitResolver = match &repo {
        Some(repo) => repo,
        None => &NoRepository,
    };
    let mut rows = Vec::new();
    let mut bad_lines = Vec::new();
    for file in &args.files {
        let read = read_rows(file)?;
        rows.extend(read.rows);
        bad_lines.extend(read.errors);
    }
    let mut mappings = Vec::new();
    for file in &args.mappings {
        let bytes = read_bytes(file)?;
        mappings.extend(import::read_mapping(&file.display().to_string(), &bytes)?);
    }
    let mut store = ctx.store()?;
    let existing = store.tasks()?;
    let mut outcome = import::import_tasks(&rows, &mappings, resolver, &existing);
    outcome.errors.splice(0..0, bad_lines);
    if args.strict {
        if let Some(first) = outcome.errors.first() {
            eprintln!("error: {first}");
            eprintln!(
                "nothing imported (--strict); fix the row or drop --strict to import the good rows"
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let source = args
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    store.upgrade_task_commits(&outcome.upgrades)?;
    store.upsert_tasks(&outcome.tasks, &source, &now())?;
    if args.json {
        let json = serde_json::json!({
            "imported": outcome.tasks.len(),
            "unchanged": outcome.unchanged,
            "skipped": outcome.errors.iter().map(|e| serde_json::json!({
                "location": e.loc.to_string(), "field": e.field, "message": e.message,
            })).collect::<Vec<_>>(),
            "notes": outcome.notes,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for note in &outcome.notes {
            eprintln!("note: {note}");
        }
        println!(
            "imported {} task(s) ({} new or changed, {} unchanged); skipped {} row(s)",
            outcome.tasks.len() + outcome.unchanged,
            outcome.tasks.len(),
            outcome.unchanged,
            outcome.errors.len()
        );
        for error in &outcome.errors {
            eprintln!("skipped: {error}");
        }
    }
    Ok(if outcome.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn list(ctx: &Ctx, args: &ListArgs) -> Result<ExitCode> {
    let store = ctx.store()?;
    let tasks = store.tasks()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&tasks)?);
        return Ok(ExitCode::SUCCESS);
    }
    if tasks.is_empty() {
        println!("no tasks: import some with `perfarena tasks import FILE`");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12}  {:<12}  {:<10}  {:<28}  subject",
        "commit", "parent", "kind", "model"
    );
    for task in &tasks {
        println!(
            "{:<12}  {:<12}  {:<10}  {:<28}  {}",
            task.short_id(),
            task.parent.as_ref().map(|p| p.short(12)).unwrap_or("?"),
            task.bench_kind().as_str(),
            task.model().unwrap_or_else(|| "?".into()),
            task.subject.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
