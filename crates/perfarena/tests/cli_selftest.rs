//! End-to-end tests of `perfarena selftest stats`: the real binary, a small number of trials.

use assert_cmd::Command;
use predicates::prelude::*;

fn perfarena() -> Command {
    Command::cargo_bin("perfarena").expect("the perfarena binary is built for integration tests")
}

#[test]
fn table_lists_every_scenario_and_the_targets() {
    perfarena()
        .args(["selftest", "stats", "--trials", "300", "--seed", "3"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "perfarena selftest stats: 300 trials",
        ))
        .stdout(predicate::str::contains("A/A cv 8%"))
        .stdout(predicate::str::contains("-5% cv 3%"))
        .stdout(predicate::str::contains("legacy (1 run, ±2%)"))
        .stdout(predicate::str::contains("fixed (20 runs, welch)"))
        .stdout(predicate::str::contains("MISSED").not());
}

#[test]
fn json_has_a_version_rows_and_passed_targets() {
    let output = perfarena()
        .args(["selftest", "stats", "--trials", "300", "--json"])
        .output()
        .expect("perfarena runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--json prints one JSON document");
    assert_eq!(json["version"], 1);
    let report = &json["report"];
    assert_eq!(report["trials"], 300);
    assert_eq!(report["rows"].as_array().map(Vec::len), Some(27));
    assert_eq!(report["passed"], true);
    for target in report["targets"].as_array().expect("targets") {
        assert_eq!(target["passed"], true, "{target}");
    }
}

#[test]
fn same_seed_same_figures() {
    let run = || {
        perfarena()
            .args([
                "selftest", "stats", "--trials", "50", "--seed", "9", "--json",
            ])
            .output()
            .expect("perfarena runs")
            .stdout
    };
    assert_eq!(run(), run());
}

#[test]
fn markdown_prints_the_benchmarks_table() {
    perfarena()
        .args(["selftest", "stats", "--trials", "50", "--markdown"])
        .assert()
        .stdout(predicate::str::contains(
            "| scenario | method | better | worse | equivalent | inconclusive | false verdict |",
        ));
}

#[test]
fn zero_trials_is_an_error_with_a_reason() {
    perfarena()
        .args(["selftest", "stats", "--trials", "0"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("needs at least one trial"));
}
