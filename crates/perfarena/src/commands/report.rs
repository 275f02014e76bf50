//! `perfarena report`: the report over the store (Markdown or JSON).

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use perfarena_core::analysis::{report_model, AnalysisSettings, ReportModel};
use perfarena_core::stats::StatsConfig;
use perfarena_core::Suite;
use perfarena_store::{AttemptFilter, Store};

use crate::context::Ctx;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Output format.
    #[arg(long, default_value = "md", value_parser = ["md", "json"])]
    pub format: String,
    /// Only attempts of this run (default: every attempt in the store).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Write `report.<format>` into this directory instead of printing it.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// The report model of the store's tasks and attempts (optionally one run's).
pub fn build_model(suite: &Suite, store: &Store, run_id: Option<&str>) -> Result<ReportModel> {
    let tasks = store.tasks()?;
    let attempts = store.attempts(&AttemptFilter { run_id: run_id.map(str::to_string), ..Default::default() })?;
    let settings = AnalysisSettings {
        primary: suite.metric.primary.clone(),
        direction: suite.metric.direction,
        stats: StatsConfig { confidence: suite.stats.confidence, delta: suite.stats.delta, ..StatsConfig::default() },
    };
    let runs = match run_id {
        Some(id) => vec![id.to_string()],
        None => {
            let mut runs: Vec<String> = attempts.iter().filter_map(|a| a.run_id.clone()).collect();
            runs.sort();
            runs.dedup();
            runs
        }
    };
    let shown: Vec<_> = tasks.into_iter().filter(|t| run_id.is_none() || attempts.iter().any(|a| a.task == t.commit)).collect();
    Ok(report_model(&suite.suite.name, runs, &shown, &attempts, &settings))
}

pub fn render(model: &ReportModel, format: &str) -> Result<String> {
    Ok(match format {
        "json" => perfarena_report::json(model)?,
        _ => perfarena_report::markdown(model),
    })
}

pub fn run(ctx: &Ctx, args: &ReportArgs) -> Result<ExitCode> {
    let suite = ctx.suite()?;
    let store = Store::open_existing(&ctx.state_dir)?;
    let model = build_model(&suite, &store, args.run_id.as_deref())?;
    let text = render(&model, &args.format)?;
    match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join(format!("report.{}", args.format));
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            println!("{}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A short table for the end of `perfarena run`.
pub fn print_summary(suite: &Suite, store: &Store, run_id: Option<&str>) -> Result<()> {
    let model = build_model(suite, store, run_id)?;
    for task in &model.tasks {
        println!("{} {}", task.task.short_id(), task.task.subject.as_deref().unwrap_or(""));
        for v in &task.variants {
            let median = v.median.map(perfarena_report::fmt_num).unwrap_or_else(|| "—".into());
            let change = v.change_vs_baseline_pct.map(perfarena_report::fmt_pct).unwrap_or_default();
            let verdict = task
                .comparisons
                .iter()
                .find(|c| c.treatment == v.variant && c.control == perfarena_core::VariantKind::Baseline)
                .map(|c| c.comparison.verdict.as_str())
                .unwrap_or("");
            println!("  {:<24} {:<13} {:>2}/{:<2} {:>10} {:>9} {verdict}", v.variant.to_string(), v.status.as_str(), v.n_ok, v.n_attempts, median, change);
        }
    }
    Ok(())
}
