//! The serving result table printed by vLLM `benchmark_serving.py` (v0.4 on), `vllm bench serve`
//! and SGLang `bench_serving`: a `==== Serving Benchmark Result ====` line, `Label: value` rows,
//! `----Section----` lines and a closing line of `=`. A table without its closing line was cut
//! off and is never a result.

use super::anchors::{Anchor, Anchors};
use super::metrics::{Builder, latency_group, slug, stat_key};
use super::text::{Lines, Span, is_rule, leading_number, line_bounds, visible};
use super::{Cut, Format, Scan};

/// Width the benchmarks pad row labels to.
const LABEL_WIDTH: usize = 40;

/// A table that has not closed after this many lines never will.
const MAX_TABLE_LINES: usize = 1000;

/// What a known row becomes.
#[derive(Clone, Copy)]
enum Row {
    Metric(&'static str),
    /// Benchmark settings echoed back (backend, configured rate…), not measurements.
    Setting,
}

/// Known rows, lower-case label → what it becomes, and whether only SGLang prints it.
const ROWS: &[(&str, Row, bool)] = &[
    (
        "successful requests",
        Row::Metric("successful_requests"),
        false,
    ),
    ("failed requests", Row::Metric("failed_requests"), false),
    ("benchmark duration (s)", Row::Metric("duration_s"), false),
    (
        "total input tokens",
        Row::Metric("total_input_tokens"),
        false,
    ),
    (
        "total input text tokens",
        Row::Metric("total_input_text_tokens"),
        true,
    ),
    (
        "total input vision tokens",
        Row::Metric("total_input_vision_tokens"),
        true,
    ),
    (
        "total generated tokens",
        Row::Metric("total_output_tokens"),
        false,
    ),
    (
        "total generated tokens (retokenized)",
        Row::Metric("total_output_tokens_retokenized"),
        true,
    ),
    (
        "request throughput (req/s)",
        Row::Metric("request_throughput_rps"),
        false,
    ),
    (
        "request goodput (req/s)",
        Row::Metric("request_goodput_rps"),
        false,
    ),
    (
        "input token throughput (tok/s)",
        Row::Metric("input_throughput_tok_s"),
        false,
    ),
    (
        "output token throughput (tok/s)",
        Row::Metric("output_throughput_tok_s"),
        false,
    ),
    (
        "peak output token throughput (tok/s)",
        Row::Metric("peak_output_throughput_tok_s"),
        false,
    ),
    (
        "peak concurrent requests",
        Row::Metric("peak_concurrent_requests"),
        false,
    ),
    (
        "total token throughput (tok/s)",
        Row::Metric("total_throughput_tok_s"),
        false,
    ),
    (
        "total throughput (tok/s)",
        Row::Metric("total_throughput_tok_s"),
        true,
    ),
    ("concurrency", Row::Metric("concurrency"), true),
    ("accept length", Row::Metric("accept_length"), true),
    (
        "acceptance rate (%)",
        Row::Metric("spec_acceptance_rate_pct"),
        false,
    ),
    (
        "acceptance length",
        Row::Metric("spec_acceptance_length"),
        false,
    ),
    ("drafts", Row::Metric("spec_drafts"), false),
    ("draft tokens", Row::Metric("spec_draft_tokens"), false),
    (
        "accepted tokens",
        Row::Metric("spec_accepted_tokens"),
        false,
    ),
    ("max input tokens", Row::Metric("max_input_tokens"), false),
    ("max output tokens", Row::Metric("max_output_tokens"), false),
    ("max total tokens", Row::Metric("max_total_tokens"), false),
    ("backend", Row::Setting, true),
    ("architecture", Row::Setting, true),
    ("traffic request rate", Row::Setting, true),
    ("max request concurrency", Row::Setting, true),
    ("maximum request concurrency", Row::Setting, false),
    ("request rate configured (rps)", Row::Setting, false),
    ("per-position acceptance (%)", Row::Setting, false),
];

/// Finds every result table: complete ones (closed by a `=` line) and cut-off ones.
pub(crate) fn scan(src: &str, anchors: &Anchors) -> Scan {
    let bytes = src.as_bytes();
    let mut headers: Vec<usize> = Vec::new();
    for &found in anchors.of(Anchor::TableHeader) {
        if is_header_at(bytes, found) {
            let line_start = line_bounds(src, found).0;
            if headers.last() != Some(&line_start) {
                headers.push(line_start);
            }
        }
    }
    let mut scan = Scan::default();
    for (index, &start) in headers.iter().enumerate() {
        let limit = headers.get(index + 1).copied().unwrap_or(bytes.len());
        let header_end = line_bounds(src, start).1;
        let prefix = header_prefix(src, start);
        let mut closed = None;
        let mut reason = None;
        let mut last_end = header_end;
        for (count, (line_start, raw)) in Lines::new(src, header_end + 1).enumerate() {
            if line_start >= limit {
                break;
            }
            if count >= MAX_TABLE_LINES {
                reason = Some(format!("is not closed within {MAX_TABLE_LINES} lines"));
                break;
            }
            last_end = line_start + raw.len();
            let line = visible(raw);
            let text = strip_log_prefix(&line, &prefix).trim();
            if is_rule(text, b'=') {
                closed = Some(last_end);
                break;
            }
            if text.contains(Anchor::Traceback.text()) {
                reason = Some("is interrupted by a python traceback".to_string());
                break;
            }
        }
        match closed {
            Some(end) => scan.complete.push(Span { start, end }),
            None => {
                let reason = reason.unwrap_or_else(|| {
                    if limit < bytes.len() {
                        "has no closing `=` line before the next result table".to_string()
                    } else {
                        "has no closing `=` line (log cut off?)".to_string()
                    }
                });
                scan.cut.push(Cut {
                    start,
                    end: last_end,
                    reason,
                });
            }
        }
    }
    scan
}

/// What precedes the `=` run of the header line (a log prefix such as `client-1  | ` or a
/// timestamp, or a tqdm bar the header was glued to); usually empty.
fn header_prefix(src: &str, header_line_start: usize) -> String {
    let (_, end) = line_bounds(src, header_line_start);
    let line = visible(&src[header_line_start..end]);
    let line = line.trim_start_matches([' ', '\t']);
    line.find('=')
        .map_or_else(String::new, |at| line[..at].to_string())
}

/// `line` without the header's log prefix, when it carries one of the same shape: the same
/// bytes, except that digits may differ (timestamps). Lines without it are left alone.
fn strip_log_prefix<'a>(line: &'a str, prefix: &str) -> &'a str {
    let line = line.trim_start_matches([' ', '\t']);
    if prefix.is_empty() || line.len() < prefix.len() || !line.is_char_boundary(prefix.len()) {
        return line;
    }
    let same_shape = line.as_bytes()[..prefix.len()]
        .iter()
        .zip(prefix.as_bytes())
        .all(|(a, b)| a == b || (a.is_ascii_digit() && b.is_ascii_digit()));
    if same_shape {
        &line[prefix.len()..]
    } else {
        line
    }
}

/// Whether the header text found at `at` is surrounded by `= ` and ` =`, as the benchmarks
/// print it.
fn is_header_at(bytes: &[u8], at: usize) -> bool {
    let after = at + Anchor::TableHeader.text().len();
    at >= 2 && &bytes[at - 2..at] == b"= " && bytes.get(after..after + 2) == Some(b" =".as_slice())
}

/// Reads the rows of one table into `builder`; says whether the table is SGLang's or vLLM's.
pub(crate) fn extract(src: &str, span: Span, builder: &mut Builder) -> Format {
    let mut sglang = false;
    let prefix = header_prefix(src, span.start);
    for (line_start, raw) in Lines::new(src, span.start).skip(1) {
        if line_start >= span.end {
            break;
        }
        let line = visible(raw);
        let text = strip_log_prefix(&line, &prefix).trim();
        if text.is_empty() || is_rule(text, b'=') || is_section(text) {
            continue;
        }
        if let Some((label, value)) = text.split_once(':') {
            // rows are printed as `{:<40} {:<10}`: the value starts past column 40
            let aligned = text.len() - value.trim_start().len() > LABEL_WIDTH;
            apply_row(label.trim(), value.trim(), aligned, builder, &mut sglang);
        }
    }
    if sglang {
        Format::SglangServingTable
    } else {
        Format::VllmServingTable
    }
}

/// A section line such as `---------------Time to First Token----------------`.
fn is_section(text: &str) -> bool {
    text.len() >= 10 && text.starts_with("---") && text.ends_with("---")
}

/// Sets the metric of one row. Unknown rows become metrics (named by [`slug`]) only when
/// `aligned` like the benchmark's own rows, so that stray log lines inside a table do not.
fn apply_row(label: &str, value: &str, aligned: bool, builder: &mut Builder, sglang: &mut bool) {
    let lower = label.to_ascii_lowercase();
    if let Some(&(_, row, sglang_only)) = ROWS.iter().find(|(known, _, _)| *known == lower) {
        *sglang |= sglang_only;
        if let (Row::Metric(key), Some((number, _))) = (row, leading_number(value)) {
            builder.number(key, number);
        }
        return;
    }
    if lower.starts_with("position ") {
        // per-position speculative acceptance rates: too fine-grained to compare
        return;
    }
    if let Some((group, stat, from_sglang)) = stat_row(label) {
        *sglang |= from_sglang;
        if let Some((number, _)) = leading_number(value) {
            builder.stat(&group, &stat, number);
        }
        return;
    }
    if !aligned {
        return;
    }
    if let Some((number, _)) = leading_number(value) {
        let key = slug(label);
        if !key.is_empty() {
            builder.number(&key, number);
        }
    }
}

/// `Mean TTFT (ms)` → (`ttft_ms`, `mean`); `P99 E2E Latency (ms)` → (`e2el_ms`, `p99`, SGLang).
pub(crate) fn stat_row(label: &str) -> Option<(String, String, bool)> {
    let (first, rest) = label.split_once(' ')?;
    let stat = stat_key(first)?;
    let rest = rest.trim();
    let open = rest.rfind('(')?;
    let unit = rest[open + 1..].strip_suffix(')')?.trim();
    let name = rest[..open].trim();
    if name.is_empty() || unit.is_empty() {
        return None;
    }
    let unit = if unit.eq_ignore_ascii_case("ms") || unit.eq_ignore_ascii_case("s") {
        unit.to_ascii_lowercase()
    } else {
        slug(unit)
    };
    let from_sglang = name.eq_ignore_ascii_case("e2e latency");
    Some((latency_group(name, &unit), stat, from_sglang))
}
