//! The `perfarena` command line: argument parsing and dispatch. Each command lives in
//! `commands/<name>.rs`; progress and human output live only in this crate.

mod commands;
mod context;
mod progress;
mod runner;
mod toy;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::context::Ctx;

/// Tells, with evidence, whether a code change made a program faster.
#[derive(Parser, Debug)]
#[command(name = "perfarena", version, about, long_about = None)]
struct Cli {
    /// Project directory: where perfarena.toml and the .perfarena store live.
    #[arg(short = 'C', long = "dir", global = true, default_value = ".")]
    dir: PathBuf,
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
    /// Write the report (Markdown or JSON).
    Report(commands::report::ReportArgs),
    /// Create the toy example, run it on the local backend and write its report (offline).
    Demo(commands::demo::DemoArgs),
    /// Parse benchmark logs into metrics.
    Parse(commands::parse::ParseArgs),
    /// Check perfarena's own methods on synthetic data with known truth.
    Selftest(commands::selftest::SelftestArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx::new(&cli.dir, cli.suite.as_deref());
    let result = match &cli.command {
        Command::Init(args) => commands::init::run(&ctx, args),
        Command::Tasks(command) => commands::tasks::run(&ctx, command),
        Command::Run(args) => commands::run::run(&ctx, args),
        Command::Report(args) => commands::report::run(&ctx, args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Parse(args) => commands::parse::run(args),
        Command::Selftest(args) => commands::selftest::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
