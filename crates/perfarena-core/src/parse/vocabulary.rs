//! One metric vocabulary for every parser and every era, and the names that lead to it: the
//! names earlier versions of perfarena gave the same metrics (accepted in `metric.primary` and
//! in stored samples), and the names other pipelines write in their results files
//! (`results import`), with the unit conversion each needs.

/// Old perfarena names of metrics that now have one name across eras: `(old, new)`.
pub const METRIC_ALIASES: &[(&str, &str)] = &[
    ("requests_per_s", "request_throughput_rps"),
    ("tokens_per_s", "total_throughput_tok_s"),
    ("output_tokens_per_s", "output_throughput_tok_s"),
    ("input_tokens_per_s", "input_throughput_tok_s"),
    ("total_prompt_tokens", "total_input_tokens"),
    ("overall_throughput_tok_s", "total_throughput_tok_s"),
    ("total_latency_s", "latency_s.avg"),
    ("request_latency_s.avg", "latency_s.avg"),
];

/// The current name of a metric known by an old name (`None` when the name is current).
pub fn canonical_metric(name: &str) -> Option<&'static str> {
    METRIC_ALIASES
        .iter()
        .find(|(old, _)| *old == name)
        .map(|(_, new)| *new)
}

/// The old names of a metric, for reading samples stored before the rename.
pub fn old_names(name: &str) -> impl Iterator<Item = &'static str> + '_ {
    METRIC_ALIASES
        .iter()
        .filter(move |(_, new)| *new == name)
        .map(|(old, _)| *old)
}

/// Metric names other pipelines write in their results, mapped onto the vocabulary: `(their
/// name, ours, factor)`; the value is multiplied by the factor (milliseconds to seconds).
/// Latency groups spelled `<group>_<stat>_ms` (`ttft_mean_ms`, `itl_p99_ms`) are mapped by
/// [`foreign_metric`] without being listed.
pub const FOREIGN_METRICS: &[(&str, &str, f64)] = &[
    ("throughput_req_s", "request_throughput_rps", 1.0),
    ("request_throughput_req_s", "request_throughput_rps", 1.0),
    ("requests_per_second", "request_throughput_rps", 1.0),
    ("request_throughput", "request_throughput_rps", 1.0),
    // `benchmark_throughput.py`'s tokens per second count prompt and output tokens.
    ("throughput_tok_s", "total_throughput_tok_s", 1.0),
    ("tokens_per_second", "total_throughput_tok_s", 1.0),
    (
        "total_token_throughput_tok_s",
        "total_throughput_tok_s",
        1.0,
    ),
    ("total_token_throughput", "total_throughput_tok_s", 1.0),
    (
        "output_token_throughput_tok_s",
        "output_throughput_tok_s",
        1.0,
    ),
    ("output_tokens_per_second", "output_throughput_tok_s", 1.0),
    ("output_throughput", "output_throughput_tok_s", 1.0),
    (
        "input_token_throughput_tok_s",
        "input_throughput_tok_s",
        1.0,
    ),
    ("avg_latency_s", "latency_s.avg", 1.0),
    ("avg_latency", "latency_s.avg", 1.0),
    ("latency_avg_s", "latency_s.avg", 1.0),
    ("latency_avg_ms", "latency_s.avg", 0.001),
    ("avg_latency_ms", "latency_s.avg", 0.001),
    ("completed", "successful_requests", 1.0),
    ("failed", "failed_requests", 1.0),
];

/// The vocabulary name (and unit factor) of a metric as another pipeline named it; `None`
/// when it is not a known foreign name (it is then kept as it is).
pub fn foreign_metric(name: &str) -> Option<(String, f64)> {
    if let Some(new) = canonical_metric(name) {
        return Some((new.to_string(), 1.0));
    }
    if let Some((_, new, factor)) = FOREIGN_METRICS.iter().find(|(their, _, _)| *their == name) {
        return Some(((*new).to_string(), *factor));
    }
    // `ttft_mean_ms`, `tpot_p99_ms`, `e2el_median_ms`: the group, its stat, milliseconds.
    let rest = name.strip_suffix("_ms")?;
    let (group, stat) = rest.split_once('_')?;
    let group = match group {
        "ttft" | "tpot" | "itl" | "e2el" => group,
        _ => return None,
    };
    let stat = super::metrics::stat_key(stat)?;
    Some((format!("{group}_ms.{stat}"), 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_lead_to_the_vocabulary() {
        assert_eq!(
            canonical_metric("requests_per_s"),
            Some("request_throughput_rps")
        );
        assert_eq!(canonical_metric("request_throughput_rps"), None);
        let olds: Vec<&str> = old_names("total_throughput_tok_s").collect();
        assert_eq!(olds, ["tokens_per_s", "overall_throughput_tok_s"]);
        // Every alias leads to a name that is not itself an alias.
        for (_, new) in METRIC_ALIASES {
            assert_eq!(canonical_metric(new), None, "{new}");
        }
    }

    #[test]
    fn foreign_names_with_unit_conversion() {
        let check = |name: &str, want: Option<(&str, f64)>| {
            assert_eq!(
                foreign_metric(name),
                want.map(|(key, factor)| (key.to_string(), factor)),
                "{name}"
            );
        };
        check("throughput_tok_s", Some(("total_throughput_tok_s", 1.0)));
        check(
            "output_token_throughput_tok_s",
            Some(("output_throughput_tok_s", 1.0)),
        );
        check("throughput_req_s", Some(("request_throughput_rps", 1.0)));
        check("avg_latency_s", Some(("latency_s.avg", 1.0)));
        check("latency_avg_ms", Some(("latency_s.avg", 0.001)));
        check("ttft_mean_ms", Some(("ttft_ms.mean", 1.0)));
        check("itl_p99_ms", Some(("itl_ms.p99", 1.0)));
        check("tokens_per_s", Some(("total_throughput_tok_s", 1.0)));
        check("gpu_mem_gb", None);
        check("foo_mean_ms", None);
    }
}
