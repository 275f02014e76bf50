//! Metric parsers: benchmark logs (`&str`) in, metrics out. Pure: no I/O.
//!
//! Every era of vLLM and SGLang benchmark output is recognised (see `docs/parsers.md` for the
//! format names and metric keys), plus suite-defined regex metrics. The rules that make a result
//! trustworthy live here: a block that was cut off (no closing line, a traceback inside it) is
//! never a result; with several complete blocks the last one is used and the result says so; a
//! traceback after the result, NaN/inf values and zero successful requests are warnings.
//!
//! Speed matters (logs of hundreds of MB): one pass finds the anchor strings of every format
//! (`anchors.rs`), and parsers only look at the lines around them, without copying the log.

mod anchors;
mod custom;
mod json;
mod metrics;
mod one_batch;
mod prints;
mod table;
mod text;
mod vocabulary;

pub use vocabulary::{
    FOREIGN_METRICS, METRIC_ALIASES, canonical_metric, foreign_metric, old_names,
};

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use anchors::Anchors;
use metrics::Builder;
use prints::PrintFormat;
use text::Span;

/// One metric: a number (`None` when the log said NaN/inf) or a group such as
/// `ttft_ms = {mean, median, p99}`.
///
/// Serialized as JSON numbers (whole numbers without a fraction, e.g. `100` requests) or an
/// object of them; `null` for a non-finite value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum MetricValue {
    Number(Option<f64>),
    Group(BTreeMap<String, Option<f64>>),
}

impl Serialize for MetricValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MetricValue::Number(value) => JsonNumber(*value).serialize(serializer),
            MetricValue::Group(stats) => {
                let mut map = serializer.serialize_map(Some(stats.len()))?;
                for (stat, value) in stats {
                    map.serialize_entry(stat, &JsonNumber(*value))?;
                }
                map.end()
            }
        }
    }
}

/// A metric value as JSON: whole numbers as integers (`100`, not `100.0`).
struct JsonNumber(Option<f64>);

impl Serialize for JsonNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(value) if value.is_finite() && value.fract() == 0.0 && value.abs() < 9.0e15 => {
                serializer.serialize_i64(value as i64)
            }
            Some(value) if value.is_finite() => serializer.serialize_f64(value),
            _ => serializer.serialize_none(),
        }
    }
}

/// What a parser found in one log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedMetrics {
    pub format: String,
    pub metrics: BTreeMap<String, MetricValue>,
    pub warnings: Vec<String>,
}

impl ParsedMetrics {
    /// Flat `(key, value)` pairs, groups as `group.stat` (e.g. `ttft_ms.mean`); nulls skipped.
    pub fn flatten(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for (key, value) in &self.metrics {
            match value {
                MetricValue::Number(Some(v)) => out.push((key.clone(), *v)),
                MetricValue::Number(None) => {}
                MetricValue::Group(group) => {
                    for (stat, v) in group {
                        if let Some(v) = v {
                            out.push((format!("{key}.{stat}"), *v));
                        }
                    }
                }
            }
        }
        out
    }
}

/// A metric defined by the suite: a regex whose named captures become metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// A regular expression with named captures, e.g. `took (?P<latency_s>[0-9.]+) s`.
    /// A capture named `group__stat` (e.g. `ttft_ms__p99`) fills a member of a group.
    pub regex: String,
    /// Units per capture name, for display.
    #[serde(default)]
    pub units: BTreeMap<String, String>,
}

/// Which parser to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatChoice {
    Auto,
    Named(String),
}

impl FormatChoice {
    /// `auto` or a name from [`FORMATS`]; anything else is [`ParseError::UnknownFormat`].
    pub fn from_name(name: &str) -> Result<Self, ParseError> {
        if name == "auto" {
            return Ok(FormatChoice::Auto);
        }
        match Format::from_name(name) {
            Some(_) => Ok(FormatChoice::Named(name.to_string())),
            None => Err(ParseError::UnknownFormat {
                name: name.to_string(),
            }),
        }
    }
}

/// Why a log yielded no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `--format` named no known format.
    #[error("unknown format `{name}`; known formats: auto, {}", FORMATS.join(", "))]
    UnknownFormat { name: String },
    /// No complete result: nothing recognisable, or only a cut-off block.
    #[error("{}", no_result_message(format.as_deref(), missing, crash.as_deref()))]
    NoResult {
        /// The format whose (incomplete) output was found, if any.
        format: Option<String>,
        /// What is missing, e.g. `the result table at line 42 has no closing `=` line`.
        missing: String,
        /// The exception line of a Python traceback in the log, e.g.
        /// `ModuleNotFoundError: No module named 'vllm._C'`.
        crash: Option<String>,
    },
    /// A suite's `[[metric.custom]]` pattern is unusable (numbered from 1).
    #[error("custom pattern #{index} (`{regex}`): {reason}")]
    InvalidCustomPattern {
        index: usize,
        regex: String,
        reason: String,
    },
    /// The file looked like a JSON result but is not valid JSON.
    #[error("invalid JSON result: {reason}")]
    InvalidJson { reason: String },
}

impl ParseError {
    /// The human-readable message (same as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The format the log was recognised as, when it was (a cut-off table still has a format).
    pub fn format(&self) -> Option<&str> {
        match self {
            ParseError::NoResult { format, .. } => format.as_deref(),
            _ => None,
        }
    }
}

fn no_result_message(format: Option<&str>, missing: &str, crash: Option<&str>) -> String {
    let mut message = match format {
        Some(format) => format!("no complete {format} result: {missing}"),
        None => format!("no benchmark result found: {missing}"),
    };
    if let Some(crash) = crash {
        message.push_str(&format!("; python traceback: {crash}"));
    }
    message
}

/// The known format names, for `--format` and the docs.
pub const FORMATS: &[&str] = &[
    "vllm-serving-table",
    "vllm-serving-lines",
    "vllm-serving-legacy",
    "vllm-serving-json",
    "vllm-latency",
    "vllm-latency-json",
    "vllm-throughput",
    "vllm-throughput-json",
    "sglang-serving-table",
    "sglang-serving-json",
    "sglang-one-batch",
    "custom",
];

/// The formats, as a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    VllmServingTable,
    VllmServingLines,
    VllmServingLegacy,
    VllmServingJson,
    VllmLatency,
    VllmLatencyJson,
    VllmThroughput,
    VllmThroughputJson,
    SglangServingTable,
    SglangServingJson,
    SglangOneBatch,
    Custom,
}

impl Format {
    const ALL: [Format; 12] = [
        Format::VllmServingTable,
        Format::VllmServingLines,
        Format::VllmServingLegacy,
        Format::VllmServingJson,
        Format::VllmLatency,
        Format::VllmLatencyJson,
        Format::VllmThroughput,
        Format::VllmThroughputJson,
        Format::SglangServingTable,
        Format::SglangServingJson,
        Format::SglangOneBatch,
        Format::Custom,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::VllmServingTable => "vllm-serving-table",
            Format::VllmServingLines => "vllm-serving-lines",
            Format::VllmServingLegacy => "vllm-serving-legacy",
            Format::VllmServingJson => "vllm-serving-json",
            Format::VllmLatency => "vllm-latency",
            Format::VllmLatencyJson => "vllm-latency-json",
            Format::VllmThroughput => "vllm-throughput",
            Format::VllmThroughputJson => "vllm-throughput-json",
            Format::SglangServingTable => "sglang-serving-table",
            Format::SglangServingJson => "sglang-serving-json",
            Format::SglangOneBatch => "sglang-one-batch",
            Format::Custom => "custom",
        }
    }

    fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.name() == name)
    }

    fn is_json(self) -> bool {
        matches!(
            self,
            Format::VllmServingJson
                | Format::SglangServingJson
                | Format::VllmLatencyJson
                | Format::VllmThroughputJson
        )
    }

    /// The text family that reads this format (none for JSON and custom).
    fn family(self) -> Option<Family> {
        match self {
            Format::VllmServingTable | Format::SglangServingTable => Some(Family::Table),
            Format::VllmServingLines => Some(Family::Prints(&prints::SERVING_LINES)),
            Format::VllmServingLegacy => Some(Family::Prints(&prints::SERVING_LEGACY)),
            Format::VllmThroughput => Some(Family::Prints(&prints::THROUGHPUT)),
            Format::VllmLatency => Some(Family::Prints(&prints::LATENCY)),
            Format::SglangOneBatch => Some(Family::OneBatch),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a family found: complete blocks and cut-off ones, in log order.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub complete: Vec<Span>,
    pub cut: Vec<Cut>,
}

/// A block that started but did not finish.
#[derive(Debug)]
pub(crate) struct Cut {
    pub start: usize,
    /// Where the scan of the block stopped.
    pub end: usize,
    /// What is wrong with it, worded to follow "the result table at line N ".
    pub reason: String,
}

/// A group of formats read by one scanner, in the order auto-detection tries them.
#[derive(Clone, Copy)]
enum Family {
    Table,
    Prints(&'static PrintFormat),
    OneBatch,
}

const AUTO_ORDER: [Family; 6] = [
    Family::Table,
    Family::Prints(&prints::SERVING_LINES),
    Family::Prints(&prints::SERVING_LEGACY),
    Family::Prints(&prints::THROUGHPUT),
    Family::Prints(&prints::LATENCY),
    Family::OneBatch,
];

impl Family {
    fn scan(self, src: &str, anchors: &Anchors) -> Scan {
        match self {
            Family::Table => table::scan(src, anchors),
            Family::Prints(format) => format.scan(src, anchors),
            Family::OneBatch => one_batch::scan(src, anchors),
        }
    }

    fn extract(self, src: &str, span: Span, builder: &mut Builder) -> Format {
        match self {
            Family::Table => table::extract(src, span, builder),
            Family::Prints(format) => format.extract(src, span, builder),
            Family::OneBatch => one_batch::extract(src, span, builder),
        }
    }

    /// How one block is called in messages.
    fn what(self) -> &'static str {
        match self {
            Family::Table => "result table",
            Family::Prints(format) => format.what,
            Family::OneBatch => "benchmark run",
        }
    }

    /// The format name of a family's (possibly cut-off) block.
    fn format_of(self, src: &str, span: Span) -> Format {
        self.extract(src, span, &mut Builder::default())
    }
}

/// Checks the suite's custom patterns up front: each regex compiles, has named captures that are
/// metric keys, and its `units` name only those captures. Errors name the pattern.
pub fn validate_custom_patterns(custom: &[CustomPattern]) -> Result<(), ParseError> {
    custom::compile(custom).map(|_| ())
}

/// Parses one benchmark log (or JSON result file).
///
/// With [`FormatChoice::Auto`] the format is detected; with custom patterns, their metrics are
/// added to the built-in result, or make up the result (format `custom`) when no built-in
/// format is found. A cut-off built-in result stays an error even when custom patterns match.
pub fn parse_log(
    text: &str,
    choice: &FormatChoice,
    custom: &[CustomPattern],
) -> Result<ParsedMetrics, ParseError> {
    let compiled = custom::compile(custom)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let anchors = Anchors::find(text);
    let anchors = &anchors;
    let (format, mut builder) = match choice {
        FormatChoice::Auto => {
            if json::looks_like_json(text) {
                match json::parse(text, None) {
                    Ok(found) => found,
                    // a log that happens to start with `[` or `{` is still a log
                    Err(error @ ParseError::InvalidJson { .. }) => match detect(text, anchors)? {
                        Some(found) => found,
                        None if compiled.is_empty() => return Err(error),
                        None => custom_only(text, anchors, &compiled)?,
                    },
                    Err(error) if compiled.is_empty() => return Err(error),
                    Err(_) => custom_only(text, anchors, &compiled)?,
                }
            } else {
                match detect(text, anchors)? {
                    Some(found) => found,
                    None if compiled.is_empty() => return Err(nothing_found(text, anchors)),
                    None => custom_only(text, anchors, &compiled)?,
                }
            }
        }
        FormatChoice::Named(name) => {
            let format = Format::from_name(name)
                .ok_or_else(|| ParseError::UnknownFormat { name: name.clone() })?;
            if format == Format::Custom {
                custom_only(text, anchors, &compiled)?
            } else if format.is_json() {
                json::parse(text, Some(format))?
            } else {
                let family = format
                    .family()
                    .ok_or_else(|| ParseError::UnknownFormat { name: name.clone() })?;
                let scan = family.scan(text, anchors);
                match choose(text, anchors, family, &scan)? {
                    Some((_, builder)) => (format, builder),
                    None => {
                        return Err(ParseError::NoResult {
                            format: Some(format.name().to_string()),
                            missing: format!("no {} found", family.what()),
                            crash: anchors.crash(text).map(|crash| crash.exception),
                        });
                    }
                }
            }
        }
    };
    if format != Format::Custom && !compiled.is_empty() {
        custom::apply(&compiled, text, &mut builder, true);
    }
    check_requests(&mut builder);
    let (metrics, warnings) = builder.finish();
    Ok(ParsedMetrics {
        format: format.name().to_string(),
        metrics,
        warnings,
    })
}

/// Auto-detection over the text families: the first family (in [`AUTO_ORDER`]) with any block
/// decides; other families with a complete result are mentioned in a warning.
fn detect(text: &str, anchors: &Anchors) -> Result<Option<(Format, Builder)>, ParseError> {
    let mut decided: Option<(Format, Builder)> = None;
    let mut others: Vec<Format> = Vec::new();
    for family in AUTO_ORDER {
        let scan = family.scan(text, anchors);
        if decided.is_some() {
            if let Some(&span) = scan.complete.last() {
                others.push(family.format_of(text, span));
            }
            continue;
        }
        if let Some(found) = choose(text, anchors, family, &scan)? {
            decided = Some(found);
        }
    }
    let Some((format, mut builder)) = decided else {
        return Ok(None);
    };
    for other in others {
        builder.warn(format!(
            "also found a {other} result; pass --format to choose"
        ));
    }
    Ok(Some((format, builder)))
}

/// Picks the last complete block of a family, with the warnings that choice needs; an error when
/// the family only has cut-off blocks; `None` when it has nothing.
fn choose(
    text: &str,
    anchors: &Anchors,
    family: Family,
    scan: &Scan,
) -> Result<Option<(Format, Builder)>, ParseError> {
    let crash = anchors.crash(text);
    let Some(&chosen) = scan.complete.last() else {
        let Some(cut) = scan.cut.last() else {
            return Ok(None);
        };
        let format = family.format_of(
            text,
            Span {
                start: cut.start,
                end: cut.end,
            },
        );
        return Err(ParseError::NoResult {
            format: Some(format.name().to_string()),
            missing: format!(
                "the {} at line {} {}",
                family.what(),
                text::line_number(text, cut.start),
                cut.reason
            ),
            crash: crash
                .filter(|crash| crash.pos >= cut.start)
                .map(|crash| crash.exception),
        });
    };
    let mut builder = Builder::default();
    let format = family.extract(text, chosen, &mut builder);
    if builder.metrics.is_empty() {
        return Err(ParseError::NoResult {
            format: Some(format.name().to_string()),
            missing: format!(
                "the {} at line {} has no numeric values",
                family.what(),
                text::line_number(text, chosen.start)
            ),
            crash: crash.map(|crash| crash.exception),
        });
    }
    if scan.complete.len() > 1 {
        builder.warn(format!(
            "{} result blocks; used the last",
            count_word(scan.complete.len())
        ));
    }
    if let Some(cut) = scan.cut.iter().rev().find(|cut| cut.start > chosen.start) {
        builder.warn(format!(
            "a later {} at line {} {}; used the last complete one",
            family.what(),
            text::line_number(text, cut.start),
            cut.reason
        ));
    }
    if let Some(crash) = crash.filter(|crash| crash.pos >= chosen.end) {
        builder.warn(format!(
            "python traceback after the result: {}",
            crash.exception
        ));
    }
    Ok(Some((format, builder)))
}

/// Only the custom patterns: an error when none matched.
fn custom_only(
    text: &str,
    anchors: &Anchors,
    compiled: &[custom::Compiled],
) -> Result<(Format, Builder), ParseError> {
    if compiled.is_empty() {
        return Err(ParseError::NoResult {
            format: Some(Format::Custom.name().to_string()),
            missing: "the suite defines no custom metric patterns".to_string(),
            crash: None,
        });
    }
    let mut builder = Builder::default();
    let matched = custom::apply(compiled, text, &mut builder, false);
    if matched == 0 || builder.metrics.is_empty() {
        return Err(ParseError::NoResult {
            format: Some(Format::Custom.name().to_string()),
            missing: "no custom metric pattern matched".to_string(),
            crash: anchors.crash(text).map(|crash| crash.exception),
        });
    }
    if let Some(crash) = anchors.crash(text) {
        builder.warn(format!("python traceback in the log: {}", crash.exception));
    }
    Ok((Format::Custom, builder))
}

fn nothing_found(text: &str, anchors: &Anchors) -> ParseError {
    ParseError::NoResult {
        format: None,
        missing: "no known benchmark output (serving result table, result lines, throughput, latency or one-batch lines)"
            .to_string(),
        crash: anchors.crash(text).map(|crash| crash.exception),
    }
}

/// Warnings about the requests behind a serving result.
fn check_requests(builder: &mut Builder) {
    if builder.get("successful_requests") == Some(0.0) {
        builder.warn("zero successful requests");
    }
    if let Some(failed) = builder
        .get("failed_requests")
        .filter(|failed| *failed > 0.0)
    {
        builder.warn(format!("{failed} failed requests"));
    }
}

/// `two`, `three`… for small counts (as in "two result blocks"), digits beyond ten.
pub(crate) fn count_word(count: usize) -> String {
    const WORDS: [&str; 11] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    WORDS
        .get(count)
        .map_or_else(|| count.to_string(), |word| (*word).to_string())
}
