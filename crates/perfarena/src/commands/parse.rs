//! `perfarena parse`: benchmark logs (or JSON result files) in, metrics out — a summary per file,
//! or with `--json` one JSON object per line. Exit code 0 when every file gave a result.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::builder::PossibleValuesParser;
use serde::Serialize;

use perfarena_core::parse::{
    CustomPattern, FORMATS, FormatChoice, MetricValue, ParsedMetrics, parse_log,
    validate_custom_patterns,
};

#[derive(clap::Args, Debug)]
pub struct ParseArgs {
    /// Format of the logs: `auto` detects the benchmark and its era (names in docs/parsers.md).
    #[arg(long, default_value = "auto", value_parser = format_names())]
    pub format: String,
    /// Print one JSON object per file (one per line) instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Also read metrics with this regex; each named capture is a metric
    /// (e.g. `took (?P<latency_s>[0-9.]+) s`). Repeatable.
    #[arg(long = "custom", value_name = "REGEX")]
    pub custom: Vec<String>,
    /// Benchmark logs or JSON result files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

fn format_names() -> PossibleValuesParser {
    PossibleValuesParser::new(std::iter::once("auto").chain(FORMATS.iter().copied()))
}

/// One file's result, as printed by `--json` (a stable schema: other tools read it).
#[derive(Debug, Serialize)]
struct FileReport {
    file: String,
    /// The recognised format; `null` when nothing was recognised or the file was unreadable.
    format: Option<String>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<BTreeMap<String, MetricValue>>,
    /// Why there is no result: what is missing, or why the file could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    warnings: Vec<String>,
}

pub fn run(args: &ParseArgs) -> Result<ExitCode> {
    let choice = FormatChoice::from_name(&args.format)?;
    let custom: Vec<CustomPattern> = args
        .custom
        .iter()
        .map(|regex| CustomPattern {
            regex: regex.clone(),
            units: BTreeMap::new(),
        })
        .collect();
    validate_custom_patterns(&custom).context("invalid --custom pattern")?;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut all_ok = true;
    for path in &args.files {
        let report = parse_file(path, &choice, &custom);
        all_ok &= report.ok;
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
        } else {
            write_summary(&mut out, &report)?;
        }
    }
    out.flush()?;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn parse_file(path: &Path, choice: &FormatChoice, custom: &[CustomPattern]) -> FileReport {
    let file = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            return FileReport {
                error: Some(format!("cannot read {file}: {error}")),
                file,
                format: None,
                ok: false,
                metrics: None,
                warnings: Vec::new(),
            };
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut lossy_warning = None;
    if matches!(text, std::borrow::Cow::Owned(_)) {
        lossy_warning =
            Some("the file is not valid UTF-8; invalid bytes were replaced".to_string());
    }
    match parse_log(&text, choice, custom) {
        Ok(ParsedMetrics {
            format,
            metrics,
            mut warnings,
        }) => {
            warnings.extend(lossy_warning);
            FileReport {
                file,
                format: Some(format),
                ok: true,
                metrics: Some(metrics),
                error: None,
                warnings,
            }
        }
        Err(error) => FileReport {
            file,
            format: error.format().map(str::to_string),
            ok: false,
            metrics: None,
            error: Some(error.to_string()),
            warnings: lossy_warning.into_iter().collect(),
        },
    }
}

/// `FILE: format`, then one `key  value` line per metric and one line per warning.
fn write_summary(out: &mut impl std::io::Write, report: &FileReport) -> std::io::Result<()> {
    match (&report.metrics, &report.error) {
        (Some(metrics), _) => {
            writeln!(
                out,
                "{}: {}",
                report.file,
                report.format.as_deref().unwrap_or("?")
            )?;
            let rows = summary_rows(metrics);
            let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
            for (key, value) in rows {
                writeln!(out, "  {key:<width$}  {value}")?;
            }
        }
        (None, error) => {
            writeln!(
                out,
                "{}: error: {}",
                report.file,
                error.as_deref().unwrap_or("no result")
            )?;
        }
    }
    for warning in &report.warnings {
        writeln!(out, "  warning: {warning}")?;
    }
    Ok(())
}

/// `(key, value)` for display: groups as `group.stat`, nulls shown as `null`.
fn summary_rows(metrics: &BTreeMap<String, MetricValue>) -> Vec<(String, String)> {
    let show =
        |value: &Option<f64>| value.map_or_else(|| "null".to_string(), |value| value.to_string());
    let mut rows = Vec::new();
    for (key, value) in metrics {
        match value {
            MetricValue::Number(number) => rows.push((key.clone(), show(number))),
            MetricValue::Group(stats) => {
                for (stat, number) in stats {
                    rows.push((format!("{key}.{stat}"), show(number)));
                }
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_files_name_the_file() {
        let report = parse_file(
            Path::new("/nonexistent/bench.log"),
            &FormatChoice::Auto,
            &[],
        );
        assert!(!report.ok);
        assert!(
            report
                .error
                .unwrap()
                .starts_with("cannot read /nonexistent/bench.log: ")
        );
    }

    #[test]
    fn json_report_keys_in_contract_order() {
        let report = FileReport {
            file: "a.log".into(),
            format: Some("vllm-serving-table".into()),
            ok: true,
            metrics: Some(BTreeMap::from([(
                "successful_requests".to_string(),
                MetricValue::Number(Some(100.0)),
            )])),
            error: None,
            warnings: vec![],
        };
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"file":"a.log","format":"vllm-serving-table","ok":true,"metrics":{"successful_requests":100},"warnings":[]}"#
        );
    }

    #[test]
    fn summary_shows_groups_and_nulls() {
        let metrics = BTreeMap::from([
            (
                "ttft_ms".to_string(),
                MetricValue::Group(BTreeMap::from([("p99".to_string(), None)])),
            ),
            ("duration_s".to_string(), MetricValue::Number(Some(2.5))),
        ]);
        let rows = summary_rows(&metrics);
        assert_eq!(
            rows,
            vec![
                ("duration_s".into(), "2.5".into()),
                ("ttft_ms.p99".into(), "null".into())
            ]
        );
    }
}
