//! Property tests of the parsers: any subset of known table rows in any order parses to exactly
//! those metrics, whatever the noise; a table cut anywhere before its closing line is never a
//! result; and no input, however mangled, makes a parser panic.

use perfarena_core::parse::{FormatChoice, parse_log};
use proptest::prelude::*;

/// Known rows: the label as printed and the flattened metric key it becomes.
const ROWS: &[(&str, &str)] = &[
    ("Successful requests:", "successful_requests"),
    ("Failed requests:", "failed_requests"),
    ("Benchmark duration (s):", "duration_s"),
    ("Total input tokens:", "total_input_tokens"),
    ("Total generated tokens:", "total_output_tokens"),
    ("Request throughput (req/s):", "request_throughput_rps"),
    ("Request goodput (req/s):", "request_goodput_rps"),
    ("Input token throughput (tok/s):", "input_throughput_tok_s"),
    (
        "Output token throughput (tok/s):",
        "output_throughput_tok_s",
    ),
    ("Total Token throughput (tok/s):", "total_throughput_tok_s"),
    (
        "Peak output token throughput (tok/s):",
        "peak_output_throughput_tok_s",
    ),
    ("Peak concurrent requests:", "peak_concurrent_requests"),
    ("Mean TTFT (ms):", "ttft_ms.mean"),
    ("Median TTFT (ms):", "ttft_ms.median"),
    ("P99 TTFT (ms):", "ttft_ms.p99"),
    ("P90 TTFT (ms):", "ttft_ms.p90"),
    ("Mean TPOT (ms):", "tpot_ms.mean"),
    ("Median TPOT (ms):", "tpot_ms.median"),
    ("P99 TPOT (ms):", "tpot_ms.p99"),
    ("Mean ITL (ms):", "itl_ms.mean"),
    ("Median ITL (ms):", "itl_ms.median"),
    ("P95 ITL (ms):", "itl_ms.p95"),
    ("P99.9 ITL (ms):", "itl_ms.p99.9"),
    ("Mean E2EL (ms):", "e2el_ms.mean"),
    ("Median E2EL (ms):", "e2el_ms.median"),
    ("P50 E2EL (ms):", "e2el_ms.p50"),
    ("Acceptance rate (%):", "spec_acceptance_rate_pct"),
    ("Acceptance length:", "spec_acceptance_length"),
];

/// Lines a real log may carry between rows; none of them may become a metric.
const NOISE: &[&str] = &[
    "",
    "---------------Time to First Token----------------",
    "-----Time per Output Token (excl. 1st token)------",
    "INFO 01-02 03:04:05 [loggers.py:116] Engine 000: Avg prompt throughput: 512.0 tokens/s",
    "WARNING: something odd: 12.5",
    "Throughput: not a number",
    "Per-position acceptance (%):",
];

/// A table with the given rows (index into `ROWS`, value) and noise after some rows.
fn render(rows: &[(usize, f64, Option<usize>)], crlf: bool) -> (String, usize) {
    let mut text = String::from("Namespace(backend='vllm', num_prompts=100)\n");
    text += &format!("{:=^50}\n", " Serving Benchmark Result ");
    for &(index, value, noise) in rows {
        text += &format!("{:<40} {:<10.2}\n", ROWS[index].0, value);
        if let Some(noise) = noise {
            text += NOISE[noise % NOISE.len()];
            text += "\n";
        }
    }
    let closing_at = text.len();
    text += &"=".repeat(50);
    text += "\n";
    if crlf {
        (
            text.replace('\n', "\r\n"),
            closing_at + text[..closing_at].matches('\n').count(),
        )
    } else {
        (text, closing_at)
    }
}

fn rows_strategy() -> impl Strategy<Value = Vec<(usize, f64, Option<usize>)>> {
    proptest::sample::subsequence((0..ROWS.len()).collect::<Vec<_>>(), 1..=ROWS.len())
        .prop_shuffle()
        .prop_flat_map(|indices| {
            let n = indices.len();
            (
                Just(indices),
                proptest::collection::vec(0.0f64..1.0e6, n),
                proptest::collection::vec(proptest::option::weighted(0.3, 0..NOISE.len()), n),
            )
        })
        .prop_map(|(indices, values, noise)| {
            indices
                .into_iter()
                .zip(values)
                .zip(noise)
                .map(|((index, value), noise)| (index, value, noise))
                .collect()
        })
}

proptest! {
    #[test]
    fn any_subset_of_known_rows_in_any_order_parses(rows in rows_strategy(), crlf in any::<bool>()) {
        let (text, _) = render(&rows, crlf);
        let parsed = parse_log(&text, &FormatChoice::Auto, &[]).expect("a complete table parses");
        prop_assert_eq!(parsed.format.as_str(), "vllm-serving-table");
        let mut expected: Vec<(String, f64)> = rows
            .iter()
            .map(|&(index, value, _)| (ROWS[index].1.to_string(), format!("{value:.2}").parse::<f64>().unwrap()))
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        prop_assert_eq!(parsed.flatten(), expected);
        let failed = rows.iter().any(|&(index, value, _)| index == 1 && format!("{value:.2}") != "0.00");
        let zero = rows.iter().any(|&(index, value, _)| index == 0 && format!("{value:.2}") == "0.00");
        prop_assert_eq!(parsed.warnings.len(), usize::from(failed) + usize::from(zero));
    }

    #[test]
    fn a_table_cut_before_its_closing_line_is_never_a_result(rows in rows_strategy(), cut in 0.0f64..1.0) {
        let (text, closing_at) = render(&rows, false);
        let mut at = (closing_at as f64 * cut) as usize;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let result = parse_log(&text[..at], &FormatChoice::Auto, &[]);
        prop_assert!(result.is_err(), "cut at {} of {}: {:?}", at, text.len(), result);
    }
}

/// Pieces of every format, to be glued together at random.
const PIECES: &[&str] = &[
    "============ Serving Benchmark Result ============\n",
    "==================================================\n",
    "Successful requests:                     10        \n",
    "Mean TTFT (ms):                          nan       \n",
    "Request throughput: 4.1 requests/s\n",
    "Output token throughput: 2.0 tokens/s\n",
    "Throughput: 4.1 requests/s, 9 tokens/s\n",
    "Throughput: 1 requests/s\n",
    "Average latency: 1.0 s\n",
    "Avg latency: 1.5 seconds\n",
    "50% percentile latency: 1.4 seconds\n",
    "Warmup ...\n",
    "Benchmark ...\n",
    "Prefill. latency: 0.3 s, throughput: 1.0 token/s\n",
    "Total. latency: 1.0 s, throughput: 2.0 token/s\n",
    "Traceback (most recent call last):\n",
    "ModuleNotFoundError: No module named 'vllm._C'\n",
    "{\"request_throughput\": NaN, \"completed\": 1}",
    "[{",
    "\r",
    "\x1b[3",
    "é",
    ": ",
    "(",
    ")",
    "\n",
];

fn mangled() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(PIECES).prop_map(str::to_string),
            1 => any::<String>(),
        ],
        0..24,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn no_input_makes_a_parser_panic(text in mangled(), format in proptest::sample::select(perfarena_core::parse::FORMATS)) {
        let _ = parse_log(&text, &FormatChoice::Auto, &[]);
        let _ = parse_log(&text, &FormatChoice::Named(format.to_string()), &[]);
        let custom = [perfarena_core::parse::CustomPattern { regex: r"(?P<x>\d+)".into(), units: Default::default() }];
        let _ = parse_log(&text, &FormatChoice::Auto, &custom);
    }
}
