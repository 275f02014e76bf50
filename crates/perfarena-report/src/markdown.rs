//! The Markdown report.

use std::fmt::Write as _;

use perfarena_core::analysis::{ReportModel, TaskReport};
use perfarena_core::stats::Direction;

use crate::{fmt_num, fmt_pct};

pub fn markdown(model: &ReportModel) -> String {
    let mut out = String::new();
    let direction = match model.direction {
        Direction::Higher => "higher is better",
        Direction::Lower => "lower is better",
    };
    let _ = writeln!(out, "# perfarena report — {}\n", model.suite);
    let _ = writeln!(out, "Primary metric: `{}` ({direction}). Report format version {}.", model.primary_metric, model.version);
    if !model.runs.is_empty() {
        let _ = writeln!(out, "Runs: {}.", model.runs.join(", "));
    }
    let _ = writeln!(out);
    for task in &model.tasks {
        task_section(&mut out, task, &model.primary_metric);
    }
    if model.tasks.is_empty() {
        let _ = writeln!(out, "No tasks.");
    }
    out
}

fn task_section(out: &mut String, task: &TaskReport, primary: &str) {
    let subject = task.task.subject.as_deref().unwrap_or("");
    let _ = writeln!(out, "## {} {}\n", task.task.short_id(), subject);
    let parent = task.task.parent.as_ref().map(|p| p.short(12).to_string()).unwrap_or_else(|| "?".into());
    let model = task.model.as_deref().unwrap_or("unknown");
    let _ = write!(out, "Parent `{parent}`, model `{model}`, benchmark `{}`", task.task.bench_kind().as_str());
    if let Some(url) = &task.task.pr_url {
        let _ = write!(out, ", [PR]({url})");
    }
    let _ = writeln!(out, ".\n");
    if task.variants.is_empty() {
        let _ = writeln!(out, "No attempts yet.\n");
        return;
    }
    let _ = writeln!(out, "| variant | status | ok / attempts | median `{primary}` | vs baseline | note |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for v in &task.variants {
        let median = v.median.map(fmt_num).unwrap_or_else(|| "—".into());
        let change = v.change_vs_baseline_pct.map(fmt_pct).unwrap_or_else(|| "—".into());
        let mut note = v.message.clone().unwrap_or_default().lines().next().unwrap_or("").to_string();
        if note.chars().count() > 120 {
            note = note.chars().take(117).collect::<String>() + "…";
        }
        if let Some(failure) = &v.failure {
            note = format!("{} ({}) {note}", failure.kind, failure.signature);
        }
        if v.provenance != "measured" {
            note = format!("[{}] {note}", v.provenance);
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} / {} | {median} | {change} | {} |",
            v.variant,
            v.status,
            v.n_ok,
            v.n_attempts,
            note.replace('|', "\\|")
        );
    }
    if !task.comparisons.is_empty() {
        let _ = writeln!(out, "\n| comparison | verdict | change | 95 % CI | n | p (Holm) |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for c in &task.comparisons {
            let cmp = &c.comparison;
            let change = cmp.change_pct().map(fmt_pct).unwrap_or_else(|| "—".into());
            let ci = match (cmp.ci_low, cmp.ci_high) {
                (Some(lo), Some(hi)) => format!("[{}, {}]", fmt_pct((lo - 1.0) * 100.0), fmt_pct((hi - 1.0) * 100.0)),
                _ => "—".into(),
            };
            let p = cmp.p_adjusted.map(|p| format!("{p:.3}")).unwrap_or_else(|| "—".into());
            let _ = writeln!(
                out,
                "| {} vs {} | **{}** | {change} | {ci} | {} vs {} | {p} |",
                c.treatment,
                c.control,
                cmp.verdict.as_str(),
                cmp.n_treatment,
                cmp.n_control
            );
        }
    }
    let _ = writeln!(out);
}
