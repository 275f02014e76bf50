//! One metric vocabulary across every era: each row of the table in `docs/parsers.md`
//! ("Vocabulary across eras": era × printed line → key) is tested here with a log written the
//! way that era's script writes it, and the table in the docs must list exactly these rows.
//!
//! The logs are built with the scripts' own format strings, reproduced in Rust:
//! - vLLM `benchmarks/benchmark_serving.py`: 2023 (`print(f"Throughput: {…:.2f} requests/s")`,
//!   `Average latency: {…:.2f} s`), v0.3 (`Request throughput: {…:.2f} requests/s`, `Benchmark
//!   duration: {…:2f} s`, `Mean TTFT: {…:.2f} ms`), v0.4 on and `vllm bench serve` (the
//!   `"{:<40} {:<10.2f}".format(…)` table between `{s:{c}^{n}}` rules of 50 `=`);
//! - vLLM `benchmarks/benchmark_throughput.py` / `vllm bench throughput`: `Throughput: {…:.2f}
//!   requests/s, {…:.2f} tokens/s` (2023, prompt + output tokens), then `…, {…:.2f} total
//!   tokens/s, {…:.2f} output tokens/s` and `Total num prompt tokens:  {…}`;
//! - vLLM `benchmarks/benchmark_latency.py` / `vllm bench latency`: `Avg latency:
//!   {np.mean(latencies)} seconds` (unformatted floats), then `{percentage}% percentile latency:
//!   {percentile} seconds` for percentages `[10, 25, 50, 75, 90]`, later `[…, 99]`;
//! - SGLang `python -m sglang.bench_serving`: the same table with its own rows;
//! - SGLang `python -m sglang.bench_one_batch`: `Warmup ...`, `Benchmark ...`, `Prefill. latency:
//!   {:6.5f} s, throughput: {:9.2f} token/s`, `Decode.  median latency: …`, `Total. latency:
//!   {:6.3f} s, throughput: {:9.2f} token/s`.
//!
//! Every log carries the noise real logs carry: engine INFO lines, a tqdm bar redrawn with `\r`,
//! ANSI colours, trailing spaces, CR-LF endings and a `nan` in an unrelated row.

use perfarena_core::parse::{FormatChoice, ParsedMetrics, canonical_metric, parse_log};

/// One row of the docs table: era, the printed line (as the docs show it), the key it sets.
struct Row {
    era: &'static str,
    line: &'static str,
    key: &'static str,
    /// Builds a whole log of that era; the row's value is 12.5 (a count: 12).
    log: fn() -> String,
    value: f64,
}

const ROWS: &[Row] = &[
    Row {
        era: "vLLM serving 2023",
        line: "Throughput: X requests/s",
        key: "request_throughput_rps",
        log: serving_2023,
        value: 12.5,
    },
    Row {
        era: "vLLM serving 2023",
        line: "Average latency: X s",
        key: "latency_s.avg",
        log: serving_2023,
        value: 3.25,
    },
    Row {
        era: "vLLM serving 2023",
        line: "Average latency per output token: X s",
        key: "latency_per_output_token_s.avg",
        log: serving_2023,
        value: 0.04,
    },
    Row {
        era: "vLLM serving v0.3",
        line: "Request throughput: X requests/s",
        key: "request_throughput_rps",
        log: serving_v03,
        value: 12.5,
    },
    Row {
        era: "vLLM serving v0.3",
        line: "Output token throughput: X tokens/s",
        key: "output_throughput_tok_s",
        log: serving_v03,
        value: 2400.75,
    },
    Row {
        era: "vLLM serving v0.3",
        line: "Successful requests: N",
        key: "successful_requests",
        log: serving_v03,
        value: 100.0,
    },
    Row {
        era: "vLLM serving v0.3",
        line: "P99 TTFT: X ms",
        key: "ttft_ms.p99",
        log: serving_v03,
        value: 88.5,
    },
    Row {
        era: "vLLM serving table (v0.4+, vllm bench serve)",
        line: "Request throughput (req/s): X",
        key: "request_throughput_rps",
        log: serving_table,
        value: 12.5,
    },
    Row {
        era: "vLLM serving table (v0.4+, vllm bench serve)",
        line: "Output token throughput (tok/s): X",
        key: "output_throughput_tok_s",
        log: serving_table,
        value: 2400.75,
    },
    Row {
        era: "vLLM serving table (v0.4+, vllm bench serve)",
        line: "Total Token throughput (tok/s): X",
        key: "total_throughput_tok_s",
        log: serving_table,
        value: 5100.25,
    },
    Row {
        era: "vLLM serving table (v0.4+, vllm bench serve)",
        line: "Failed requests: N",
        key: "failed_requests",
        log: serving_table,
        value: 2.0,
    },
    Row {
        era: "vLLM serving table (v0.4+, vllm bench serve)",
        line: "Median TPOT (ms): X",
        key: "tpot_ms.median",
        log: serving_table,
        value: 17.25,
    },
    Row {
        era: "vLLM serving table (v0.4+, vllm bench serve)",
        line: "P99.9 ITL (ms): X",
        key: "itl_ms.p99.9",
        log: serving_table,
        value: 140.5,
    },
    Row {
        era: "vLLM serving table (v0.4+, vllm bench serve)",
        line: "Std E2EL (ms): X",
        key: "e2el_ms.std",
        log: serving_table,
        value: 310.5,
    },
    Row {
        era: "SGLang bench_serving",
        line: "Total token throughput (tok/s): X",
        key: "total_throughput_tok_s",
        log: sglang_serving,
        value: 5100.25,
    },
    Row {
        era: "SGLang bench_serving",
        line: "Mean E2E Latency (ms): X",
        key: "e2el_ms.mean",
        log: sglang_serving,
        value: 2950.5,
    },
    Row {
        era: "vLLM throughput 2023",
        line: "Throughput: X requests/s, Y tokens/s",
        key: "request_throughput_rps",
        log: throughput_2023,
        value: 12.5,
    },
    Row {
        era: "vLLM throughput 2023",
        line: "Throughput: X requests/s, Y tokens/s",
        key: "total_throughput_tok_s",
        log: throughput_2023,
        value: 6400.5,
    },
    Row {
        era: "vLLM throughput 2024+ (vllm bench throughput)",
        line: "Throughput: X requests/s, Y total tokens/s, Z output tokens/s",
        key: "total_throughput_tok_s",
        log: throughput_new,
        value: 6400.5,
    },
    Row {
        era: "vLLM throughput 2024+ (vllm bench throughput)",
        line: "Throughput: X requests/s, Y total tokens/s, Z output tokens/s",
        key: "output_throughput_tok_s",
        log: throughput_new,
        value: 3200.25,
    },
    Row {
        era: "vLLM throughput 2024+ (vllm bench throughput)",
        line: "Total num prompt tokens:  N",
        key: "total_input_tokens",
        log: throughput_new,
        value: 256000.0,
    },
    Row {
        era: "vLLM latency 2023",
        line: "Avg latency: X seconds",
        key: "latency_s.avg",
        log: latency_2023,
        value: 1.9283738136291504,
    },
    Row {
        era: "vLLM latency 2024",
        line: "N% percentile latency: X seconds (N = 10, 25, 50, 75, 90)",
        key: "latency_s.p90",
        log: latency_2024,
        value: 2.0491552352905273,
    },
    Row {
        era: "vLLM latency 2024+ (vllm bench latency)",
        line: "99% percentile latency: X seconds",
        key: "latency_s.p99",
        log: latency_2025,
        value: 2.1337890625,
    },
    Row {
        era: "SGLang bench_one_batch",
        line: "Total. latency: X s, throughput: Y token/s (the last, after Benchmark ...)",
        key: "total_throughput_tok_s",
        log: one_batch,
        value: 2048.75,
    },
    Row {
        era: "SGLang bench_one_batch",
        line: "Total. latency: X s, throughput: Y token/s (the last, after Benchmark ...)",
        key: "latency_s.avg",
        log: one_batch,
        value: 4.125,
    },
];

/// Engine lines, a progress bar redrawn with `\r`, and ANSI colour, as real logs have them.
fn noise() -> String {
    let mut out = String::new();
    out.push_str("INFO 06-11 10:02:03 [api_server.py:1043] vLLM API server version 0.9.1\n");
    out.push_str("\x1b[32mINFO\x1b[0m:     Started server process [4242]\n");
    for done in [0, 50, 100] {
        out.push_str(&format!(
            "\r{done:3}%|{:<10}| {}/100 [00:0{}<00:00, 31.41it/s]",
            "█".repeat(done / 10),
            done,
            done / 50
        ));
    }
    out.push('\n');
    out
}

/// Python's `"{:<40} {:<10.2f}".format(label, value)`: padded label, padded value (trailing
/// spaces included).
fn row2(label: &str, value: f64) -> String {
    format!("{label:<40} {:<10}\n", format!("{value:.2}"))
}

fn row_int(label: &str, value: u64) -> String {
    format!("{label:<40} {value:<10}\n")
}

/// Python's `"{s:{c}^{n}}".format(s=title, n=50, c=fill)`.
fn rule(title: &str, fill: char) -> String {
    let pad = 50usize.saturating_sub(title.chars().count());
    let left = pad / 2;
    format!(
        "{}{title}{}\n",
        fill.to_string().repeat(left),
        fill.to_string().repeat(pad - left)
    )
}

fn crlf(text: String) -> String {
    text.replace('\n', "\r\n")
}

fn serving_2023() -> String {
    let mut log = noise();
    log.push_str(&format!("Total time: {:.2} s\n", 8.0));
    log.push_str(&format!("Throughput: {:.2} requests/s\n", 12.5));
    log.push_str(&format!("Average latency: {:.2} s\n", 3.25));
    log.push_str(&format!("Average latency per token: {:.2} s\n", 0.01));
    log.push_str(&format!(
        "Average latency per output token: {:.2} s\n",
        0.04
    ));
    log
}

fn serving_v03() -> String {
    let mut log = noise();
    log.push_str("Successful requests: 100\n");
    // `{benchmark_duration:2f}`: six decimals, as that era printed it.
    log.push_str(&format!("Benchmark duration: {:.6} s\n", 8.0));
    log.push_str("Total input tokens: 23100\n");
    log.push_str("Total generated tokens: 19206\n");
    log.push_str(&format!("Request throughput: {:.2} requests/s\n", 12.5));
    log.push_str(&format!("Input token throughput: {:.2} tokens/s\n", 2887.5));
    log.push_str(&format!(
        "Output token throughput: {:.2} tokens/s\n",
        2400.75
    ));
    log.push_str(&format!("Mean TTFT: {:.2} ms\n", 31.5));
    log.push_str(&format!("Median TTFT: {:.2} ms\n", 29.0));
    log.push_str(&format!("P99 TTFT: {:.2} ms\n", 88.5));
    log.push_str(&format!("Mean TPOT: {:.2} ms\n", 18.0));
    log.push_str(&format!("Median TPOT: {:.2} ms\n", 17.25));
    log.push_str(&format!("P99 TPOT: {:.2} ms\n", 40.0));
    crlf(log)
}

fn serving_table() -> String {
    let mut log = noise();
    log.push_str(&rule(" Serving Benchmark Result ", '='));
    log.push_str(&row_int("Successful requests:", 98));
    log.push_str(&row_int("Failed requests:", 2));
    log.push_str(&row2("Benchmark duration (s):", 8.0));
    log.push_str(&row_int("Total input tokens:", 23100));
    log.push_str(&row_int("Total generated tokens:", 19206));
    log.push_str(&row2("Request throughput (req/s):", 12.5));
    log.push_str(&row2("Output token throughput (tok/s):", 2400.75));
    log.push_str(&row2("Total Token throughput (tok/s):", 5100.25));
    log.push_str(&rule("Time to First Token", '-'));
    log.push_str(&row2("Mean TTFT (ms):", 31.5));
    log.push_str(&row2("Median TTFT (ms):", 29.0));
    log.push_str(&row2("P99 TTFT (ms):", 88.5));
    log.push_str(&rule("Time per Output Token (excl. 1st token)", '-'));
    log.push_str(&row2("Mean TPOT (ms):", 18.0));
    log.push_str(&row2("Median TPOT (ms):", 17.25));
    log.push_str(&row2("P99 TPOT (ms):", 40.0));
    log.push_str(&rule("Inter-token Latency", '-'));
    log.push_str(&row2("Mean ITL (ms):", 17.9));
    log.push_str(&row2("Median ITL (ms):", 16.5));
    // `--metric-percentiles 99,99.9`: the percentile as printed, `P99.9`.
    log.push_str(&row2("P99 ITL (ms):", 120.0));
    log.push_str(&row2("P99.9 ITL (ms):", 140.5));
    log.push_str(&rule("End-to-end Latency", '-'));
    log.push_str(&row2("Mean E2EL (ms):", 2950.5));
    log.push_str(&row2("Std E2EL (ms):", 310.5));
    log.push_str(&format!("{:<40} {:<10}\n", "Max E2EL (ms):", "nan"));
    log.push_str(&"=".repeat(50));
    log.push('\n');
    log.push_str("INFO:     Shutting down\n");
    log
}

fn sglang_serving() -> String {
    let mut log = noise();
    log.push('\n');
    log.push_str(&rule(" Serving Benchmark Result ", '='));
    log.push_str(&format!("{:<40} {:<10}\n", "Backend:", "sglang"));
    log.push_str(&format!("{:<40} {:<10}\n", "Traffic request rate:", "inf"));
    log.push_str(&format!(
        "{:<40} {:<10}\n",
        "Max request concurrency:", "not set"
    ));
    log.push_str(&row_int("Successful requests:", 100));
    log.push_str(&row2("Benchmark duration (s):", 8.0));
    log.push_str(&row_int("Total input tokens:", 23100));
    log.push_str(&row_int("Total generated tokens:", 19206));
    log.push_str(&row_int("Total generated tokens (retokenized):", 19190));
    log.push_str(&row2("Request throughput (req/s):", 12.5));
    log.push_str(&row2("Input token throughput (tok/s):", 2887.5));
    log.push_str(&row2("Output token throughput (tok/s):", 2400.75));
    log.push_str(&row2("Total token throughput (tok/s):", 5100.25));
    log.push_str(&row2("Concurrency:", 36.9));
    log.push_str(&rule("End-to-End Latency", '-'));
    log.push_str(&row2("Mean E2E Latency (ms):", 2950.5));
    log.push_str(&row2("Median E2E Latency (ms):", 2800.0));
    log.push_str(&rule("Time to First Token", '-'));
    log.push_str(&row2("Mean TTFT (ms):", 31.5));
    log.push_str(&row2("Median TTFT (ms):", 29.0));
    log.push_str(&row2("P99 TTFT (ms):", 88.5));
    log.push_str(&rule("Inter-Token Latency", '-'));
    log.push_str(&row2("Mean ITL (ms):", 17.9));
    log.push_str(&row2("Median ITL (ms):", 16.5));
    log.push_str(&row2("P95 ITL (ms):", 30.0));
    log.push_str(&row2("P99 ITL (ms):", 120.0));
    log.push_str(&row2("Max ITL (ms):", 400.0));
    log.push_str(&"=".repeat(50));
    log.push('\n');
    crlf(log)
}

fn throughput_2023() -> String {
    let mut log = noise();
    log.push_str(&format!(
        "Throughput: {:.2} requests/s, {:.2} tokens/s\n",
        12.5, 6400.5
    ));
    log
}

fn throughput_new() -> String {
    let mut log = noise();
    log.push_str(&format!(
        "Throughput: {:.2} requests/s, {:.2} total tokens/s, {:.2} output tokens/s\n",
        12.5, 6400.5, 3200.25
    ));
    log.push_str("Total num prompt tokens:  256000\n");
    log.push_str("Total num output tokens:  128000\n");
    crlf(log)
}

/// `print(f'Avg latency: {np.mean(latencies)} seconds')`, then percentiles of its era.
fn latency(percentages: &[u32]) -> String {
    let mut log = noise();
    log.push_str("Avg latency: 1.9283738136291504 seconds\n");
    let values = [1.801, 1.85, 1.9021, 1.99, 2.0491552352905273, 2.1337890625];
    for (percentage, value) in percentages.iter().zip(values) {
        log.push_str(&format!(
            "{percentage}% percentile latency: {value} seconds\n"
        ));
    }
    log
}

fn latency_2023() -> String {
    latency(&[])
}

fn latency_2024() -> String {
    latency(&[10, 25, 50, 75, 90])
}

fn latency_2025() -> String {
    latency(&[10, 25, 50, 75, 90, 99])
}

/// `rank_print(f"Prefill. latency: {prefill_latency:6.5f} s, throughput: {throughput:9.2f}
/// token/s")`, one decode line per step, the median and the `Total.` line.
fn one_batch_run(total_latency: f64, total_throughput: f64) -> String {
    let mut log = String::new();
    log.push_str(&format!(
        "Prefill. latency: {:6.5} s, throughput: {:9.2} token/s\n",
        0.37183, 11014.2
    ));
    for step in 0..3 {
        log.push_str(&format!(
            "Decode {step}. Batch size: 32, latency: {:6.5} s, throughput: {:9.2} token/s\n",
            0.01175, 2723.4
        ));
    }
    log.push_str(&format!(
        "Decode.  median latency: {:6.5} s, median throughput: {:9.2} token/s\n",
        0.01175, 2723.4
    ));
    log.push_str(&format!(
        "Total. latency: {total_latency:6.3} s, throughput: {total_throughput:9.2} token/s\n"
    ));
    log
}

fn one_batch() -> String {
    let mut log = noise();
    log.push_str("Warmup ...\n");
    // The warm-up's numbers are not the result, however good they look.
    log.push_str(&one_batch_run(9.999, 99999.0));
    log.push_str("Benchmark ...\n");
    log.push_str(&one_batch_run(5.0, 1000.0));
    log.push_str(&one_batch_run(4.125, 2048.75));
    log
}

fn value_of(parsed: &ParsedMetrics, key: &str) -> Option<f64> {
    parsed
        .flatten()
        .into_iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

#[test]
fn every_row_of_the_era_table_reads_its_key() {
    for row in ROWS {
        let log = (row.log)();
        let parsed = parse_log(&log, &FormatChoice::Auto, &[])
            .unwrap_or_else(|e| panic!("{} / {}: {e}", row.era, row.line));
        let got = value_of(&parsed, row.key);
        assert_eq!(
            got,
            Some(row.value),
            "{} / {} → {}: {:?}",
            row.era,
            row.line,
            row.key,
            parsed.flatten()
        );
        // No key of an earlier vocabulary survives in any era's output.
        for (key, _) in parsed.flatten() {
            assert_eq!(canonical_metric(&key), None, "{}: old key {key}", row.era);
        }
    }
}

#[test]
fn eras_print_only_the_percentiles_they_print() {
    let keys = |log: String| -> Vec<String> {
        let parsed = parse_log(&log, &FormatChoice::Auto, &[]).unwrap();
        parsed.flatten().into_iter().map(|(key, _)| key).collect()
    };
    assert_eq!(keys(latency_2023()), ["latency_s.avg"]);
    let v2024 = keys(latency_2024());
    assert!(!v2024.iter().any(|k| k == "latency_s.p99"), "{v2024:?}");
    assert_eq!(v2024.len(), 6);
    assert_eq!(keys(latency_2025()).len(), 7);
}

#[test]
fn one_batch_uses_the_last_run_after_benchmark_not_the_warmup() {
    let parsed = parse_log(&one_batch(), &FormatChoice::Auto, &[]).unwrap();
    assert_eq!(value_of(&parsed, "total_throughput_tok_s"), Some(2048.75));
    assert!(
        parsed
            .warnings
            .iter()
            .any(|w| w == "two result blocks; used the last"),
        "{:?}",
        parsed.warnings
    );
}

/// The rows of the docs table, as `(era, printed line, key)`.
fn docs_rows() -> Vec<(String, String, String)> {
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/parsers.md"),
    )
    .expect("docs/parsers.md");
    let section = docs
        .split("## Vocabulary across eras")
        .nth(1)
        .expect("docs/parsers.md has a `## Vocabulary across eras` section");
    section
        .lines()
        .skip_while(|line| !line.starts_with("| era"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().trim_matches('`').to_string())
                .collect();
            assert_eq!(cells.len(), 3, "{line}");
            (cells[0].clone(), cells[1].clone(), cells[2].clone())
        })
        .collect()
}

#[test]
fn the_docs_table_lists_exactly_the_tested_rows() {
    let tested: Vec<(String, String, String)> = ROWS
        .iter()
        .map(|row| (row.era.into(), row.line.into(), row.key.into()))
        .collect();
    assert_eq!(docs_rows(), tested);
}

#[test]
fn docs_import_lists_every_foreign_metric_name() {
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/import.md"),
    )
    .expect("docs/import.md");
    for (their, ours, _) in perfarena_core::parse::FOREIGN_METRICS {
        let row = format!("| `{their}` | `{ours}`");
        assert!(docs.contains(&row), "docs/import.md lacks {row}");
    }
    for (old, new) in perfarena_core::parse::METRIC_ALIASES {
        let row = format!("| `{old}` | `{new}`");
        assert!(docs.contains(&row), "docs/import.md lacks {row}");
    }
}

#[test]
fn an_old_name_in_metric_primary_is_read_as_the_new_one_with_a_note() {
    let suite = perfarena_core::Suite::from_toml_str(
        "[metric]\nprimary = \"requests_per_s\"\n",
        "perfarena.toml",
    )
    .unwrap();
    assert_eq!(suite.metric.primary, "request_throughput_rps");
    let note = suite.metric.primary_note.as_deref().unwrap();
    assert!(
        note.starts_with("perfarena.toml: metric.primary = \"requests_per_s\" is the old name of `request_throughput_rps`"),
        "{note}"
    );
    let current = perfarena_core::Suite::from_toml_str(
        "[metric]\nprimary = \"request_throughput_rps\"\n",
        "perfarena.toml",
    )
    .unwrap();
    assert_eq!(current.metric.primary_note, None);
    // Samples stored under the old name are still read under the new one.
    let mut attempt = perfarena_core::AttemptRecord::new(
        perfarena_core::CommitId::parse("35fad35a").unwrap(),
        perfarena_core::VariantKind::Baseline,
        0,
        perfarena_core::AttemptStatus::Ok,
    );
    attempt.samples.push(("requests_per_s".into(), 4.5));
    assert_eq!(attempt.sample("request_throughput_rps"), Some(4.5));
}
