//! The `perfarena` command line: argument parsing and dispatch. Each command lives in
//! `commands/<name>.rs`; progress and human output live only in this crate.

#[cfg(test)]
mod cli_checks;
mod commands;
mod context;
mod docker_setup;
mod progress;
mod slurm_setup;
mod toy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::context::Ctx;

/// Tells, with evidence, whether a code change made a program faster.
#[derive(Parser, Debug)]
#[command(name = "perfarena", version, about, long_about = None)]
struct Cli {
    /// Project directory: where perfarena.toml and the .perfarena store live (default: the
    /// current directory; for `demo`, where to create the demo project).
    #[arg(short = 'C', long = "dir", global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The suite file (default: perfarena.toml in the project directory).
    #[arg(long, global = true)]
    suite: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a commented perfarena.toml to start from.
    Init(commands::init::InitArgs),
    /// Import and list tasks (optimisation commits).
    #[command(subcommand)]
    Tasks(commands::tasks::TasksCommand),
    /// Benchmark the variants of the tasks.
    Run(commands::run::RunArgs),
    /// Every failed attempt with its class, signature and evidence, and who is to blame per task.
    Triage(commands::triage::TriageArgs),
    /// Show the logs of one attempt.
    Logs(commands::logs::LogsArgs),
    /// Write the report (Markdown, JSON, HTML with charts, or CSV of attempts).
    Report(commands::report::ReportArgs),
    /// Create the toy example, run it on the local backend and write its report (offline).
    Demo(commands::demo::DemoArgs),
    /// Parse benchmark logs into metrics.
    Parse(commands::parse::ParseArgs),
    /// Check perfarena's own methods on synthetic data with known truth.
    Selftest(commands::selftest::SelftestArgs),
    /// Image status (local engine, registry) and builds (retry ladder, candidates, push).
    #[command(subcommand)]
    Images(commands::images::ImagesCommand),
    /// Import earlier pipelines' results (per commit and variant) as imported attempts.
    #[command(subcommand)]
    Results(commands::results::ResultsCommand),
    /// Import soft-judge labels (same / related / different / no_optimization) for quadrants.
    #[command(subcommand)]
    Judge(commands::judge::JudgeCommand),
    /// Per task: category, finding, evidence, recoverability; per candidate: outcomes.
    Analyze(commands::analyze::AnalyzeArgs),
}

/// Lets a closed stdout end the process quietly, as it ends `cat` (the default action of
/// SIGPIPE, which Rust's runtime ignores so that a write fails instead). Commands that only
/// read and print call it at once (`perfarena report | head -1`); long work (`run`, `images
/// build`, `demo`) keeps writing past a closed stdout and calls it only when its work is
/// recorded.
pub fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to its default, before any handler of ours runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let long_work = matches!(
        &cli.command,
        Command::Run(_)
            | Command::Demo(_)
            | Command::Images(commands::images::ImagesCommand::Build(_))
    );
    if !long_work {
        restore_sigpipe();
    }
    let ctx = Ctx::new(
        cli.dir.as_deref().unwrap_or(Path::new(".")),
        cli.suite.as_deref(),
    );
    let result = match &cli.command {
        Command::Init(args) => commands::init::run(&ctx, args),
        Command::Tasks(command) => commands::tasks::run(&ctx, command),
        Command::Run(args) => commands::run::run(&ctx, args),
        Command::Report(args) => commands::report::run(&ctx, args),
        Command::Triage(args) => commands::triage::run(&ctx, args),
        Command::Logs(args) => commands::logs::run(&ctx, args),
        Command::Demo(args) => commands::demo::run(cli.dir.as_deref(), cli.suite.as_deref(), args),
        Command::Parse(args) => commands::parse::run(args),
        Command::Selftest(args) => commands::selftest::run(args),
        Command::Images(command) => commands::images::run(&ctx, command),
        Command::Results(command) => commands::results::run(&ctx, command),
        Command::Judge(command) => commands::judge::run(&ctx, command),
        Command::Analyze(args) => commands::analyze::run(&ctx, args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            progress::note(&format!("error: {err:#}"));
            ExitCode::FAILURE
        }
    }
}
