//! `perfarena results import`: earlier pipelines' per-commit results as imported attempts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};

use perfarena_core::import::RowError;
use perfarena_core::import_results::{MetricMap, import_results};
use perfarena_core::triage::Triage;

use super::input_files::{LogRoots, read_rows};
use crate::context::Ctx;

#[derive(clap::Subcommand, Debug)]
pub enum ResultsCommand {
    /// Import result rows (JSONL, JSON or Parquet; one row per task × variant × repetition).
    Import(ImportArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Result files (the row shape is in docs/import.md).
    #[arg(required = true)]
    files: Vec<std::path::PathBuf>,
    /// Name of where the rows come from, shown in reports (default: the file's name).
    #[arg(long)]
    source: Option<String>,
    /// Import nothing if any row is bad.
    #[arg(long)]
    strict: bool,
    /// A directory the rows' `log` paths may point into, besides the results file's own
    /// directory (repeatable). Logs elsewhere are not read: the row is imported with a warning.
    #[arg(long = "logs-root", value_name = "DIR")]
    logs_roots: Vec<PathBuf>,
    /// Record the metric OLD as NEW (repeatable), for names perfarena does not map itself
    /// (docs/import.md lists the ones it does).
    #[arg(long = "map", value_name = "OLD=NEW")]
    map: Vec<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, command: &ResultsCommand) -> Result<ExitCode> {
    match command {
        ResultsCommand::Import(args) => import(ctx, args),
    }
}

fn import(ctx: &Ctx, args: &ImportArgs) -> Result<ExitCode> {
    let _lock = ctx.lock_store()?;
    let suite = ctx.suite()?;
    let triage = Triage::new(&suite.triage.rules)?;
    let mut store = ctx.store()?;
    let tasks = store.tasks()?;
    if tasks.is_empty() {
        bail!(
            "no tasks in the store: import the task list first (`perfarena tasks import FILE`); result rows name their task by commit"
        );
    }
    let log_roots = LogRoots::new(&args.logs_roots)?;
    let map = MetricMap::parse(&args.map).map_err(anyhow::Error::msg)?;
    let mut attempts = Vec::new();
    let mut errors: Vec<RowError> = Vec::new();
    let mut notes = Vec::new();
    for file in &args.files {
        let read = read_rows(file)?;
        errors.extend(read.errors);
        let source = match &args.source {
            Some(source) => source.clone(),
            None => file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.display().to_string()),
        };
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let out = import_results(&read.rows, &tasks, &triage, &source, &map, &mut |path| {
            log_roots.read(&base, path)
        });
        attempts.extend(out.attempts);
        errors.extend(out.errors);
        notes.extend(out.notes);
    }
    if args.strict && !errors.is_empty() {
        for error in &errors {
            eprintln!("error: {error}");
        }
        eprintln!(
            "nothing imported (--strict): fix the rows or drop --strict to import the good ones"
        );
        return Ok(ExitCode::FAILURE);
    }
    let counts = store.insert_imported_attempts(&attempts)?;
    let failed = attempts.iter().filter(|a| !a.status.is_ok()).count();
    if args.json {
        let json = serde_json::json!({
            "rows": attempts.len() + errors.len(),
            "imported": counts.added,
            "already_imported": counts.unchanged,
            "failed_attempts": failed,
            "skipped": errors.iter().map(|e| serde_json::json!({
                "location": e.loc.to_string(), "field": e.field, "message": e.message,
            })).collect::<Vec<_>>(),
            "notes": notes,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for note in &notes {
            eprintln!("warning: {note}");
        }
        println!(
            "imported {} attempt(s) ({} failed, triaged); {} already imported; skipped {} row(s)",
            counts.added,
            failed,
            counts.unchanged,
            errors.len()
        );
        for error in &errors {
            eprintln!("skipped: {error}");
        }
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
