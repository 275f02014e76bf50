//! JSON result files: vLLM `benchmark_serving.py --save-result` / `vllm bench serve
//! --save-result`, SGLang `bench_serving --output-file`, `benchmark_latency.py --output-json`
//! and `benchmark_throughput.py --output-json`.
//!
//! Python's `json.dump` writes `NaN`, `Infinity` and `-Infinity`, which are not JSON; they are
//! read as `null` with a warning. Appended files hold several objects; the last one is used.
//! Old vLLM versions wrote the keys `request_inthroughput` and `request_goodput:`; both are read.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::metrics::{Builder, latency_group, percentile_key, stat_key};
use super::{Format, ParseError};

/// Stand-ins for Python's non-JSON numbers, as strings a real result never holds.
const NAN: &str = "\u{0}perfarena:nan";
const INF: &str = "\u{0}perfarena:inf";
const NEG_INF: &str = "\u{0}perfarena:-inf";

/// Whether the text is a JSON document rather than a log.
pub(crate) fn looks_like_json(text: &str) -> bool {
    let text = text.trim_start();
    if text.starts_with('{') {
        return true;
    }
    // `[{…}]`, but not a log line such as `[2025-02-26 10:25:01 TP0] …`
    text.strip_prefix('[').is_some_and(|rest| {
        matches!(
            rest.trim_start().as_bytes().first(),
            Some(b'{') | Some(b']')
        )
    })
}

/// Parses a JSON result file. `wanted` is a JSON format the caller insists on.
pub(crate) fn parse(text: &str, wanted: Option<Format>) -> Result<(Format, Builder), ParseError> {
    let text = replace_non_finite(text);
    let mut objects = Vec::new();
    for value in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
        match value {
            Ok(Value::Object(object)) => objects.push(object),
            Ok(Value::Array(items)) => {
                objects.extend(items.into_iter().filter_map(|item| match item {
                    Value::Object(object) => Some(object),
                    _ => None,
                }));
            }
            Ok(_) => {}
            Err(error) => {
                return Err(ParseError::InvalidJson {
                    reason: error.to_string(),
                });
            }
        }
    }
    let count = objects.len();
    let Some(object) = objects.pop() else {
        return Err(no_result(wanted, "the JSON holds no result object"));
    };
    let format = match wanted {
        Some(format) => format,
        None => classify(&object)
            .ok_or_else(|| no_result(None, "the JSON object has none of the known result keys"))?,
    };
    let mut builder = Builder::default();
    let required = match format {
        Format::VllmLatencyJson => read_latency(&object, &mut builder),
        Format::VllmThroughputJson => read_throughput(&object, &mut builder),
        _ => read_serving(&object, &mut builder),
    };
    if let Some(missing) = required.iter().find(|key| !builder.has(key)) {
        return Err(no_result(
            Some(format),
            &format!("the JSON result lacks {missing}"),
        ));
    }
    if count > 1 {
        builder.warn(format!(
            "{} result records; used the last",
            super::count_word(count)
        ));
    }
    Ok((format, builder))
}

fn no_result(format: Option<Format>, missing: &str) -> ParseError {
    ParseError::NoResult {
        format: format.map(|format| format.name().to_string()),
        missing: missing.to_string(),
        crash: None,
    }
}

/// Which JSON result this object is.
fn classify(object: &Map<String, Value>) -> Option<Format> {
    if object.contains_key("avg_latency") {
        return Some(Format::VllmLatencyJson);
    }
    if object.contains_key("requests_per_second") {
        return Some(Format::VllmThroughputJson);
    }
    let sglang = object
        .keys()
        .any(|key| key.ends_with("e2e_latency_ms") || key.contains("retokenized"));
    if sglang {
        return Some(Format::SglangServingJson);
    }
    let serving = ["request_throughput", "request_inthroughput", "completed"];
    if serving.iter().any(|key| object.contains_key(*key)) {
        return Some(Format::VllmServingJson);
    }
    None
}

/// Serving results of vLLM and SGLang; returns the keys a complete result has.
fn read_serving(object: &Map<String, Value>, builder: &mut Builder) -> &'static [&'static str] {
    const KEYS: &[(&str, &str)] = &[
        ("duration", "duration_s"),
        ("benchmark_duration", "duration_s"),
        ("completed", "successful_requests"),
        ("failed", "failed_requests"),
        ("total_input_tokens", "total_input_tokens"),
        ("total_input", "total_input_tokens"),
        ("total_output_tokens", "total_output_tokens"),
        ("total_output", "total_output_tokens"),
        (
            "total_output_tokens_retokenized",
            "total_output_tokens_retokenized",
        ),
        (
            "total_output_retokenized",
            "total_output_tokens_retokenized",
        ),
        ("request_throughput", "request_throughput_rps"),
        ("request_inthroughput", "request_throughput_rps"),
        ("request_goodput", "request_goodput_rps"),
        ("request_goodput:", "request_goodput_rps"),
        ("input_throughput", "input_throughput_tok_s"),
        ("output_throughput", "output_throughput_tok_s"),
        ("total_token_throughput", "total_throughput_tok_s"),
        ("total_throughput", "total_throughput_tok_s"),
        ("max_output_tokens_per_s", "peak_output_throughput_tok_s"),
        ("max_concurrent_requests", "peak_concurrent_requests"),
        ("concurrency", "concurrency"),
        ("accept_length", "accept_length"),
    ];
    for (name, value) in object {
        if let Some(&(_, key)) = KEYS.iter().find(|(known, _)| known == name) {
            set_number(builder, key, value);
        } else if let (Some((group, stat)), Some(number)) = (stat_name(name), number_of(value)) {
            builder.stat(&group, &stat, number);
        }
    }
    &["request_throughput_rps"]
}

/// `p99_ttft_ms` → (`ttft_ms`, `p99`); `mean_e2e_latency_ms` → (`e2el_ms`, `mean`).
fn stat_name(name: &str) -> Option<(String, String)> {
    let (stat, rest) = name.split_once('_')?;
    let stat = stat_key(stat)?;
    let metric = rest.strip_suffix("_ms")?;
    if metric.is_empty() {
        return None;
    }
    Some((latency_group(metric, "ms"), stat))
}

/// `benchmark_latency.py --output-json`: `avg_latency`, `percentiles: {"10": …}`.
fn read_latency(object: &Map<String, Value>, builder: &mut Builder) -> &'static [&'static str] {
    if let Some(number) = object.get("avg_latency").and_then(number_of) {
        builder.stat("latency_s", "avg", number);
    }
    if let Some(Value::Object(percentiles)) = object.get("percentiles") {
        for (percent, value) in percentiles {
            if let (Some(stat), Some(number)) = (percentile_key(percent), number_of(value)) {
                builder.stat("latency_s", &stat, number);
            }
        }
    }
    &["latency_s"]
}

/// `benchmark_throughput.py --output-json`; some versions wrote numbers as strings.
fn read_throughput(object: &Map<String, Value>, builder: &mut Builder) -> &'static [&'static str] {
    const KEYS: &[(&str, &str)] = &[
        ("elapsed_time", "duration_s"),
        ("num_requests", "num_requests"),
        ("total_num_tokens", "total_tokens"),
        ("total_output_tokens", "total_output_tokens"),
        ("requests_per_second", "request_throughput_rps"),
        ("tokens_per_second", "total_throughput_tok_s"),
        ("output_tokens_per_second", "output_throughput_tok_s"),
    ];
    for &(name, key) in KEYS {
        if let Some(value) = object.get(name) {
            set_number(builder, key, value);
        }
    }
    &["request_throughput_rps"]
}

fn set_number(builder: &mut Builder, key: &str, value: &Value) {
    if let Some(number) = number_of(value) {
        builder.number(key, number);
    }
}

/// A number, a number written as a string, or a stand-in for NaN/±Infinity; `null` is absent.
fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => match text.as_str() {
            NAN => Some(f64::NAN),
            INF => Some(f64::INFINITY),
            NEG_INF => Some(f64::NEG_INFINITY),
            other => other.trim().parse::<f64>().ok(),
        },
        Value::Bool(_) | Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// `text` with bare `NaN`, `Infinity` and `-Infinity` (outside strings) turned into stand-in
/// strings, so that serde_json can read it.
fn replace_non_finite(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if memchr::memmem::find(bytes, b"NaN").is_none()
        && memchr::memmem::find(bytes, b"Infinity").is_none()
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut in_string = false;
    let mut escaped = false;
    let mut kept_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        let replacement = if byte == b'"' {
            in_string = true;
            None
        } else if bytes[i..].starts_with(b"NaN") {
            Some((3, NAN))
        } else if bytes[i..].starts_with(b"Infinity") {
            Some((8, INF))
        } else if bytes[i..].starts_with(b"-Infinity") {
            Some((9, NEG_INF))
        } else {
            None
        };
        match replacement {
            Some((len, stand_in)) => {
                out.push_str(&text[kept_from..i]);
                out.push('"');
                out.push_str(&stand_in.replace('\u{0}', "\\u0000"));
                out.push('"');
                i += len;
                kept_from = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&text[kept_from..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_outside_strings_only() {
        let text = r#"{"a": NaN, "b": -Infinity, "c": "NaN Infinity", "d": [Infinity]}"#;
        let replaced = replace_non_finite(text);
        let value: Value = serde_json::from_str(&replaced).unwrap();
        assert_eq!(number_of(&value["a"]).map(f64::is_nan), Some(true));
        assert_eq!(number_of(&value["b"]), Some(f64::NEG_INFINITY));
        assert_eq!(value["c"], "NaN Infinity");
        assert_eq!(number_of(&value["d"][0]), Some(f64::INFINITY));
    }

    #[test]
    fn stat_names() {
        assert_eq!(
            stat_name("p99_ttft_ms"),
            Some(("ttft_ms".into(), "p99".into()))
        );
        assert_eq!(
            stat_name("p99.9_itl_ms"),
            Some(("itl_ms".into(), "p99.9".into()))
        );
        assert_eq!(
            stat_name("mean_e2e_latency_ms"),
            Some(("e2el_ms".into(), "mean".into()))
        );
        assert_eq!(
            stat_name("median_e2el_ms"),
            Some(("e2el_ms".into(), "median".into()))
        );
        assert_eq!(stat_name("max_output_tokens_per_s"), None);
    }
}
