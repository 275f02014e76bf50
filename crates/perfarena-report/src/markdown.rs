//! The Markdown report: the sections of the hand-written status reports (executive summary,
//! categories, image availability, key findings, outcomes, recommendations), then each task's
//! variants and comparisons. Every number and sentence comes from the model.

use std::fmt::Write as _;

use perfarena_core::categorize::{
    Category, Finding, Outcome, Quadrant, TaskStatus, hard_from_judge_note,
};
use perfarena_core::report::{ReportModel, TaskReport};

use crate::{cell, ci_pct, direction_text, fmt_num, fmt_pct, truncate};

pub fn markdown(model: &ReportModel) -> String {
    let mut out = String::new();
    header(&mut out, model);
    executive_summary(&mut out, model);
    categories(&mut out, model);
    image_availability(&mut out, model);
    key_findings(&mut out, model);
    outcome_summary(&mut out, model);
    recommendations(&mut out, model);
    let _ = writeln!(out, "## Tasks\n");
    if model.tasks.is_empty() {
        let _ = writeln!(out, "No tasks.\n");
    }
    for task in &model.tasks {
        task_section(&mut out, task, model);
    }
    out
}

fn header(out: &mut String, model: &ReportModel) {
    let _ = writeln!(out, "# perfarena report — {}\n", model.suite);
    let _ = writeln!(
        out,
        "Primary metric: `{}` ({}). Verdicts: {:.0} % confidence intervals on log ratios, Holm-corrected per task; {}. Report format version {}.",
        model.primary_metric,
        direction_text(model.direction),
        model.confidence * 100.0,
        delta_text(model.delta),
        model.version
    );
    if !model.runs.is_empty() {
        let _ = writeln!(out, "Runs: {}.", model.runs.join(", "));
    }
    let p = &model.provenance;
    let _ = write!(
        out,
        "Attempts: {} measured, {} imported",
        p.measured_attempts, p.imported_attempts
    );
    if !p.import_sources.is_empty() {
        let _ = write!(out, " (from {})", p.import_sources.join(", "));
    }
    let _ = writeln!(out, ".");
    if !model.image_sources.is_empty() {
        let _ = writeln!(
            out,
            "Image availability from: {}.",
            model.image_sources.join(", ")
        );
    }
    if let Some(legacy) = &model.legacy {
        let _ = writeln!(
            out,
            "Legacy view (±{} %): {}.",
            legacy.threshold_pct, legacy.reason
        );
    }
    let _ = writeln!(out);
}

fn delta_text(delta: f64) -> String {
    if delta == 0.0 {
        "equivalence margin δ from each baseline's measured noise".to_string()
    } else {
        format!("equivalence margin δ = ±{} %", fmt_num(delta * 100.0))
    }
}

fn executive_summary(out: &mut String, model: &ReportModel) {
    let s = &model.summary;
    let count = |c: Category| s.categories.get(&c).copied().unwrap_or(0);
    let _ = writeln!(out, "## Executive summary\n");
    let _ = writeln!(out, "| | count |");
    let _ = writeln!(out, "|---|---|");
    let _ = writeln!(out, "| tasks | {} |", s.n_tasks);
    let _ = writeln!(
        out,
        "| complete {}-way (baseline, human, {} candidate(s) all measured) | {} |",
        s.n_way,
        s.candidates.len(),
        s.complete_n_way
    );
    for category in Category::ALL {
        let _ = writeln!(
            out,
            "| category `{}` | {} |",
            category.as_str(),
            count(category)
        );
    }
    let images = |c: &perfarena_core::categorize::PresenceCounts| {
        format!(
            "{} present, {} missing, {} unknown",
            c.present, c.missing, c.unknown
        )
    };
    let _ = writeln!(out, "| baseline images | {} |", images(&s.baseline_images));
    let _ = writeln!(out, "| human images | {} |", images(&s.human_images));
    let _ = writeln!(
        out,
        "| recoverable (not complete, known steps) | {} |",
        s.recoverable
    );
    let _ = writeln!(out, "| not recoverable | {} |", s.not_recoverable);
    let _ = writeln!(
        out,
        "| candidate failures (candidate crashed where the human worked) | {} |",
        s.candidate_crashes
    );
    let _ = writeln!(out);
}

fn statuses(model: &ReportModel) -> impl Iterator<Item = (&TaskReport, &TaskStatus)> {
    model
        .tasks
        .iter()
        .filter_map(|t| t.status.as_ref().map(|s| (t, s)))
}

fn pr_link(status: &TaskStatus) -> String {
    match &status.pr_url {
        Some(url) => format!("[PR]({url})"),
        None => "—".into(),
    }
}

fn categories(out: &mut String, model: &ReportModel) {
    let _ = writeln!(out, "## Categories\n");
    let mut any = false;
    for category in Category::ALL {
        let tasks: Vec<&TaskStatus> = statuses(model)
            .map(|(_, s)| s)
            .filter(|s| s.category == category)
            .collect();
        if tasks.is_empty() {
            continue;
        }
        any = true;
        let _ = writeln!(out, "### {} ({})\n", category.as_str(), tasks.len());
        let _ = writeln!(out, "| commit | PR | model | benchmark | reason |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for status in tasks {
            let _ = writeln!(
                out,
                "| `{}` {} | {} | {} | {} | {} |",
                status.short,
                cell(status.subject.as_deref().unwrap_or("")),
                pr_link(status),
                status
                    .model
                    .as_deref()
                    .map(|m| format!("`{m}`"))
                    .unwrap_or_else(|| "unknown".into()),
                status.bench_kind.as_str(),
                cell(&status.category_reason)
            );
        }
        let _ = writeln!(out);
    }
    if !any {
        let _ = writeln!(out, "No tasks.\n");
    }
}

fn image_availability(out: &mut String, model: &ReportModel) {
    let _ = writeln!(out, "## Image availability\n");
    if model.tasks.is_empty() {
        let _ = writeln!(out, "No tasks.\n");
        return;
    }
    let _ = writeln!(
        out,
        "| commit | baseline | human | baseline image | human image | Recoverable? |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for (_, status) in statuses(model) {
        let image = |i: &perfarena_core::categorize::VariantImage| {
            i.image_ref
                .as_deref()
                .map(|r| format!("`{}`", cell(r)))
                .unwrap_or_else(|| "—".into())
        };
        let presence = |i: &perfarena_core::categorize::VariantImage| match &i.source {
            Some(source) => format!("{} ({})", i.presence, cell(source)),
            None => i.presence.to_string(),
        };
        let recoverable = match &status.recoverability {
            None => "—".to_string(),
            Some(r) => format!(
                "{}: {}",
                if r.recoverable { "yes" } else { "no" },
                cell(&r.summary)
            ),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {recoverable} |",
            status.short,
            presence(&status.images.baseline),
            presence(&status.images.human),
            image(&status.images.baseline),
            image(&status.images.human)
        );
    }
    let _ = writeln!(out);
}

/// The findings shown under "Key findings", in this order, with their headings.
const KEY_FINDINGS: [(Finding, &str); 9] = [
    (
        Finding::CandidateCrashed,
        "Candidate crashes where the human change worked",
    ),
    (Finding::HumanImageBroken, "Broken human images"),
    (Finding::MissingBaselineImage, "Missing baseline images"),
    (Finding::NoImages, "No images at all"),
    (Finding::BaselineFailed, "Baseline failed"),
    (Finding::HumanFailed, "Human change failed"),
    (Finding::BothFailed, "Human and candidates failed"),
    (
        Finding::CandidateInfraFailed,
        "Candidates stopped by infrastructure",
    ),
    (Finding::NotRun, "Not run yet"),
];

fn key_findings(out: &mut String, model: &ReportModel) {
    let _ = writeln!(out, "## Key findings\n");
    let mut any = false;
    for (finding, heading) in KEY_FINDINGS {
        let tasks: Vec<&TaskStatus> = statuses(model)
            .map(|(_, s)| s)
            .filter(|s| s.finding == finding)
            .collect();
        if tasks.is_empty() {
            continue;
        }
        any = true;
        let _ = writeln!(out, "### {heading} ({})\n", tasks.len());
        for status in tasks {
            let _ = writeln!(
                out,
                "- `{}` {}: {}",
                status.short,
                status.subject.as_deref().unwrap_or(""),
                one_line(&status.finding_reason)
            );
            for evidence in status
                .evidence
                .iter()
                .filter(|e| e.line.is_some() || e.image.is_some())
            {
                let variant = evidence
                    .variant
                    .as_ref()
                    .map(|v| format!("{v}: "))
                    .unwrap_or_default();
                let signature = evidence
                    .signature
                    .as_deref()
                    .map(|s| format!("`{s}` "))
                    .unwrap_or_default();
                let what = evidence
                    .line
                    .as_deref()
                    .or(evidence.image.as_deref())
                    .unwrap_or("");
                let _ = writeln!(
                    out,
                    "  - {variant}{signature}{}",
                    truncate(&one_line(what), 160)
                );
            }
        }
        let _ = writeln!(out);
    }
    let harness: Vec<String> = model
        .tasks
        .iter()
        .flat_map(|t| {
            t.measured
                .variants
                .iter()
                .filter(|v| !v.harness_paths.is_empty())
                .map(move |v| (t, v))
        })
        .map(|(t, v)| {
            format!(
                "- `{}` {}: touches {}",
                t.measured.task.short_id(),
                v.variant,
                v.harness_paths.join(", ")
            )
        })
        .collect();
    if !harness.is_empty() {
        any = true;
        let _ = writeln!(
            out,
            "### Patches that touch the benchmark harness ({})\n",
            harness.len()
        );
        let _ = writeln!(
            out,
            "Their numbers may measure an edited harness; check them before trusting a verdict.\n"
        );
        for line in harness {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
    }
    if !any {
        let _ = writeln!(out, "Nothing to report: every task worked.\n");
    }
}

fn outcome_summary(out: &mut String, model: &ReportModel) {
    let _ = writeln!(out, "## Outcome summary\n");
    if model.outcomes.is_empty() {
        let _ = writeln!(out, "No candidates.\n");
    } else {
        let _ = writeln!(
            out,
            "Over usable tasks (baseline and human measured); percentages of the tasks where the candidate has attempts.\n"
        );
        let mut controls: Vec<&perfarena_core::VariantKind> =
            model.outcomes.iter().map(|t| &t.control).collect();
        // Against the human change first, then against the baseline.
        controls.sort_by(|a, b| b.cmp(a));
        controls.dedup();
        for control in controls {
            let _ = write!(out, "| candidate | vs | tasks |");
            for outcome in Outcome::ALL {
                let _ = write!(out, " {} |", outcome.label(control));
            }
            let _ = writeln!(out);
            let _ = writeln!(out, "|---|---|---|{}", "---|".repeat(Outcome::ALL.len()));
            for table in model.outcomes.iter().filter(|t| &t.control == control) {
                let _ = write!(
                    out,
                    "| {} | {} | {} |",
                    table.candidate, table.control, table.total
                );
                for outcome in Outcome::ALL {
                    let n = table.counts.get(&outcome).copied().unwrap_or(0);
                    let pct = table.percent.get(&outcome).copied().unwrap_or(0.0);
                    let _ = write!(out, " {n} ({pct:.1} %) |");
                }
                let _ = writeln!(out);
                if let (Some(counts), Some(percent)) = (&table.legacy_counts, &table.legacy_percent)
                {
                    let threshold = model
                        .legacy
                        .as_ref()
                        .map(|l| l.threshold_pct)
                        .unwrap_or(0.0);
                    let _ = write!(
                        out,
                        "| {} (legacy ±{threshold} %) | {} | {} |",
                        table.candidate, table.control, table.total
                    );
                    for outcome in Outcome::ALL {
                        let n = counts.get(&outcome).copied().unwrap_or(0);
                        let pct = percent.get(&outcome).copied().unwrap_or(0.0);
                        let _ = write!(out, " {n} ({pct:.1} %) |");
                    }
                    let _ = writeln!(out);
                }
            }
            let _ = writeln!(out);
        }
    }
    if !model.quadrants.is_empty() {
        let _ = writeln!(out, "### Quadrants (soft judge × hard verdict vs human)\n");
        let _ = write!(out, "| candidate |");
        for quadrant in Quadrant::ALL {
            let _ = write!(out, " {} |", quadrant.label());
        }
        let _ = writeln!(out, " undetermined | unlabelled |");
        let _ = writeln!(out, "|---|{}---|---|", "---|".repeat(Quadrant::ALL.len()));
        for table in &model.quadrants {
            match &table.repository {
                Some(repository) => {
                    let _ = write!(out, "| {} ({repository}) |", table.candidate);
                }
                None => {
                    let _ = write!(out, "| {} |", table.candidate);
                }
            }
            for quadrant in Quadrant::ALL {
                let _ = write!(
                    out,
                    " {} |",
                    table.counts.get(&quadrant).copied().unwrap_or(0)
                );
            }
            let _ = writeln!(out, " {} | {} |", table.undetermined, table.unlabelled);
        }
        let _ = writeln!(out, "\n{}", model.quadrant_convention.describe());
        let from_judge = model.quadrants.iter().map(|t| t.hard_from_judge).sum();
        if let Some(note) = hard_from_judge_note(from_judge) {
            let _ = writeln!(out, "{note}");
        }
        let _ = writeln!(out);
    }
}

fn recommendations(out: &mut String, model: &ReportModel) {
    let _ = writeln!(out, "## Recommendations\n");
    if model.recommendations.is_empty() {
        let _ = writeln!(out, "None: no task needs a recovery step.\n");
        return;
    }
    for (idx, rec) in model.recommendations.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. **{}** (`{}`; unblocks {} task(s): {})",
            idx + 1,
            rec.title,
            rec.action,
            rec.tasks.len(),
            rec.tasks.join(", ")
        );
        for item in &rec.items {
            let _ = writeln!(out, "   - {}", one_line(item));
        }
    }
    let _ = writeln!(out);
}

fn task_section(out: &mut String, task: &TaskReport, model: &ReportModel) {
    let primary = &model.primary_metric;
    let subject = task.measured.task.subject.as_deref().unwrap_or("");
    let _ = writeln!(out, "### {} {}\n", task.measured.task.short_id(), subject);
    let parent = task
        .measured
        .task
        .parent
        .as_ref()
        .map(|p| p.short(12).to_string())
        .unwrap_or_else(|| "?".into());
    let model_name = task
        .status
        .as_ref()
        .and_then(|s| s.model.clone())
        .or_else(|| task.measured.model.clone());
    let _ = write!(
        out,
        "Parent `{parent}`, model `{}`, benchmark `{}`",
        model_name.as_deref().unwrap_or("unknown"),
        task.measured.task.bench_kind().as_str()
    );
    if let Some(url) = &task.measured.task.pr_url {
        let _ = write!(out, ", [PR]({url})");
    }
    let _ = writeln!(out, ".");
    if let Some(status) = &task.status {
        let _ = writeln!(
            out,
            "Category **{}**: {}",
            status.category,
            one_line(&status.category_reason)
        );
        if let Some(recoverability) = &status.recoverability {
            let word = if recoverability.recoverable {
                "recoverable"
            } else {
                "not recoverable"
            };
            let _ = writeln!(
                out,
                "Recoverability: {word} — {}",
                one_line(&recoverability.summary)
            );
        }
    }
    let delta_from = match task.measured.delta_source {
        perfarena_core::analysis::DeltaSource::Suite => "suite",
        perfarena_core::analysis::DeltaSource::Noise => "measured baseline noise",
    };
    let _ = writeln!(
        out,
        "δ = ±{} % ({delta_from}).\n",
        fmt_num(task.measured.delta * 100.0)
    );
    if task.measured.variants.is_empty() {
        let _ = writeln!(out, "No attempts yet.\n");
        return;
    }
    let _ = writeln!(
        out,
        "| variant | status | ok / attempts | warm-ups | median `{primary}` | vs baseline | note |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for v in &task.measured.variants {
        let median = v.median.map(fmt_num).unwrap_or_else(|| "—".into());
        let change = v
            .change_vs_baseline_pct
            .map(fmt_pct)
            .unwrap_or_else(|| "—".into());
        let mut note = truncate(
            v.message
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or(""),
            120,
        );
        if let Some(failure) = &v.failure {
            note = format!("{} ({}) {note}", failure.kind, failure.signature);
        }
        if v.provenance != "measured" {
            note = format!("[{}] {note}", v.provenance);
        }
        if !v.harness_paths.is_empty() {
            note = format!(
                "⚠ touches the harness ({}) {note}",
                v.harness_paths.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} / {} | {} | {median} | {change} | {} |",
            v.variant,
            v.status,
            v.n_ok,
            v.n_attempts,
            v.n_warmup,
            cell(note.trim())
        );
    }
    if !task.measured.comparisons.is_empty() {
        let legacy = model.legacy.as_ref().map(|l| l.threshold_pct);
        let _ = write!(
            out,
            "\n| comparison | verdict | change | CI | n | p (Holm) |"
        );
        if let Some(pct) = legacy {
            let _ = write!(out, " legacy ±{pct} % |");
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "|---|---|---|---|---|---|{}",
            if legacy.is_some() { "---|" } else { "" }
        );
        for c in &task.measured.comparisons {
            let cmp = &c.comparison;
            let change = cmp.change_pct().map(fmt_pct).unwrap_or_else(|| "—".into());
            let ci = match (cmp.ci_low, cmp.ci_high) {
                (Some(lo), Some(hi)) => {
                    format!("{} ({:.1} %)", ci_pct(lo, hi), cmp.confidence * 100.0)
                }
                _ => "—".into(),
            };
            let p = cmp
                .p_adjusted
                .map(|p| format!("{p:.3}"))
                .unwrap_or_else(|| "—".into());
            let _ = write!(
                out,
                "| {} vs {} | **{}** | {change} | {ci} | {} vs {} | {p} |",
                c.treatment,
                c.control,
                cell(&c.verdict_label()),
                cmp.n_treatment,
                cmp.n_control
            );
            if legacy.is_some() {
                let _ = write!(out, " {} |", c.legacy.map(|v| v.as_str()).unwrap_or("—"));
            }
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(out);
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
