//! Building a metric map while parsing: non-finite values become `null` with a warning, stats
//! go into groups, and key-naming helpers shared by every format.

use std::collections::BTreeMap;

use super::MetricValue;

/// Collects metrics and warnings for one result.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    pub metrics: BTreeMap<String, MetricValue>,
    pub warnings: Vec<String>,
    /// Metrics whose value was NaN or infinite, with how the log spelled it.
    non_finite: Vec<(String, &'static str)>,
}

impl Builder {
    /// Sets a plain metric; NaN and infinities are stored as `null` with a warning.
    pub(crate) fn number(&mut self, key: &str, value: f64) {
        let value = self.checked(key, value);
        self.metrics
            .insert(key.to_string(), MetricValue::Number(value));
    }

    /// Sets `group.stat` (e.g. `ttft_ms.p99`).
    pub(crate) fn stat(&mut self, group: &str, stat: &str, value: f64) {
        let value = self.checked(&format!("{group}.{stat}"), value);
        let entry = self
            .metrics
            .entry(group.to_string())
            .or_insert_with(|| MetricValue::Group(BTreeMap::new()));
        if let MetricValue::Number(_) = entry {
            *entry = MetricValue::Group(BTreeMap::new());
        }
        if let MetricValue::Group(stats) = entry {
            stats.insert(stat.to_string(), value);
        }
    }

    /// Sets a metric named by a custom capture: `group__stat` names a group member.
    pub(crate) fn named(&mut self, name: &str, value: f64) {
        match name.split_once("__") {
            Some((group, stat)) => self.stat(group, stat, value),
            None => self.number(name, value),
        }
    }

    /// Adds a warning once.
    pub(crate) fn warn(&mut self, warning: impl Into<String>) {
        let warning = warning.into();
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// A plain metric's value, if it was set and finite.
    pub(crate) fn get(&self, key: &str) -> Option<f64> {
        match self.metrics.get(key) {
            Some(MetricValue::Number(value)) => *value,
            _ => None,
        }
    }

    /// Whether the metric (plain or group) was set at all.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.metrics.contains_key(key)
    }

    fn checked(&mut self, name: &str, value: f64) -> Option<f64> {
        if value.is_finite() {
            return Some(value);
        }
        let shown = if value.is_nan() {
            "nan"
        } else if value > 0.0 {
            "inf"
        } else {
            "-inf"
        };
        if !self.non_finite.iter().any(|(seen, _)| seen == name) {
            self.non_finite.push((name.to_string(), shown));
        }
        None
    }

    /// The metrics and warnings, with one warning for all NaN/inf values.
    pub(crate) fn finish(mut self) -> (BTreeMap<String, MetricValue>, Vec<String>) {
        match self.non_finite.as_slice() {
            [] => {}
            [(name, shown)] => {
                let warning = format!("{name} is {shown}; reported as null");
                self.warnings.insert(0, warning);
            }
            many => {
                let names: Vec<&str> = many.iter().map(|(name, _)| name.as_str()).collect();
                let warning = format!(
                    "{} values are nan or inf; reported as null: {}",
                    many.len(),
                    names.join(", ")
                );
                self.warnings.insert(0, warning);
            }
        }
        (self.metrics, self.warnings)
    }
}

/// The stat key for a word such as `Mean`, `Median`, `Std`, `Max`, `Min`, `Avg` or `P99.9`:
/// `mean`, `median`, `std`, `max`, `min`, `avg`, `p99.9`.
pub(crate) fn stat_key(word: &str) -> Option<String> {
    for name in ["mean", "median", "std", "max", "min", "avg"] {
        if word.eq_ignore_ascii_case(name) {
            return Some(name.to_string());
        }
    }
    let rest = word.strip_prefix(['P', 'p'])?;
    percentile_key(rest)
}

/// `p<N>` for a percentile number as printed (`99`, `99.9`, `50.0` → `p50`).
pub(crate) fn percentile_key(number: &str) -> Option<String> {
    let number = number.trim();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    if value.fract() == 0.0 {
        Some(format!("p{}", value as u64))
    } else {
        Some(format!("p{number}"))
    }
}

/// The group key of a per-request latency name as printed: `TTFT` → `ttft_ms` (with unit `ms`).
/// SGLang's `E2E Latency` and vLLM's `E2EL` are the same metric, `e2el`.
pub(crate) fn latency_group(name: &str, unit: &str) -> String {
    let base = match name.trim() {
        n if n.eq_ignore_ascii_case("ttft") => "ttft".to_string(),
        n if n.eq_ignore_ascii_case("tpot") => "tpot".to_string(),
        n if n.eq_ignore_ascii_case("itl") => "itl".to_string(),
        n if n.eq_ignore_ascii_case("e2el") => "e2el".to_string(),
        n if n.eq_ignore_ascii_case("e2e latency") || n.eq_ignore_ascii_case("e2e_latency") => {
            "e2el".to_string()
        }
        other => slug(other),
    };
    format!("{base}_{unit}")
}

/// A snake_case key for a label printed by a benchmark, with the unit in parentheses turned into
/// a suffix: `Acceptance rate (%)` → `acceptance_rate_pct`, `Foo (tok/s)` → `foo_tok_s`.
pub(crate) fn slug(label: &str) -> String {
    let mut out = String::with_capacity(label.len() + 4);
    let mut rest = label.trim();
    let mut unit = None;
    if let (Some(open), true) = (rest.rfind('('), rest.ends_with(')')) {
        unit = Some(unit_suffix(&rest[open + 1..rest.len() - 1]));
        rest = rest[..open].trim_end();
    }
    let mut pending_sep = false;
    for ch in rest.chars() {
        if ch.is_ascii_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.push(ch.to_ascii_lowercase());
        } else if ch == '%' {
            if !out.is_empty() {
                out.push('_');
            }
            out.push_str("pct");
            pending_sep = true;
        } else {
            pending_sep = true;
        }
    }
    if let Some(unit) = unit.filter(|unit| !unit.is_empty()) {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(&unit);
    }
    out
}

/// Suffix for a unit as printed: `ms`, `s`, `%` → `pct`, `tok/s` → `tok_s`, `req/s`/`RPS` → `rps`.
fn unit_suffix(unit: &str) -> String {
    let unit = unit.trim();
    if unit == "%" {
        return "pct".into();
    }
    if unit.eq_ignore_ascii_case("req/s") || unit.eq_ignore_ascii_case("rps") {
        return "rps".into();
    }
    let mut out = String::new();
    for ch in unit.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_keys() {
        assert_eq!(stat_key("Mean").as_deref(), Some("mean"));
        assert_eq!(stat_key("P99").as_deref(), Some("p99"));
        assert_eq!(stat_key("P99.9").as_deref(), Some("p99.9"));
        assert_eq!(stat_key("Peak"), None);
        assert_eq!(percentile_key("50.0").as_deref(), Some("p50"));
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Acceptance rate (%)"), "acceptance_rate_pct");
        assert_eq!(slug("CPU utilization user (%)"), "cpu_utilization_user_pct");
        assert_eq!(slug("Foo bar (tok/s)"), "foo_bar_tok_s");
        assert_eq!(
            slug("Request rate configured (RPS)"),
            "request_rate_configured_rps"
        );
        assert_eq!(latency_group("E2E Latency", "ms"), "e2el_ms");
        assert_eq!(latency_group("Queue Time", "ms"), "queue_time_ms");
    }

    #[test]
    fn non_finite_values_become_null_with_a_warning() {
        let mut builder = Builder::default();
        builder.stat("ttft_ms", "p99", f64::NAN);
        builder.number("duration_s", f64::INFINITY);
        builder.stat("ttft_ms", "mean", 1.0);
        assert_eq!(builder.get("duration_s"), None);
        assert!(builder.has("duration_s"));
        let (_, warnings) = builder.finish();
        assert_eq!(
            warnings,
            vec!["2 values are nan or inf; reported as null: ttft_ms.p99, duration_s"]
        );
        let mut builder = Builder::default();
        builder.number("x", f64::NEG_INFINITY);
        assert_eq!(builder.finish().1, vec!["x is -inf; reported as null"]);
    }
}
