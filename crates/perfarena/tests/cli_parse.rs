//! End-to-end tests of `perfarena parse`: the real binary on the parser fixtures, checking the
//! JSON-lines contract, the human summary and the exit codes.

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../perfarena-core/tests/fixtures/parse")
}

/// `perfarena parse ARGS…` run in the fixture directory (so file names stay relative).
fn perfarena_parse(args: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("perfarena")
        .expect("the perfarena binary is built")
        .current_dir(fixtures())
        .arg("parse")
        .args(args)
        .output()
        .expect("perfarena runs");
    (
        output.status.code().expect("exit code"),
        String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    )
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[test]
fn json_output_for_every_era_exits_zero() {
    let files = [
        "vllm_serving_table_v0.6.log",
        "vllm_bench_serve_crlf.log",
        "vllm_serving_lines_v0.3.log",
        "vllm_serving_legacy.log",
        "vllm_serving_result.json",
        "vllm_latency.log",
        "vllm_throughput.log",
        "sglang_bench_serving.log",
        "sglang_one_batch.log",
    ];
    let mut args = vec!["--json"];
    args.extend(files);
    let (code, stdout, stderr) = perfarena_parse(&args);
    assert_eq!(code, 0, "stderr: {stderr}");
    let reports = json_lines(&stdout);
    let formats: Vec<&str> = reports
        .iter()
        .map(|report| report["format"].as_str().unwrap())
        .collect();
    assert_eq!(
        formats,
        [
            "vllm-serving-table",
            "vllm-serving-table",
            "vllm-serving-lines",
            "vllm-serving-legacy",
            "vllm-serving-json",
            "vllm-latency",
            "vllm-throughput",
            "sglang-serving-table",
            "sglang-one-batch",
        ]
    );
    for (report, file) in reports.iter().zip(files) {
        assert_eq!(report["file"], file);
        assert_eq!(report["ok"], true);
        assert!(report.get("error").is_none());
    }
    let table = &reports[0]["metrics"];
    assert_eq!(table["request_throughput_rps"], 4.1);
    assert_eq!(table["successful_requests"], 200);
    assert_eq!(table["ttft_ms"]["p99"], 120.9);
}

#[test]
fn json_output_snapshot_with_failures_exits_one() {
    let (code, stdout, _) = perfarena_parse(&[
        "--json",
        "edge_two_blocks.log",
        "edge_crash_mid_table.log",
        "edge_zero_successful.log",
        "no_such_file.log",
    ]);
    assert_eq!(code, 1);
    let reports = json_lines(&stdout);
    assert_eq!(
        reports.len(),
        4,
        "every file is reported, unreadable ones too"
    );
    assert_eq!(reports[1]["ok"], false);
    assert!(
        reports[1]["error"]
            .as_str()
            .unwrap()
            .contains("ModuleNotFoundError: No module named 'vllm._C'")
    );
    assert_eq!(reports[3]["format"], Value::Null);
    assert!(
        reports[3]["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot read no_such_file.log: ")
    );
    insta::with_settings!({ snapshot_path => "snapshots/cli_parse", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("json_with_failures", stdout);
    });
}

#[test]
fn human_summary_by_default() {
    let (code, stdout, _) = perfarena_parse(&["vllm_serving_legacy.log", "edge_cut_off_table.log"]);
    assert_eq!(code, 1);
    insta::with_settings!({ snapshot_path => "snapshots/cli_parse", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("human_summary", stdout);
    });
}

#[test]
fn a_named_format_is_used_as_given() {
    let (code, stdout, _) =
        perfarena_parse(&["--json", "--format", "vllm-latency", "vllm_latency.log"]);
    assert_eq!(code, 0);
    assert_eq!(
        json_lines(&stdout)[0]["metrics"]["latency_s"]["p99"],
        2.0117
    );
    let (code, stdout, _) =
        perfarena_parse(&["--json", "--format", "sglang-one-batch", "vllm_latency.log"]);
    assert_eq!(code, 1);
    assert_eq!(
        json_lines(&stdout)[0]["error"],
        "no complete sglang-one-batch result: no benchmark run found"
    );
}

#[test]
fn custom_patterns_from_the_command_line() {
    let (code, stdout, _) = perfarena_parse(&[
        "--json",
        "--custom",
        r"throughput (?P<toy_throughput_tok_s>\S+) tok/s",
        "custom_toy.log",
    ]);
    assert_eq!(code, 0);
    let report = &json_lines(&stdout)[0];
    assert_eq!(report["format"], "custom");
    assert_eq!(report["metrics"]["toy_throughput_tok_s"], 812.5);
    let (code, _, stderr) = perfarena_parse(&["--custom", "(?P<Bad>x)", "custom_toy.log"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("custom pattern #1"), "{stderr}");
}

#[test]
fn usage_errors_exit_two() {
    let (code, _, stderr) =
        perfarena_parse(&["--format", "vllm-serving-tabel", "vllm_latency.log"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("vllm-serving-table"), "{stderr}");
    let (code, _, _) = perfarena_parse(&[]);
    assert_eq!(code, 2);
}
