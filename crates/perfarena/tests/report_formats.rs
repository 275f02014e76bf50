//! `perfarena report` end to end on a fixed store: Markdown and JSON snapshots, the JSON
//! validated against `docs/report-schema.json`, CSV of every attempt, `--out`, and the errors.

mod common;
mod report_support;

use std::path::Path;

use common::{perfarena, stderr, stdout};

fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("project");
    report_support::build(&dir);
    (tmp, dir)
}

fn report(dir: &Path, args: &[&str]) -> String {
    let mut full = vec!["report"];
    full.extend_from_slice(args);
    let out = perfarena(dir, &full);
    assert!(
        out.status.success(),
        "perfarena {full:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

fn settings(dir: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in report_support::filters(dir) {
        settings.add_filter(&pattern, replacement);
    }
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn markdown_status_report() {
    let (_tmp, dir) = fixture();
    let text = report(&dir, &["--format", "md", "--legacy-threshold", "2"]);
    for section in [
        "## Executive summary",
        "## Categories",
        "## Image availability",
        "## Key findings",
        "## Outcome summary",
        "## Recommendations",
        "## Tasks",
    ] {
        assert!(text.contains(section), "missing {section}");
    }
    // The candidate that crashed says so, with its class, rather than "inconclusive".
    assert!(
        text.contains("| candidate:agent-a vs baseline | **crashed (candidate)** |"),
        "{text}"
    );
    assert!(
        text.contains("touches the harness (benchmarks/benchmark_serving.py)"),
        "{text}"
    );
    assert!(
        text.contains("| baseline | ok | 5 / 5 | 1 |"),
        "warm-up counted apart: {text}"
    );
    settings(&dir).bind(|| insta::assert_snapshot!("report_markdown", text));
}

#[test]
fn json_matches_its_schema_and_snapshot() {
    let (_tmp, dir) = fixture();
    let text = report(&dir, &["--format", "json", "--legacy-threshold", "2"]);
    let value: serde_json::Value = serde_json::from_str(&text).expect("report is JSON");
    let schema_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/report-schema.json"),
    )
    .expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&schema_text).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match docs/report-schema.json:\n{}",
        errors.join("\n")
    );
    assert_eq!(value["version"], perfarena_core::report::REPORT_VERSION);

    // The schema is strict enough to catch drift: an unknown field or a wrong verdict fails.
    let mut broken = value.clone();
    broken["tasks"][0]["comparisons"][0]["verdict"] = serde_json::json!("tie");
    broken["surprise"] = serde_json::json!(1);
    assert!(validator.iter_errors(&broken).count() >= 2);

    let task_b = value["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"]["commit"].as_str().unwrap().starts_with('b'))
        .unwrap();
    let crashed = task_b["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["treatment"] == "candidate:agent-a" && c["control"] == "baseline")
        .unwrap();
    assert_eq!(crashed["verdict"], "crashed");
    assert_eq!(crashed["failed"]["class"], "candidate");
    assert_eq!(crashed["statistics"]["verdict"], "inconclusive");
    // Rounded so that a last-bit difference of a float library does not fail the snapshot.
    settings(&dir).bind(|| insta::assert_json_snapshot!("report_json", rounded(value)));
}

fn rounded(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or_default();
            serde_json::json!((x * 1e6).round() / 1e6)
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(rounded).collect())
        }
        serde_json::Value::Object(map) => {
            serde_json::Value::Object(map.into_iter().map(|(k, v)| (k, rounded(v))).collect())
        }
        other => other,
    }
}

#[test]
fn csv_has_one_row_per_attempt_and_metric() {
    let (_tmp, dir) = fixture();
    let text = report(&dir, &["--format", "csv"]);
    let attempts = report_support::attempts();
    let expected_rows: usize = attempts.iter().map(|a| a.samples.len().max(1)).sum();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "attempt_id,run_id,task,variant,round_idx,is_warmup,status,exit_code,started_at,duration_s,failure_kind,signature,provenance,source,backend,image,harness_touched,message,metric,value"
    );
    assert_eq!(lines.len() - 1, expected_rows);
    assert!(lines.iter().any(|l| l.contains(",candidate:agent-a,")
        && l.contains(",crashed,")
        && l.contains(",python-exception,")));
    assert!(
        lines
            .iter()
            .any(|l| l.contains(",imported,legacy-results.jsonl,"))
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains(",true,") && l.contains("agent-b"))
            .count(),
        10,
        "agent-b's 5 attempts × 2 metrics touch the harness"
    );
}

#[test]
fn out_writes_each_format_to_a_file() {
    let (tmp, dir) = fixture();
    let out_dir = tmp.path().join("reports");
    for (format, file) in [
        ("md", "report.md"),
        ("json", "report.json"),
        ("html", "report.html"),
        ("csv", "report.csv"),
    ] {
        let printed = report(
            &dir,
            &["--format", format, "--out", out_dir.to_str().unwrap()],
        );
        let path = out_dir.join(file);
        assert_eq!(printed.trim(), path.display().to_string());
        assert!(
            std::fs::metadata(&path).unwrap().len() > 100,
            "{file} is empty"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn run_id_filters_and_unknown_run_is_an_error() {
    let (_tmp, dir) = fixture();
    let text = report(
        &dir,
        &["--format", "json", "--run-id", report_support::RUN_ID],
    );
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["runs"], serde_json::json!([report_support::RUN_ID]));
    assert_eq!(
        value["provenance"]["imported_attempts"], 0,
        "imported attempts belong to no run"
    );

    let out = perfarena(&dir, &["report", "--run-id", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no run nope in the store"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_arguments_and_missing_store_are_named() {
    let (_tmp, dir) = fixture();
    let out = perfarena(&dir, &["report", "--legacy-threshold=-1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--legacy-threshold"),
        "{}",
        stderr(&out)
    );

    let empty = tempfile::tempdir().unwrap();
    let out = perfarena(empty.path(), &["report"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no store here"), "{}", stderr(&out));
}
