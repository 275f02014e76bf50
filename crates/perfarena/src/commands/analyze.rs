//! `perfarena analyze`: per task its category, finding, evidence and recoverability, and per
//! candidate its outcome against the human change and the baseline — over whatever the store
//! holds, measured or imported (no repository, registry or GPU needed).

use std::process::ExitCode;

use anyhow::{Result, bail};

use perfarena_core::VariantKind;
use perfarena_core::categorize::{
    NoDataAs, Outcome, Quadrant, StatusInput, StatusModel, TaskStatus, hard_from_judge_note,
    status_model,
};
use perfarena_store::Store;

use crate::context::Ctx;

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Print the analysis as JSON (`perfarena_core::categorize::StatusModel`, `version` field).
    #[arg(long)]
    pub json: bool,
    /// Also show the old status reports' rule: medians compared with a fixed ±PCT % band. On by
    /// itself (at 2 %) when the data has one value per variant.
    #[arg(long, value_name = "PCT")]
    pub legacy_threshold: Option<f64>,
    /// How quadrant pairs without a label or a hard outcome count: `undetermined` (left out of
    /// the counts) or `q4` (a missing half fails, as published tables that count them as
    /// failures do).
    #[arg(long, value_name = "undetermined|q4", default_value = "undetermined")]
    pub no_data_as: NoDataAs,
}

/// The status model of everything in the store.
pub fn build(
    ctx: &Ctx,
    store: &Store,
    legacy_threshold_pct: Option<f64>,
    no_data_as: NoDataAs,
) -> Result<StatusModel> {
    let suite = ctx.suite()?;
    let tasks = store.tasks()?;
    let attempts = store.attempts(&Default::default())?;
    let images = store.image_availability()?;
    let listings = store.image_listings()?;
    let labels = store.judge_labels()?;
    Ok(status_model(&StatusInput {
        suite: &suite,
        tasks: &tasks,
        attempts: &attempts,
        images: &images,
        listings: &listings,
        labels: &labels,
        legacy_threshold_pct,
        no_data_as,
    }))
}

pub fn run(ctx: &Ctx, args: &AnalyzeArgs) -> Result<ExitCode> {
    if let Some(pct) = args.legacy_threshold
        && !(pct.is_finite() && pct >= 0.0)
    {
        bail!("--legacy-threshold {pct}: expected a percentage >= 0, e.g. 2 for ±2 %");
    }
    let store = Store::open_existing(&ctx.state_dir)?;
    let model = build(ctx, &store, args.legacy_threshold, args.no_data_as)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&model)?);
    } else {
        print!("{}", text(&model));
    }
    Ok(ExitCode::SUCCESS)
}

fn recoverable(task: &TaskStatus) -> &'static str {
    match &task.recoverability {
        None => "—",
        Some(r) if r.recoverable => "yes",
        Some(_) => "no",
    }
}

/// The terminal view: one block per task, then the outcome tables and recommendations.
fn text(model: &StatusModel) -> String {
    let mut out = String::new();
    let p = &model.provenance;
    out.push_str(&format!(
        "{} task(s); attempts: {} measured, {} imported",
        model.summary.n_tasks, p.measured_attempts, p.imported_attempts
    ));
    if !p.import_sources.is_empty() {
        out.push_str(&format!(" (from {})", p.import_sources.join(", ")));
    }
    out.push('\n');
    if !model.image_sources.is_empty() {
        out.push_str(&format!(
            "image availability from: {}\n",
            model.image_sources.join(", ")
        ));
    }
    if let Some(legacy) = &model.legacy {
        out.push_str(&format!("legacy view: {}\n", legacy.reason));
    }
    out.push('\n');
    for task in &model.tasks {
        out.push_str(&format!(
            "{}  {:<26} {:<22} recoverable: {:<3}  model: {}\n",
            task.short,
            task.category.as_str(),
            task.finding.as_str(),
            recoverable(task),
            task.model.as_deref().unwrap_or("unknown")
        ));
        out.push_str(&format!("    category: {}\n", task.category_reason));
        if task.finding_reason != task.category_reason {
            out.push_str(&format!("    finding: {}\n", task.finding_reason));
        }
        for evidence in &task.evidence {
            let variant = evidence
                .variant
                .as_ref()
                .map(|v| format!("{v}: "))
                .unwrap_or_default();
            let signature = evidence
                .signature
                .as_deref()
                .map(|s| format!("[{s}] "))
                .unwrap_or_default();
            let what = evidence
                .image
                .as_deref()
                .or(evidence.line.as_deref())
                .unwrap_or("");
            out.push_str(&format!("    evidence: {variant}{signature}{what}\n"));
        }
        if let Some(r) = &task.recoverability {
            out.push_str(&format!("    to recover: {}\n", r.summary));
        }
        for c in &task.candidates {
            // The statistical outcome, and the legacy rule's beside it when that view is on.
            let show = |o: Option<Outcome>, legacy: Option<Outcome>, control: VariantKind| {
                let shown = o.map(|o| o.label(&control)).unwrap_or_else(|| "—".into());
                match legacy {
                    Some(l) => format!("{shown} (legacy: {})", l.label(&control)),
                    None => shown,
                }
            };
            out.push_str(&format!(
                "    candidate:{}: vs human {}, vs baseline {}{}\n",
                c.candidate,
                show(c.vs_human, c.legacy_vs_human, VariantKind::Human),
                show(c.vs_baseline, c.legacy_vs_baseline, VariantKind::Baseline),
                c.quadrant
                    .map(|q| format!(", {}", q.label()))
                    .unwrap_or_default()
            ));
        }
    }
    if !model.outcomes.is_empty() {
        out.push_str(
            "\noutcomes over complete tasks (count, % of the tasks the candidate ran on):\n",
        );
        for table in &model.outcomes {
            let cells: Vec<String> = Outcome::ALL
                .iter()
                .map(|o| {
                    format!(
                        "{} {} ({:.1} %)",
                        o.label(&table.control),
                        table.counts[o],
                        table.percent[o]
                    )
                })
                .collect();
            out.push_str(&format!(
                "  candidate:{} vs {} ({} tasks): {}\n",
                table.candidate,
                table.control,
                table.total,
                cells.join(", ")
            ));
            if let Some(legacy) = &table.legacy_counts {
                let cells: Vec<String> = Outcome::ALL
                    .iter()
                    .map(|o| format!("{} {}", o.label(&table.control), legacy[o]))
                    .collect();
                out.push_str(&format!("    legacy rule: {}\n", cells.join(", ")));
            }
        }
    }
    if !model.quadrants.is_empty() {
        out.push_str("\nquadrants (soft judge × hard outcome vs human):\n");
        for table in &model.quadrants {
            let cells: Vec<String> = Quadrant::ALL
                .iter()
                .map(|q| format!("{} {}", q.label(), table.counts[q]))
                .collect();
            let repository = table
                .repository
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  candidate:{}{repository}: {}; undetermined {}, unlabelled {}\n",
                table.candidate,
                cells.join(", "),
                table.undetermined,
                table.unlabelled
            ));
        }
        out.push_str(&format!("  {}\n", model.quadrant_convention.describe()));
        let from_judge = model.quadrants.iter().map(|t| t.hard_from_judge).sum();
        if let Some(note) = hard_from_judge_note(from_judge) {
            out.push_str(&format!("  {note}\n"));
        }
    }
    if !model.recommendations.is_empty() {
        out.push_str("\nrecommendations:\n");
        for r in &model.recommendations {
            out.push_str(&format!(
                "  - {} ({} task(s)): {}\n",
                r.title,
                r.tasks.len(),
                r.items.join(", ")
            ));
        }
    }
    out
}
