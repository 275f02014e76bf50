//! `perfarena logs TASK VARIANT [ATTEMPT]`: the logs of one attempt (server, client, and the
//! variant's preparation logs), by task commit prefix, variant and round.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use perfarena_core::VariantKind;
use perfarena_core::import::find_task;
use perfarena_store::{AttemptFilter, Store};

use crate::context::Ctx;

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The task: a commit prefix.
    pub task: String,
    /// `baseline`, `human`, `candidate:<name>` (or just the candidate's name).
    pub variant: String,
    /// The round (default: the most recent attempt of this variant).
    pub attempt: Option<u32>,
    /// Only this run (default: the most recent run with such an attempt).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Which log: `server`, `client` or `all`.
    #[arg(long, default_value = "all", value_parser = ["all", "server", "client"])]
    pub stream: String,
    /// Only the last N lines of each log.
    #[arg(long)]
    pub tail: Option<usize>,
}

pub fn run(ctx: &Ctx, args: &LogsArgs) -> Result<ExitCode> {
    let store = Store::open_existing(&ctx.state_dir)?;
    let tasks = store.tasks()?;
    let task = find_task(&tasks, &args.task).with_context(|| format!("task {:?}", args.task))?;
    let variant: VariantKind = match args.variant.parse() {
        Ok(v) => v,
        Err(_) => format!("candidate:{}", args.variant)
            .parse()
            .with_context(|| format!("variant {:?}", args.variant))?,
    };
    let attempts = store.attempts(&AttemptFilter {
        run_id: args.run_id.clone(),
        task: Some(task.commit.clone()),
        variant: Some(variant.clone()),
    })?;
    let attempt = attempts
        .iter()
        .rev()
        .find(|a| args.attempt.is_none_or(|round| a.round_idx == round))
        .with_context(|| match args.attempt {
            Some(round) => format!(
                "no attempt of {} {variant} in round {round}",
                task.short_id()
            ),
            None => format!("no attempt of {} {variant} in the store", task.short_id()),
        })?;
    println!(
        "== {} {variant} round {} ({}, run {}){}",
        task.short_id(),
        attempt.round_idx,
        attempt.status,
        attempt.run_id.as_deref().unwrap_or("-"),
        if attempt.message.is_empty() {
            String::new()
        } else {
            format!(": {}", attempt.message.lines().next().unwrap_or(""))
        }
    );
    if let Some(source) = attempt.provenance.source() {
        let named = attempt.metadata.get("log").and_then(|l| l.as_str());
        bail!(
            "attempt {} was imported from {source}: perfarena keeps no logs of imported rows{}",
            attempt.id,
            named
                .map(|l| format!(" (its row named {l}, read once at import to triage it)"))
                .unwrap_or_default()
        );
    }
    let Some(log_dir) = attempt.log_dir.as_deref() else {
        bail!(
            "attempt {} has no logs (it failed before anything ran)",
            attempt.id
        );
    };
    // Logs live under the state directory; a stored path that would leave it is not followed.
    let relative = Path::new(log_dir);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        bail!(
            "attempt {} names logs outside the project's state directory ({log_dir}): not read",
            attempt.id
        );
    }
    let path = ctx.state_dir.join(relative);
    let mut files: Vec<PathBuf> = Vec::new();
    if path.is_file() {
        files.push(path.clone());
    } else {
        let wanted: &[&str] = match args.stream.as_str() {
            "server" => &["server.log"],
            "client" => &["client.log"],
            _ => &["server.log", "client.log"],
        };
        files.extend(
            wanted
                .iter()
                .map(|name| path.join(name))
                .filter(|p| p.exists()),
        );
        // The variant's preparation log sits one level up.
        if args.stream == "all" {
            if let Some(setup) = path
                .parent()
                .map(|p| p.join("setup.log"))
                .filter(|p| p.exists())
            {
                files.insert(0, setup);
            }
        }
    }
    if files.is_empty() {
        bail!("no log files in {}", path.display());
    }
    for file in files {
        print_log(&file, args.tail)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_log(file: &Path, tail: Option<usize>) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let from = tail.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
    println!(
        "-- {} ({} lines{})",
        file.display(),
        lines.len(),
        if from > 0 {
            format!(", last {}", lines.len() - from)
        } else {
            String::new()
        }
    );
    for line in &lines[from..] {
        println!("{line}");
    }
    Ok(())
}
