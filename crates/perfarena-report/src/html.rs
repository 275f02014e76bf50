//! The HTML report: one static file with inline CSS and inline SVG charts (no script, no
//! network), readable offline and printable. Same sections as the Markdown report.

use std::fmt::Write as _;

use perfarena_core::analysis::DeltaSource;
use perfarena_core::categorize::{Category, Outcome, Quadrant, TaskStatus};
use perfarena_core::report::{ReportModel, TaskReport};

use crate::charts::{
    css_color, distribution, forest_plot, outcome_bars, outcome_color, verdict_color,
};
use crate::{RenderError, ci_pct, direction_text, fmt_num, fmt_pct, truncate};

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{margin-top:24px}p.meta{color:#555;margin:2px 0}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f8}td.num{text-align:right;font-variant-numeric:tabular-nums}td.ref{overflow-wrap:anywhere;max-width:360px}
code{font-size:13px;background:#f4f6f8;padding:0 3px;border-radius:3px}
figure.chart{margin:8px 0 16px;overflow-x:auto}figure.chart svg{display:block;max-width:100%;height:auto}
figcaption{color:#555;font-size:13px;margin-top:4px}
.verdict{font-weight:600}.warn{color:#b35900}.legend span{display:inline-block;margin-right:14px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
";

pub fn html(model: &ReportModel) -> Result<String, RenderError> {
    let mut out = String::new();
    let title = format!("perfarena report — {}", model.suite);
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
    );
    let _ = writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    );
    let _ = writeln!(
        out,
        "<meta name=\"generator\" content=\"perfarena report format {}\">",
        model.version
    );
    let _ = writeln!(
        out,
        "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        esc(&title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", esc(&title));
    header(&mut out, model);
    summary(&mut out, model);
    effects(&mut out, model)?;
    outcomes(&mut out, model)?;
    categories(&mut out, model);
    findings(&mut out, model);
    recommendations(&mut out, model);
    let _ = writeln!(out, "<section id=\"tasks\">\n<h2>Tasks</h2>");
    if model.tasks.is_empty() {
        let _ = writeln!(out, "<p>No tasks.</p>");
    }
    for task in &model.tasks {
        task_section(&mut out, task, model)?;
    }
    let _ = writeln!(out, "</section>\n</body>\n</html>");
    Ok(out)
}

/// Text made safe for HTML text and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A link only for http(s) URLs; anything else is shown as text.
fn link(url: &str, text: &str) -> String {
    if url.starts_with("https://") || url.starts_with("http://") {
        format!("<a href=\"{}\">{}</a>", esc(url), esc(text))
    } else {
        esc(url)
    }
}

fn header(out: &mut String, model: &ReportModel) {
    let delta = if model.delta == 0.0 {
        "δ from each baseline's measured noise".to_string()
    } else {
        format!("δ = ±{} %", fmt_num(model.delta * 100.0))
    };
    let _ = writeln!(
        out,
        "<p class=\"meta\">Primary metric <code>{}</code> ({}). {:.0} % intervals on log ratios, Holm-corrected per task; {}. Report format version {}.</p>",
        esc(&model.primary_metric),
        direction_text(model.direction),
        model.confidence * 100.0,
        esc(&delta),
        model.version
    );
    if !model.runs.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"meta\">Runs: {}.</p>",
            esc(&model.runs.join(", "))
        );
    }
    let p = &model.provenance;
    let sources = if p.import_sources.is_empty() {
        String::new()
    } else {
        format!(" (from {})", p.import_sources.join(", "))
    };
    let _ = writeln!(
        out,
        "<p class=\"meta\">Attempts: {} measured, {} imported{}.</p>",
        p.measured_attempts,
        p.imported_attempts,
        esc(&sources)
    );
    if let Some(legacy) = &model.legacy {
        let _ = writeln!(
            out,
            "<p class=\"meta\">Legacy view (±{} %): {}.</p>",
            legacy.threshold_pct,
            esc(&legacy.reason)
        );
    }
}

fn summary(out: &mut String, model: &ReportModel) {
    let s = &model.summary;
    let count = |c: Category| s.categories.get(&c).copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "<section id=\"summary\">\n<h2>Executive summary</h2>\n<table>"
    );
    let row = |out: &mut String, name: String, value: String| {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td class=\"num\">{}</td></tr>",
            esc(&name),
            esc(&value)
        );
    };
    row(out, "tasks".into(), s.n_tasks.to_string());
    row(
        out,
        format!("complete {}-way (every candidate measured)", s.n_way),
        s.complete_n_way.to_string(),
    );
    for category in Category::ALL {
        row(
            out,
            category.as_str().replace('_', " "),
            count(category).to_string(),
        );
    }
    let images = |c: &perfarena_core::categorize::PresenceCounts| {
        format!(
            "{} present, {} missing, {} unknown",
            c.present, c.missing, c.unknown
        )
    };
    row(out, "baseline images".into(), images(&s.baseline_images));
    row(out, "human images".into(), images(&s.human_images));
    row(out, "recoverable".into(), s.recoverable.to_string());
    row(out, "not recoverable".into(), s.not_recoverable.to_string());
    row(
        out,
        "candidate failures (human worked)".into(),
        s.candidate_crashes.to_string(),
    );
    let _ = writeln!(out, "</table>\n</section>");
}

fn figure(out: &mut String, kind: &str, svg: &str, caption: &str) {
    let _ = writeln!(
        out,
        "<figure class=\"chart\" data-chart=\"{kind}\">\n{svg}\n<figcaption>{}</figcaption>\n</figure>",
        esc(caption)
    );
}

fn effects(out: &mut String, model: &ReportModel) -> Result<(), RenderError> {
    let _ = writeln!(out, "<section id=\"effects\">\n<h2>Effects</h2>");
    match forest_plot(model)? {
        Some(svg) => {
            figure(
                out,
                "forest",
                &svg,
                "Each comparison's change of the primary metric (dot) with its Holm-adjusted confidence interval (bar); the shaded band is ±δ. Green better, red worse, blue equivalent, grey inconclusive.",
            );
        }
        None => {
            let _ = writeln!(out, "<p>No comparison has an estimate yet.</p>");
        }
    }
    let _ = writeln!(out, "</section>");
    Ok(())
}

fn outcomes(out: &mut String, model: &ReportModel) -> Result<(), RenderError> {
    let _ = writeln!(out, "<section id=\"outcomes\">\n<h2>Outcome summary</h2>");
    if let Some(svg) = outcome_bars(model)? {
        figure(
            out,
            "outcomes",
            &svg,
            "Outcome of each candidate on the usable tasks, against the human change and against the baseline.",
        );
    }
    if model.outcomes.is_empty() {
        let _ = writeln!(out, "<p>No candidates.</p>");
    } else {
        let _ = write!(
            out,
            "<table>\n<tr><th>candidate</th><th>vs</th><th>tasks</th>"
        );
        for outcome in Outcome::ALL {
            let _ = write!(
                out,
                "<th><span class=\"swatch\" style=\"background:{}\"></span>{}</th>",
                css_color(outcome_color(outcome)),
                esc(&outcome.as_str().replace('_', " "))
            );
        }
        let _ = writeln!(out, "</tr>");
        for table in &model.outcomes {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td>",
                esc(table.candidate.as_str()),
                table.control,
                table.total
            );
            for outcome in Outcome::ALL {
                let n = table.counts.get(&outcome).copied().unwrap_or(0);
                let pct = table.percent.get(&outcome).copied().unwrap_or(0.0);
                let _ = write!(out, "<td class=\"num\">{n} ({pct:.1} %)</td>");
            }
            let _ = writeln!(out, "</tr>");
            if let Some(counts) = &table.legacy_counts {
                let threshold = model
                    .legacy
                    .as_ref()
                    .map(|l| l.threshold_pct)
                    .unwrap_or(0.0);
                let _ = write!(
                    out,
                    "<tr><td>{} (legacy ±{threshold} %)</td><td>{}</td><td class=\"num\">{}</td>",
                    esc(table.candidate.as_str()),
                    table.control,
                    table.total
                );
                for outcome in Outcome::ALL {
                    let _ = write!(
                        out,
                        "<td class=\"num\">{}</td>",
                        counts.get(&outcome).copied().unwrap_or(0)
                    );
                }
                let _ = writeln!(out, "</tr>");
            }
        }
        let _ = writeln!(out, "</table>");
    }
    if !model.quadrants.is_empty() {
        let _ = write!(out, "<h3>Quadrants</h3>\n<table>\n<tr><th>candidate</th>");
        for quadrant in Quadrant::ALL {
            let _ = write!(out, "<th>{}</th>", quadrant.label());
        }
        let _ = writeln!(out, "<th>undetermined</th><th>unlabelled</th></tr>");
        for table in &model.quadrants {
            let name = match &table.repository {
                Some(repository) => format!("{} ({repository})", table.candidate),
                None => table.candidate.to_string(),
            };
            let _ = write!(out, "<tr><td>{}</td>", esc(&name));
            for quadrant in Quadrant::ALL {
                let _ = write!(
                    out,
                    "<td class=\"num\">{}</td>",
                    table.counts.get(&quadrant).copied().unwrap_or(0)
                );
            }
            let _ = writeln!(
                out,
                "<td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                table.undetermined, table.unlabelled
            );
        }
        let _ = writeln!(out, "</table>");
        let _ = writeln!(out, "<p>{}</p>", esc(model.quadrant_convention.describe()));
        let from_judge = model.quadrants.iter().map(|t| t.hard_from_judge).sum();
        if let Some(note) = perfarena_core::categorize::hard_from_judge_note(from_judge) {
            let _ = writeln!(out, "<p>{}</p>", esc(&note));
        }
    }
    let _ = writeln!(out, "</section>");
    Ok(())
}

fn statuses(model: &ReportModel) -> impl Iterator<Item = &TaskStatus> {
    model.tasks.iter().filter_map(|t| t.status.as_ref())
}

fn categories(out: &mut String, model: &ReportModel) {
    let _ = writeln!(out, "<section id=\"categories\">\n<h2>Categories</h2>");
    let _ = writeln!(
        out,
        "<table>\n<tr><th>commit</th><th>category</th><th>PR</th><th>model</th><th>benchmark</th><th>reason</th></tr>"
    );
    for category in Category::ALL {
        for status in statuses(model).filter(|s| s.category == category) {
            let pr = status
                .pr_url
                .as_deref()
                .map(|u| link(u, "PR"))
                .unwrap_or_else(|| "—".into());
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code> {}</td><td>{}</td><td>{pr}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&status.short),
                esc(status.subject.as_deref().unwrap_or("")),
                category.as_str(),
                esc(status.model.as_deref().unwrap_or("unknown")),
                status.bench_kind.as_str(),
                esc(&status.category_reason)
            );
        }
    }
    let _ = writeln!(out, "</table>\n</section>");
    let _ = writeln!(out, "<section id=\"images\">\n<h2>Image availability</h2>");
    let _ = writeln!(
        out,
        "<table>\n<tr><th>commit</th><th>baseline</th><th>human</th><th>baseline image</th><th>human image</th></tr>"
    );
    for status in statuses(model) {
        let presence = |i: &perfarena_core::categorize::VariantImage| match &i.source {
            Some(source) => format!("{} ({})", i.presence, esc(source)),
            None => i.presence.to_string(),
        };
        let image = |i: &perfarena_core::categorize::VariantImage| {
            i.image_ref
                .as_deref()
                .map(|r| format!("<code>{}</code>", esc(r)))
                .unwrap_or_else(|| "—".into())
        };
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"ref\">{}</td><td class=\"ref\">{}</td></tr>",
            esc(&status.short),
            presence(&status.images.baseline),
            presence(&status.images.human),
            image(&status.images.baseline),
            image(&status.images.human)
        );
    }
    let _ = writeln!(out, "</table>\n</section>");
}

fn findings(out: &mut String, model: &ReportModel) {
    let _ = writeln!(
        out,
        "<section id=\"findings\">\n<h2>Key findings</h2>\n<ul>"
    );
    let mut any = false;
    for status in
        statuses(model).filter(|s| s.finding != perfarena_core::categorize::Finding::Working)
    {
        any = true;
        let _ = writeln!(
            out,
            "<li><code>{}</code> <strong>{}</strong>: {}</li>",
            esc(&status.short),
            status.finding.as_str().replace('_', " "),
            esc(&status.finding_reason)
        );
    }
    for task in &model.tasks {
        for v in task
            .measured
            .variants
            .iter()
            .filter(|v| !v.harness_paths.is_empty())
        {
            any = true;
            let _ = writeln!(
                out,
                "<li class=\"warn\"><code>{}</code> {} touches the benchmark harness: {}</li>",
                esc(task.measured.task.short_id()),
                esc(&v.variant.to_string()),
                esc(&v.harness_paths.join(", "))
            );
        }
    }
    if !any {
        let _ = writeln!(out, "<li>Nothing to report: every task worked.</li>");
    }
    let _ = writeln!(out, "</ul>\n</section>");
}

fn recommendations(out: &mut String, model: &ReportModel) {
    let _ = writeln!(
        out,
        "<section id=\"recommendations\">\n<h2>Recommendations</h2>"
    );
    if model.recommendations.is_empty() {
        let _ = writeln!(out, "<p>None: no task needs a recovery step.</p>");
    } else {
        let _ = writeln!(out, "<ol>");
        for rec in &model.recommendations {
            let _ = write!(
                out,
                "<li><strong>{}</strong> (unblocks {}: {})<ul>",
                esc(&rec.title),
                rec.tasks.len(),
                esc(&rec.tasks.join(", "))
            );
            for item in &rec.items {
                let _ = write!(out, "<li>{}</li>", esc(item));
            }
            let _ = writeln!(out, "</ul></li>");
        }
        let _ = writeln!(out, "</ol>");
    }
    let _ = writeln!(out, "</section>");
}

fn task_section(
    out: &mut String,
    task: &TaskReport,
    model: &ReportModel,
) -> Result<(), RenderError> {
    let short = task.measured.task.short_id();
    let _ = writeln!(out, "<article id=\"task-{}\">", esc(short));
    let _ = writeln!(
        out,
        "<h3><code>{}</code> {}</h3>",
        esc(short),
        esc(task.measured.task.subject.as_deref().unwrap_or(""))
    );
    let mut meta = Vec::new();
    if let Some(status) = &task.status {
        meta.push(format!(
            "category <strong>{}</strong>: {}",
            status.category,
            esc(&status.category_reason)
        ));
        if let Some(r) = &status.recoverability {
            meta.push(format!(
                "{}: {}",
                if r.recoverable {
                    "recoverable"
                } else {
                    "not recoverable"
                },
                esc(&r.summary)
            ));
        }
    }
    let source = match task.measured.delta_source {
        DeltaSource::Suite => "suite",
        DeltaSource::Noise => "measured baseline noise",
    };
    meta.push(format!(
        "δ = ±{} % ({source})",
        fmt_num(task.measured.delta * 100.0)
    ));
    if let Some(url) = &task.measured.task.pr_url {
        meta.push(link(url, "pull request"));
    }
    let _ = writeln!(out, "<p class=\"meta\">{}</p>", meta.join(" · "));
    if task.measured.variants.is_empty() {
        let _ = writeln!(out, "<p>No attempts yet.</p></article>");
        return Ok(());
    }
    let _ = writeln!(
        out,
        "<table>\n<tr><th>variant</th><th>status</th><th>ok / attempts</th><th>warm-ups</th><th>median {}</th><th>vs baseline</th><th>provenance</th><th>note</th></tr>",
        esc(&model.primary_metric)
    );
    for v in &task.measured.variants {
        let mut note = String::new();
        if !v.harness_paths.is_empty() {
            let _ = write!(
                note,
                "<span class=\"warn\">touches the harness: {}</span> ",
                esc(&v.harness_paths.join(", "))
            );
        }
        if let Some(failure) = &v.failure {
            let _ = write!(
                note,
                "{} (<code>{}</code>) ",
                failure.kind,
                esc(&failure.signature)
            );
        }
        if let Some(message) = &v.message {
            note.push_str(&esc(&truncate(message.lines().next().unwrap_or(""), 160)));
        }
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{note}</td></tr>",
            esc(&v.variant.to_string()),
            v.status,
            v.n_ok,
            v.n_attempts,
            v.n_warmup,
            v.median.map(fmt_num).unwrap_or_else(|| "—".into()),
            v.change_vs_baseline_pct
                .map(fmt_pct)
                .unwrap_or_else(|| "—".into()),
            esc(&v.provenance)
        );
    }
    let _ = writeln!(out, "</table>");
    if !task.measured.comparisons.is_empty() {
        let _ = write!(
            out,
            "<table>\n<tr><th>comparison</th><th>verdict</th><th>change</th><th>interval</th><th>n</th><th>p (Holm)</th>"
        );
        if model.legacy.is_some() {
            let _ = write!(out, "<th>legacy</th>");
        }
        let _ = writeln!(out, "</tr>");
        for c in &task.measured.comparisons {
            let cmp = &c.comparison;
            let ci = match (cmp.ci_low, cmp.ci_high) {
                (Some(lo), Some(hi)) => {
                    format!("{} ({:.1} %)", ci_pct(lo, hi), cmp.confidence * 100.0)
                }
                _ => "—".into(),
            };
            let _ = write!(
                out,
                "<tr><td>{} vs {}</td><td class=\"verdict\" style=\"color:{}\" title=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} vs {}</td><td class=\"num\">{}</td>",
                esc(&c.treatment.to_string()),
                esc(&c.control.to_string()),
                css_color(verdict_color(c.verdict)),
                esc(&cmp.explanation),
                esc(&c.verdict_label()),
                cmp.change_pct().map(fmt_pct).unwrap_or_else(|| "—".into()),
                ci,
                cmp.n_treatment,
                cmp.n_control,
                cmp.p_adjusted
                    .map(|p| format!("{p:.3}"))
                    .unwrap_or_else(|| "—".into())
            );
            if model.legacy.is_some() {
                let _ = write!(
                    out,
                    "<td>{}</td>",
                    c.legacy.map(|v| v.as_str()).unwrap_or("—")
                );
            }
            let _ = writeln!(out, "</tr>");
        }
        let _ = writeln!(out, "</table>");
    }
    if let Some(svg) = distribution(task, &model.primary_metric)? {
        figure(
            out,
            "distribution",
            &svg,
            &format!(
                "{short}: each attempt's {} per variant, with median and quartiles.",
                model.primary_metric
            ),
        );
    }
    let _ = writeln!(out, "</article>");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_links() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            link("https://github.com/x/y/pull/1", "PR"),
            "<a href=\"https://github.com/x/y/pull/1\">PR</a>"
        );
        assert_eq!(link("javascript:alert(1)", "PR"), "javascript:alert(1)");
    }
}
