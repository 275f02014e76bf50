//! `[[bench.eras]]` in a real run (local backend, the toy example, real git): the era is chosen
//! at the task's parent, its commands run for every variant, and each attempt records the era
//! and why it was chosen.

mod common;

use perfarena_store::{AttemptFilter, Store};

#[test]
fn a_run_uses_and_records_the_era_of_each_task() {
    let (_tmp, dir) = common::toy_project();
    let suite_path = dir.join("perfarena.toml");
    let mut suite = std::fs::read_to_string(&suite_path).unwrap();
    // An era selected by a file of the toy repository; its client marks its output. A second
    // era that never matches (a file nobody has) comes first, and a layout era is skipped.
    suite.push_str(
        r#"
[[bench.eras]]
name = "layout"
when_exists = "Dockerfile"
dockerfile = "Dockerfile"

[[bench.eras]]
name = "never"
when_exists = "no/such/file.py"
client = "false"

[[bench.eras]]
name = "toy-harness"
when_exists = "benchmarks/benchmark_serving.py"
client = "echo era-client; python3 benchmarks/benchmark_serving.py --model {model} --port {port} --num-prompts 8 --concurrency 2"
"#,
    );
    std::fs::write(&suite_path, suite).unwrap();
    let out = common::perfarena(&dir, &["run", "--repeats", "1", "--seed", "1"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        common::stdout(&out),
        common::stderr(&out)
    );

    let store = Store::open_existing(&dir.join(".perfarena")).unwrap();
    let attempts = store.attempts(&AttemptFilter::default()).unwrap();
    assert!(attempts.len() >= 2, "baseline and human at least");
    for attempt in &attempts {
        assert_eq!(
            attempt.metadata["era"], "toy-harness",
            "{:?}",
            attempt.metadata
        );
        assert_eq!(
            attempt.metadata["era_reason"],
            "benchmarks/benchmark_serving.py exists"
        );
        let log_dir = dir
            .join(".perfarena")
            .join(attempt.log_dir.as_ref().unwrap());
        let logs: String = std::fs::read_dir(&log_dir)
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .collect();
        assert!(
            logs.contains("era-client"),
            "the era's client ran for {}: {logs}",
            attempt.variant
        );
    }
}
