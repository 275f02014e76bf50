//! Renderers of the report model: Markdown, JSON (versioned schema), HTML with inline SVG charts
//! and CSV of attempts. They format; every number comes from
//! [`perfarena_core::report::ReportModel`] (or, for CSV, from the attempt records).

mod charts;
mod csv;
mod html;
mod markdown;
pub mod schema;

pub use csv::{CSV_COLUMNS, attempts_csv};
pub use html::html;
pub use markdown::markdown;

use perfarena_core::report::ReportModel;
use perfarena_core::stats::Direction;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot serialise the report: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot draw chart `{chart}`: {message}")]
    Chart { chart: String, message: String },
}

/// The report as pretty JSON (schema: `docs/report-schema.json`, described in
/// `docs/report-schema.md`; `version` names it).
pub fn json(model: &ReportModel) -> Result<String, RenderError> {
    let mut text = serde_json::to_string_pretty(model)?;
    text.push('\n');
    Ok(text)
}

/// A number with a sensible precision for tables.
pub fn fmt_num(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

/// A signed percentage, e.g. `+12.3 %`.
pub fn fmt_pct(value: f64) -> String {
    format!("{value:+.1} %")
}

/// A ratio interval as percent changes, e.g. `[+1.2 %, +4.5 %]`.
pub(crate) fn ci_pct(low: f64, high: f64) -> String {
    format!(
        "[{}, {}]",
        fmt_pct((low - 1.0) * 100.0),
        fmt_pct((high - 1.0) * 100.0)
    )
}

pub(crate) fn direction_text(direction: Direction) -> &'static str {
    match direction {
        Direction::Higher => "higher is better",
        Direction::Lower => "lower is better",
    }
}

/// Text made safe for one Markdown table cell: one line, pipes escaped.
pub(crate) fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// At most `max` characters, with an ellipsis when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_string(),
    }
}
