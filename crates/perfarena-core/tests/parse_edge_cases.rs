//! Edge cases of the metric parsers: cut-off and crashed logs, several result blocks, noise,
//! named formats, custom patterns and the JSON shape of metric values.

use perfarena_core::parse::{
    CustomPattern, FORMATS, FormatChoice, MetricValue, ParseError, ParsedMetrics, parse_log,
    validate_custom_patterns,
};

fn auto(text: &str) -> Result<ParsedMetrics, ParseError> {
    parse_log(text, &FormatChoice::Auto, &[])
}

fn named(text: &str, format: &str) -> Result<ParsedMetrics, ParseError> {
    parse_log(text, &FormatChoice::Named(format.to_string()), &[])
}

fn number(parsed: &ParsedMetrics, key: &str) -> Option<f64> {
    parsed
        .flatten()
        .into_iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

fn row(label: &str, value: &str) -> String {
    format!("{label:<40} {value:<10}\n")
}

/// A small vLLM table, closed or not.
fn table(throughput: &str, closed: bool) -> String {
    let mut text = format!("{:=^50}\n", " Serving Benchmark Result ");
    text += &row("Successful requests:", "10");
    text += &row("Benchmark duration (s):", "2.50");
    text += &row("Request throughput (req/s):", throughput);
    text += &format!("{:-^50}\n", "Time to First Token");
    text += &row("Mean TTFT (ms):", "12.00");
    text += &row("P99 TTFT (ms):", "30.00");
    if closed {
        text += &"=".repeat(50);
        text += "\n";
    }
    text
}

const CRASH: &str = "Traceback (most recent call last):\n  File \"benchmarks/benchmark_serving.py\", line 3, in <module>\n    import vllm._C\nModuleNotFoundError: No module named 'vllm._C'\n";

#[test]
fn a_table_without_its_closing_line_is_no_result() {
    let error = auto(&table("4.00", false)).unwrap_err();
    assert_eq!(error.format(), Some("vllm-serving-table"));
    let message = error.to_string();
    assert!(
        message.contains("at line 1 has no closing `=` line"),
        "{message}"
    );
}

#[test]
fn a_crash_inside_the_table_is_no_result_and_names_the_exception() {
    let error = auto(&format!("{}{CRASH}", table("4.00", false))).unwrap_err();
    let ParseError::NoResult { crash, missing, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        crash.as_deref(),
        Some("ModuleNotFoundError: No module named 'vllm._C'")
    );
    assert!(
        missing.contains("interrupted by a python traceback"),
        "{missing}"
    );
}

#[test]
fn a_crash_before_any_output_is_no_result() {
    let error = auto(&format!("INFO starting\n{CRASH}")).unwrap_err();
    assert_eq!(error.format(), None);
    assert!(
        error
            .to_string()
            .ends_with("python traceback: ModuleNotFoundError: No module named 'vllm._C'")
    );
}

#[test]
fn the_last_complete_block_wins_and_the_result_says_so() {
    let text = format!("{}noise\n{}", table("4.00", true), table("5.00", true));
    let parsed = auto(&text).unwrap();
    assert_eq!(number(&parsed, "request_throughput_rps"), Some(5.0));
    assert_eq!(parsed.warnings, vec!["two result blocks; used the last"]);
}

#[test]
fn a_later_cut_block_falls_back_to_the_earlier_complete_one() {
    let text = format!("{}{}{CRASH}", table("4.00", true), table("5.00", false));
    let parsed = auto(&text).unwrap();
    assert_eq!(number(&parsed, "request_throughput_rps"), Some(4.0));
    assert_eq!(
        parsed.warnings,
        vec![
            "a later result table at line 9 is interrupted by a python traceback; used the last complete one",
            "python traceback after the result: ModuleNotFoundError: No module named 'vllm._C'",
        ]
    );
}

#[test]
fn a_traceback_before_the_result_is_not_reported() {
    let parsed = auto(&format!("{CRASH}retrying\n{}", table("4.00", true))).unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
}

#[test]
fn zero_successful_requests_is_a_result_with_a_warning() {
    let text = table("0.00", true).replace("10        ", "0         ");
    let parsed = auto(&text).unwrap();
    assert_eq!(number(&parsed, "successful_requests"), Some(0.0));
    assert!(
        parsed
            .warnings
            .contains(&"zero successful requests".to_string())
    );
}

#[test]
fn nan_and_inf_become_null_with_a_warning() {
    let text = table("4.00", true)
        .replace("30.00     ", "nan       ")
        .replace("12.00     ", "inf       ");
    let parsed = auto(&text).unwrap();
    let Some(MetricValue::Group(ttft)) = parsed.metrics.get("ttft_ms") else {
        panic!()
    };
    assert_eq!(ttft.get("p99"), Some(&None));
    assert_eq!(ttft.get("mean"), Some(&None));
    assert_eq!(
        parsed.warnings,
        vec!["2 values are nan or inf; reported as null: ttft_ms.mean, ttft_ms.p99"]
    );
}

#[test]
fn noise_inside_and_around_the_table_is_ignored() {
    let clean = table("4.00", true);
    let mut noisy = String::from(
        "\u{feff}\x1b[32mINFO\x1b[0m 01-01 server.py:1] Avg prompt throughput: 9.9 tokens/s\n",
    );
    for (index, line) in clean.lines().enumerate() {
        // tqdm redraws, ANSI colours, CR-LF endings, and a log line in the middle of the table
        noisy += &format!(" 50%|#####     | 5/10\r\x1b[1m{line}\x1b[0m\r\n");
        if index == 2 {
            noisy += "WARNING 01-01 engine.py:7] Avg generation throughput: 55.0 tokens/s\r\n";
        }
    }
    let parsed = auto(&noisy).unwrap();
    assert_eq!(parsed, auto(&clean).unwrap());
}

#[test]
fn vllm_and_sglang_tables_are_told_apart() {
    let sglang = table("4.00", true).replace(
        "Successful requests:",
        "Backend:                                 sglang\nSuccessful requests:",
    );
    assert_eq!(auto(&sglang).unwrap().format, "sglang-serving-table");
    assert_eq!(
        auto(&table("4.00", true)).unwrap().format,
        "vllm-serving-table"
    );
}

#[test]
fn other_complete_results_are_mentioned() {
    let text = format!("Avg latency: 1.5 seconds\n{}", table("4.00", true));
    let parsed = auto(&text).unwrap();
    assert_eq!(parsed.format, "vllm-serving-table");
    assert_eq!(
        parsed.warnings,
        vec!["also found a vllm-latency result; pass --format to choose"]
    );
    let latency = named(&text, "vllm-latency").unwrap();
    assert_eq!(number(&latency, "latency_s.avg"), Some(1.5));
}

#[test]
fn a_named_format_that_is_absent_is_an_error() {
    let error = named(&table("4.00", true), "sglang-one-batch").unwrap_err();
    assert_eq!(
        error.to_string(),
        "no complete sglang-one-batch result: no benchmark run found"
    );
    let error = named("x", "vllm-serving-json").unwrap_err();
    assert!(matches!(error, ParseError::InvalidJson { .. }), "{error:?}");
}

#[test]
fn unknown_format_names_are_rejected() {
    let error = named("x", "vllm-serving-tabel").unwrap_err();
    assert!(error.to_string().starts_with(
        "unknown format `vllm-serving-tabel`; known formats: auto, vllm-serving-table"
    ));
    assert!(FormatChoice::from_name("auto").is_ok());
    for format in FORMATS {
        assert_eq!(
            FormatChoice::from_name(format),
            Ok(FormatChoice::Named((*format).to_string()))
        );
    }
}

#[test]
fn v0_3_lines_cut_before_the_output_throughput_are_no_result() {
    let text = "Successful requests: 10\nBenchmark duration: 2.500000 s\nRequest throughput: 4.00 requests/s\n";
    let error = auto(text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "no complete vllm-serving-lines result: the result lines at line 1 lack output_throughput_tok_s (log cut off?)"
    );
}

#[test]
fn two_v0_3_blocks_in_a_row_stay_apart() {
    let block = |rate: &str| {
        format!(
            "Successful requests: 10\nBenchmark duration: 2.5 s\nTotal input tokens: 100\nTotal generated tokens: 50\n\
             Request throughput: {rate} requests/s\nInput token throughput: 40.00 tokens/s\n\
             Output token throughput: 20.00 tokens/s\nMean TTFT: 5.00 ms\nMedian TTFT: 4.00 ms\nP99 TTFT: 9.00 ms\n"
        )
    };
    let parsed = auto(&format!("{}{}", block("4.00"), block("5.00"))).unwrap();
    assert_eq!(number(&parsed, "request_throughput_rps"), Some(5.0));
    assert_eq!(number(&parsed, "ttft_ms.p99"), Some(9.0));
    assert_eq!(parsed.warnings, vec!["two result blocks; used the last"]);
}

#[test]
fn one_batch_runs_before_benchmark_are_warm_up() {
    let run = "Prefill. latency: 0.40000 s, throughput:  10000.00 token/s\nDecode.  median latency: 0.01000 s, median throughput:    400.00 token/s\nTotal. latency:  1.000 s, throughput:   4000.00 token/s\n";
    let error = auto(&format!("Warmup ...\n{run}")).unwrap_err();
    assert!(
        error.to_string().contains("`Benchmark ...` never started"),
        "{error}"
    );
    let error = auto(&format!(
        "Warmup ...\n{run}Benchmark ...\nPrefill. latency: 0.3 s, throughput: 1.0 token/s\n{CRASH}"
    ))
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("printed `Prefill.` but no `Total.` line"),
        "{error}"
    );
    let parsed = auto(&format!(
        "Warmup ...\n{run}Benchmark ...\n{}",
        run.replace("1.000 s", "2.000 s")
    ))
    .unwrap();
    assert_eq!(number(&parsed, "latency_s.avg"), Some(2.0));
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
}

#[test]
fn json_results_need_their_key_metric() {
    let error = auto(r#"{"completed": 10, "duration": 2.5}"#).unwrap_err();
    assert_eq!(
        error.to_string(),
        "no complete vllm-serving-json result: the JSON result lacks request_throughput_rps"
    );
    let error = auto(r#"{"completed": 10, "#).unwrap_err();
    assert!(matches!(error, ParseError::InvalidJson { .. }), "{error:?}");
    let parsed =
        auto(r#"{"request_inthroughput": 3.5, "completed": 10, "request_goodput:": null}"#)
            .unwrap();
    assert_eq!(number(&parsed, "request_throughput_rps"), Some(3.5));
    assert!(!parsed.metrics.contains_key("request_goodput_rps"));
}

#[test]
fn custom_metrics_join_a_built_in_result() {
    let custom = [CustomPattern {
        regex: r"^GPU memory: (?P<gpu_memory_gib>[0-9.]+) GiB$".into(),
        units: [("gpu_memory_gib".to_string(), "GiB".to_string())].into(),
    }];
    let text = format!("GPU memory: 71.5 GiB\r\n{}", table("4.00", true));
    let parsed = parse_log(&text, &FormatChoice::Auto, &custom).unwrap();
    assert_eq!(parsed.format, "vllm-serving-table");
    assert_eq!(number(&parsed, "gpu_memory_gib"), Some(71.5));
    assert_eq!(number(&parsed, "request_throughput_rps"), Some(4.0));
}

#[test]
fn custom_metrics_do_not_rescue_a_cut_off_table() {
    let custom = [CustomPattern {
        regex: r"Mean TTFT \(ms\):\s+(?P<ttft_ms__mean>\S+)".into(),
        units: Default::default(),
    }];
    let error = parse_log(&table("4.00", false), &FormatChoice::Auto, &custom).unwrap_err();
    assert_eq!(error.format(), Some("vllm-serving-table"));
}

#[test]
fn custom_only_and_its_errors() {
    let custom = [CustomPattern {
        regex: r"took (?P<latency_s>\S+) s".into(),
        units: Default::default(),
    }];
    let parsed = parse_log(
        "took 1.25 s\n",
        &FormatChoice::Named("custom".into()),
        &custom,
    )
    .unwrap();
    assert_eq!(
        (parsed.format.as_str(), number(&parsed, "latency_s")),
        ("custom", Some(1.25))
    );
    let error = parse_log("nothing\n", &FormatChoice::Auto, &custom).unwrap_err();
    assert_eq!(
        error.to_string(),
        "no complete custom result: no custom metric pattern matched"
    );
    let parsed = parse_log("took fast s\ntook 2 s\n", &FormatChoice::Auto, &custom).unwrap();
    assert_eq!(number(&parsed, "latency_s"), Some(2.0));
    let error = parse_log("took x s\n", &FormatChoice::Auto, &custom).unwrap_err();
    assert!(matches!(error, ParseError::NoResult { .. }));
}

#[test]
fn custom_patterns_are_validated_up_front() {
    let bad_units = [CustomPattern {
        regex: r"took (?P<latency_s>\S+) s".into(),
        units: [("latency_ms".to_string(), "ms".to_string())].into(),
    }];
    let error = validate_custom_patterns(&bad_units).unwrap_err();
    assert_eq!(
        error.to_string(),
        "custom pattern #1 (`took (?P<latency_s>\\S+) s`): `units` names `latency_ms`, which is not a capture of the pattern"
    );
    let bad_regex = [CustomPattern {
        regex: "(?P<x>".into(),
        units: Default::default(),
    }];
    assert!(matches!(
        validate_custom_patterns(&bad_regex),
        Err(ParseError::InvalidCustomPattern { index: 1, .. })
    ));
    let error = parse_log("x", &FormatChoice::Auto, &bad_regex).unwrap_err();
    assert!(matches!(error, ParseError::InvalidCustomPattern { .. }));
    let unknown_field = toml::from_str::<CustomPattern>("regex = 'a'\nunit = {}\n");
    assert!(unknown_field.is_err());
}

#[test]
fn metric_values_serialize_whole_numbers_as_integers() {
    let parsed = auto(&table("4.00", true)).unwrap();
    let json = serde_json::to_value(&parsed.metrics).unwrap();
    assert_eq!(json["successful_requests"], serde_json::json!(10));
    assert_eq!(json["duration_s"], serde_json::json!(2.5));
    assert_eq!(json["ttft_ms"], serde_json::json!({"mean": 12, "p99": 30}));
    let back: std::collections::BTreeMap<String, MetricValue> =
        serde_json::from_value(json).unwrap();
    assert_eq!(back, parsed.metrics);
}

#[test]
fn flatten_skips_nulls() {
    let text = table("nan", true);
    let parsed = auto(&text).unwrap();
    let keys: Vec<String> = parsed.flatten().into_iter().map(|(key, _)| key).collect();
    assert_eq!(
        keys,
        vec![
            "duration_s",
            "successful_requests",
            "ttft_ms.mean",
            "ttft_ms.p99"
        ]
    );
}

#[test]
fn a_log_prefix_on_every_table_line_is_stripped() {
    let clean = auto(&table("4.00", true)).unwrap();
    let compose: String = table("4.00", true)
        .lines()
        .map(|line| format!("client-1  | {line}\n"))
        .collect();
    assert_eq!(auto(&compose).unwrap(), clean);
    let timestamped: String = table("4.00", true)
        .lines()
        .enumerate()
        .map(|(index, line)| {
            format!(
                "2025-05-12T10:21:{:02}.{:09}Z {line}\n",
                index * 7 % 60,
                index * 123_457
            )
        })
        .collect();
    assert_eq!(auto(&timestamped).unwrap(), clean);
    let cut: String = table("4.00", false)
        .lines()
        .map(|line| format!("client-1  | {line}\n"))
        .collect();
    assert!(auto(&format!("{cut}client-1  | {}\n", "-".repeat(50))).is_err());
}
