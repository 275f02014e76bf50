//! `perfarena judge import`: soft-judge labels (did the candidate target the human change's
//! bottleneck?) for the quadrants of `perfarena analyze`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use perfarena_core::import_results::{import_labels, json_of_js_assignment};

use super::input_files::{read_rows, read_text};
use crate::context::Ctx;

#[derive(clap::Subcommand, Debug)]
pub enum JudgeCommand {
    /// Import judge rows: JSON/JSONL rows `{"commit", "candidate", "label", "hard",
    /// "approach"}` in perfarena's or the published vocabularies, or the published commit
    /// explorer's data (`.js`); see docs/import.md.
    Import(ImportArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    #[arg(required = true)]
    files: Vec<std::path::PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, command: &JudgeCommand) -> Result<ExitCode> {
    match command {
        JudgeCommand::Import(args) => import(ctx, args),
    }
}

fn import(ctx: &Ctx, args: &ImportArgs) -> Result<ExitCode> {
    let _lock = ctx.lock_store()?;
    let mut store = ctx.store()?;
    let tasks = store.tasks()?;
    if tasks.is_empty() {
        bail!("no tasks in the store: import the task list first (`perfarena tasks import FILE`)");
    }
    let mut labels = Vec::new();
    let mut errors = Vec::new();
    for file in &args.files {
        let read = if file.extension().is_some_and(|e| e == "js") {
            // The published commit explorer's data: a JavaScript literal, read as JSON.
            let text = read_text(file)?;
            let json = json_of_js_assignment(&text).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: expected `window.NAME = {{…}};` (a published judge data file) or JSON",
                    file.display()
                )
            })?;
            perfarena_core::import::read_rows(&file.display().to_string(), json.as_bytes())?
        } else {
            read_rows(file)?
        };
        let (file_labels, file_errors) =
            import_labels(&read.rows, &tasks, &file.display().to_string());
        labels.extend(file_labels);
        errors.extend(read.errors);
        errors.extend(file_errors);
    }
    let counts = store.upsert_judge_labels(&labels)?;
    if args.json {
        let json = serde_json::json!({
            "added": counts.added,
            "changed": counts.changed,
            "unchanged": counts.unchanged,
            "skipped": errors.iter().map(|e| serde_json::json!({
                "location": e.loc.to_string(), "field": e.field, "message": e.message,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!(
            "imported {} label(s) ({} new, {} changed, {} unchanged); skipped {} row(s)",
            labels.len(),
            counts.added,
            counts.changed,
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
