//! Renderers of the report model: Markdown and JSON. They format; every number comes from
//! [`perfarena_core::analysis::ReportModel`].

mod markdown;

pub use markdown::markdown;

use perfarena_core::analysis::ReportModel;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot serialise the report: {0}")]
    Json(#[from] serde_json::Error),
}

/// The report as pretty JSON (schema: docs/report-schema.md; `version` names it).
pub fn json(model: &ReportModel) -> Result<String, RenderError> {
    Ok(serde_json::to_string_pretty(model)?)
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
