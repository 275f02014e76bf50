//! Snapshot tests: every fixture log under `tests/fixtures/parse/` parsed with `--format auto`,
//! as the JSON that `perfarena parse --json` prints for it (less the file name).

use std::path::{Path, PathBuf};

use perfarena_core::parse::{CustomPattern, FormatChoice, ParseError, ParsedMetrics, parse_log};
use serde_json::{Value, json};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parse")
}

fn read_fixture(name: &str) -> String {
    let bytes = std::fs::read(fixture_dir().join(name)).expect("fixture exists");
    String::from_utf8(bytes).expect("fixture is UTF-8")
}

/// The parse outcome as the CLI reports it.
fn report(result: Result<ParsedMetrics, ParseError>) -> Value {
    match result {
        Ok(parsed) => json!({
            "format": parsed.format,
            "ok": true,
            "metrics": parsed.metrics,
            "warnings": parsed.warnings,
        }),
        Err(error) => json!({
            "format": error.format(),
            "ok": false,
            "error": error.to_string(),
        }),
    }
}

fn check(name: &str) {
    let text = read_fixture(name);
    let value = report(parse_log(&text, &FormatChoice::Auto, &[]));
    snapshot(name, value);
}

/// Snapshots live in `tests/snapshots/parse/`, one per fixture, named after it.
fn snapshot(name: &str, value: Value) {
    insta::with_settings!({ snapshot_path => "snapshots/parse", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!(name, value);
    });
}

macro_rules! fixtures {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check($file);
            }
        )*

        /// Every fixture file has a snapshot test above.
        const COVERED: &[&str] = &[$($file,)*];
    };
}

fixtures! {
    vllm_serving_table_v0_4 => "vllm_serving_table_v0.4.log",
    vllm_serving_table_v0_6 => "vllm_serving_table_v0.6.log",
    vllm_bench_serve_crlf => "vllm_bench_serve_crlf.log",
    vllm_serving_lines_v0_3 => "vllm_serving_lines_v0.3.log",
    vllm_serving_legacy => "vllm_serving_legacy.log",
    vllm_serving_result_json => "vllm_serving_result.json",
    vllm_serving_result_v0_3_json => "vllm_serving_result_v0.3.json",
    vllm_latency => "vllm_latency.log",
    vllm_latency_v0_2 => "vllm_latency_v0.2.log",
    vllm_latency_result_json => "vllm_latency_result.json",
    vllm_throughput => "vllm_throughput.log",
    vllm_throughput_v0_2 => "vllm_throughput_v0.2.log",
    vllm_throughput_result_json => "vllm_throughput_result.json",
    sglang_bench_serving => "sglang_bench_serving.log",
    sglang_bench_serving_v0_2 => "sglang_bench_serving_v0.2.log",
    sglang_bench_serving_jsonl => "sglang_bench_serving.jsonl",
    sglang_one_batch => "sglang_one_batch.log",
    edge_crash_mid_table => "edge_crash_mid_table.log",
    edge_cut_off_table => "edge_cut_off_table.log",
    edge_crash_no_result => "edge_crash_no_result.log",
    edge_two_blocks => "edge_two_blocks.log",
    edge_later_block_cut => "edge_later_block_cut.log",
    edge_traceback_after_result => "edge_traceback_after_result.log",
    edge_zero_successful => "edge_zero_successful.log",
    edge_nan_values => "edge_nan_values.log",
    edge_tqdm_glued_header => "edge_tqdm_glued_header.log",
    custom_toy_without_patterns => "custom_toy.log",
}

#[test]
fn every_fixture_has_a_snapshot_test() {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(fixture_dir()).expect("fixture dir") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !COVERED.contains(&name.as_str()) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "fixtures without a snapshot test: {missing:?}"
    );
}

#[test]
fn custom_patterns_make_up_a_result() {
    let text = read_fixture("custom_toy.log");
    let custom = vec![
        CustomPattern {
            regex: r"^step \d+ took (?P<step_latency_s>[0-9.]+) s$".into(),
            units: [("step_latency_s".to_string(), "s".to_string())].into(),
        },
        CustomPattern {
            regex: r"served (?P<served_requests>\d+) requests, p99 latency (?P<latency_ms__p99>[0-9.]+) ms".into(),
            units: Default::default(),
        },
        CustomPattern { regex: r"throughput (?P<output_throughput_tok_s>\S+) tok/s".into(), units: Default::default() },
    ];
    let value = report(parse_log(&text, &FormatChoice::Auto, &custom));
    snapshot("custom_toy.log+patterns", value);
}
