//! `perfarena report`: the report over the store as Markdown, JSON, HTML (inline SVG charts) or
//! CSV of every attempt and sample. `docs/reports.md` describes each format.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use perfarena_core::Suite;
use perfarena_core::attempt::AttemptRecord;
use perfarena_core::categorize::{NoDataAs, StatusInput};
use perfarena_core::report::{ReportModel, report_model};
use perfarena_store::{AttemptFilter, Store};

use crate::context::Ctx;

/// The formats `--format` accepts, with their file extensions.
const FORMATS: [(&str, &str); 4] = [
    ("md", "md"),
    ("json", "json"),
    ("html", "html"),
    ("csv", "csv"),
];

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Output format: md (status report), json (versioned schema, docs/report-schema.md), html
    /// (one static file with charts) or csv (every attempt × metric).
    #[arg(long, default_value = "md", value_parser = ["md", "json", "html", "csv"])]
    pub format: String,
    /// Only attempts of this run (default: every attempt in the store).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Write `report.<format>` into this directory instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also show the old status reports' rule: medians compared with a fixed ±PCT % band
    /// (e.g. 2), beside the statistical verdicts.
    #[arg(long, value_name = "PCT")]
    pub legacy_threshold: Option<f64>,
    /// How quadrant pairs without a label or a hard outcome count: `undetermined` or `q4`
    /// (see `perfarena analyze --help`); the report names the convention.
    #[arg(long, value_name = "undetermined|q4", default_value = "undetermined")]
    pub no_data_as: NoDataAs,
}

/// The report model of the store's tasks and attempts (optionally one run's).
pub fn build_model(suite: &Suite, store: &Store, run_id: Option<&str>) -> Result<ReportModel> {
    build_model_with(suite, store, run_id, None, NoDataAs::Undetermined)
}

/// [`build_model`] with the legacy view at `legacy_threshold_pct` percent.
pub fn build_model_with(
    suite: &Suite,
    store: &Store,
    run_id: Option<&str>,
    legacy_threshold_pct: Option<f64>,
    no_data_as: NoDataAs,
) -> Result<ReportModel> {
    let tasks = store.tasks()?;
    let attempts = attempts(store, run_id)?;
    let runs = match run_id {
        Some(id) => vec![id.to_string()],
        None => {
            let mut runs: Vec<String> = attempts.iter().filter_map(|a| a.run_id.clone()).collect();
            runs.sort();
            runs.dedup();
            runs
        }
    };
    let shown: Vec<_> = tasks
        .into_iter()
        .filter(|t| run_id.is_none() || attempts.iter().any(|a| a.task == t.commit))
        .collect();
    let images = store.image_availability()?;
    // Complete registry listings (`images import`): refs they lack are missing.
    let listings = store.image_listings()?;
    let labels = store.judge_labels()?;
    let input = StatusInput {
        suite,
        tasks: &shown,
        attempts: &attempts,
        images: &images,
        listings: &listings,
        labels: &labels,
        legacy_threshold_pct,
        no_data_as,
    };
    Ok(report_model(&input, runs))
}

fn attempts(store: &Store, run_id: Option<&str>) -> Result<Vec<AttemptRecord>> {
    let attempts = store.attempts(&AttemptFilter {
        run_id: run_id.map(str::to_string),
        ..Default::default()
    })?;
    if let Some(id) = run_id {
        if attempts.is_empty() && store.run(id)?.is_none() {
            bail!(
                "no run {id} in the store; `perfarena report` without --run-id reports every attempt"
            );
        }
    }
    Ok(attempts)
}

/// Renders the model as Markdown, JSON or HTML (CSV is of attempts: see [`run`]).
pub fn render(model: &ReportModel, format: &str) -> Result<String> {
    Ok(match format {
        "json" => perfarena_report::json(model)?,
        "html" => perfarena_report::html(model)?,
        "md" => perfarena_report::markdown(model),
        other => bail!("--format {other}: the report model renders as md, json or html"),
    })
}

pub fn run(ctx: &Ctx, args: &ReportArgs) -> Result<ExitCode> {
    if let Some(pct) = args.legacy_threshold {
        if !(pct.is_finite() && pct >= 0.0) {
            bail!("--legacy-threshold {pct}: expected a percentage >= 0, e.g. 2 for ±2 %");
        }
    }
    let suite = ctx.suite()?;
    let store = Store::open_existing(&ctx.state_dir)?;
    let text = if args.format == "csv" {
        perfarena_report::attempts_csv(&attempts(&store, args.run_id.as_deref())?)
    } else {
        let model = build_model_with(
            &suite,
            &store,
            args.run_id.as_deref(),
            args.legacy_threshold,
            args.no_data_as,
        )?;
        render(&model, &args.format)?
    };
    match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let extension = FORMATS
                .iter()
                .find(|(f, _)| *f == args.format)
                .map(|(_, e)| *e)
                .unwrap_or("txt");
            let path = dir.join(format!("report.{extension}"));
            // Write beside and rename, so a reader never sees half a report.
            let partial = dir.join(format!(".report.{extension}.partial"));
            std::fs::write(&partial, text)
                .with_context(|| format!("cannot write {}", partial.display()))?;
            std::fs::rename(&partial, &path)
                .with_context(|| format!("cannot write {}", path.display()))?;
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
        let category = task
            .status
            .as_ref()
            .map(|s| s.category.as_str())
            .unwrap_or("");
        println!(
            "{} {} [{category}]",
            task.measured.task.short_id(),
            task.measured.task.subject.as_deref().unwrap_or("")
        );
        for v in &task.measured.variants {
            let median = v
                .median
                .map(perfarena_report::fmt_num)
                .unwrap_or_else(|| "—".into());
            let change = v
                .change_vs_baseline_pct
                .map(perfarena_report::fmt_pct)
                .unwrap_or_default();
            let verdict = task
                .measured
                .comparisons
                .iter()
                .find(|c| {
                    c.treatment == v.variant && c.control == perfarena_core::VariantKind::Baseline
                })
                .map(|c| c.verdict_label())
                .unwrap_or_default();
            println!(
                "  {:<24} {:<13} {:>2}/{:<2} {:>10} {:>9} {verdict}",
                v.variant.to_string(),
                v.status.as_str(),
                v.n_ok,
                v.n_attempts,
                median,
                change
            );
        }
    }
    Ok(())
}
