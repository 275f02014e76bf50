//! Suite-defined metrics: a regular expression whose named captures become metrics
//! (`took (?P<latency_s>[0-9.]+) s`; `ttft_ms__p99` names the `p99` member of group `ttft_ms`).
//!
//! Patterns run in multi-line, CR-LF-aware mode over the log with ANSI escapes removed; when a
//! pattern matches several times the last match is used, and the result says so.

use std::borrow::Cow;

use regex::{Regex, RegexBuilder};

use super::metrics::Builder;
use super::text::{parse_number, strip_ansi, truncate};
use super::{CustomPattern, ParseError};

/// A checked pattern: its regex and the capture names that become metrics.
pub(crate) struct Compiled {
    index: usize,
    regex: Regex,
    names: Vec<String>,
}

/// Compiles and checks the suite's patterns; errors name the pattern (1-based) and its regex.
pub(crate) fn compile(custom: &[CustomPattern]) -> Result<Vec<Compiled>, ParseError> {
    custom
        .iter()
        .enumerate()
        .map(|(index, pattern)| compile_one(index + 1, pattern))
        .collect()
}

fn compile_one(index: usize, pattern: &CustomPattern) -> Result<Compiled, ParseError> {
    let invalid = |reason: String| ParseError::InvalidCustomPattern {
        index,
        regex: pattern.regex.clone(),
        reason,
    };
    let regex = RegexBuilder::new(&pattern.regex)
        .multi_line(true)
        .crlf(true)
        .build()
        .map_err(|error| invalid(first_line(&error.to_string())))?;
    let names: Vec<String> = regex
        .capture_names()
        .flatten()
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err(invalid(
            "has no named capture; name each metric, e.g. (?P<latency_s>[0-9.]+)".into(),
        ));
    }
    for name in &names {
        if !is_metric_name(name) {
            return Err(invalid(format!(
                "capture `{name}` is not a metric key (lower-case snake_case, `group__stat` for a group member)"
            )));
        }
    }
    for unit_of in pattern.units.keys() {
        if !names.contains(unit_of) {
            return Err(invalid(format!(
                "`units` names `{unit_of}`, which is not a capture of the pattern"
            )));
        }
    }
    Ok(Compiled {
        index,
        regex,
        names,
    })
}

/// The regex crate's error message is a multi-line picture; its last line says what is wrong.
fn first_line(message: &str) -> String {
    let reason = message
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or(message);
    truncate(reason.trim().trim_start_matches("error: "), 200)
}

/// `latency_s`, `ttft_ms__p99`: lower-case letters, digits and single underscores between words.
fn is_metric_name(name: &str) -> bool {
    let valid_part = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_lowercase())
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !part.ends_with('_')
    };
    let mut parts = name.split("__");
    let first = parts.next().unwrap_or("");
    let second = parts.next();
    parts.next().is_none()
        && valid_part(first)
        && second.is_none_or(|stat| {
            !stat.is_empty()
                && stat
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// Runs the patterns over `text`; says how many matched at all.
pub(crate) fn apply(
    compiled: &[Compiled],
    text: &str,
    builder: &mut Builder,
    replace_warning: bool,
) -> usize {
    let text: Cow<'_, str> = strip_ansi(text);
    let mut matched = 0;
    for pattern in compiled {
        let mut count = 0;
        let mut last = None;
        for captures in pattern.regex.captures_iter(&text) {
            count += 1;
            last = Some(captures);
        }
        let Some(captures) = last else {
            builder.warn(format!(
                "custom pattern #{} (`{}`) did not match",
                pattern.index,
                pattern.regex.as_str()
            ));
            continue;
        };
        matched += 1;
        if count > 1 {
            builder.warn(format!(
                "custom pattern #{} matched {count} times; used the last",
                pattern.index
            ));
        }
        for name in &pattern.names {
            let Some(found) = captures.name(name) else {
                continue;
            };
            let Some(value) = parse_number(found.as_str()) else {
                builder.warn(format!(
                    "custom metric {name}: `{}` is not a number",
                    truncate(found.as_str(), 40)
                ));
                continue;
            };
            let key = name.split("__").next().unwrap_or(name);
            if replace_warning && builder.has(key) && !name.contains("__") {
                builder.warn(format!("custom metric {name} replaces the built-in value"));
            }
            builder.named(name, value);
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(regex: &str) -> CustomPattern {
        CustomPattern {
            regex: regex.to_string(),
            units: Default::default(),
        }
    }

    #[test]
    fn metric_names() {
        assert!(is_metric_name("latency_s"));
        assert!(is_metric_name("ttft_ms__p99"));
        assert!(is_metric_name("ttft_ms__p99_9"));
        assert!(!is_metric_name("Latency"));
        assert!(!is_metric_name("a__b__c"));
        assert!(!is_metric_name("_x"));
    }

    #[test]
    fn errors_name_the_pattern() {
        let error = compile(&[pattern("ok (?P<x>1)"), pattern("bad (?P<y>[")])
            .err()
            .unwrap();
        let message = error.to_string();
        assert!(
            message.starts_with("custom pattern #2 (`bad (?P<y>[`)"),
            "{message}"
        );
        let error = compile(&[pattern("no captures")]).err().unwrap();
        assert!(error.to_string().contains("no named capture"));
    }

    #[test]
    fn last_match_wins_and_crlf_anchors_work() {
        let compiled = compile(&[pattern(r"^took (?P<latency_s>\S+) s$")]).unwrap();
        let mut builder = Builder::default();
        let matched = apply(
            &compiled,
            "took 1.5 s\r\ntook \x1b[1m2.5\x1b[0m s\r\n",
            &mut builder,
            false,
        );
        assert_eq!(matched, 1);
        assert_eq!(builder.get("latency_s"), Some(2.5));
        assert_eq!(
            builder.warnings,
            vec!["custom pattern #1 matched 2 times; used the last"]
        );
    }
}
