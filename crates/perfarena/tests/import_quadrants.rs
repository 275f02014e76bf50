//! Quadrants as published: the ISO-Bench per-commit judge data imported as published, and the
//! per-agent quadrant counts compared with the published tables, in both conventions.
//!
//! The fixture `tests/fixtures/import/isobench/commit-data.js` has the shape of the ISO-Bench
//! website's `static/js/commit-data.js` (ayushnangia/iso-bench-alt, written by its
//! `build_commit_data.py`: `window.ISO_BENCH_DATA = {"vllm": {"commits": [{"hash", "agents":
//! {"claude_code": {"quadrant", "hard", "bottleneck", "approach", …}}}]}, "sglang": …};`) and
//! the same per-row data (hash, agent, hard, bottleneck, approach, and the file's own quadrant),
//! the long free-text summaries and percentages left out: 99 vLLM and 15 SGLang commits × 4
//! agents. The published tables are the website's quadrant charts (ayushnangia/iso-bench-website
//! `index.html`, "Quadrant Distribution", agents Claude Code, Codex CLI, TRAE (Sonnet), TRAE
//! (GPT-5)) over the tasks the judge labelled (vLLM 39, SGLang 15); the commit explorer counts
//! every commit, a missing label or hard outcome counting as a failure (`--no-data-as q4`).

mod import_support;

use std::path::Path;

use import_support::{ok, perfarena, project};

const AGENTS: [&str; 4] = ["claude_code", "codex_cli", "trae_sonnet", "trae_gpt5"];

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import/isobench")
        .join(name)
        .display()
        .to_string()
}

/// `[Q1, Q2, Q3, Q4]` of each agent (in [`AGENTS`] order) in one repository.
fn counts(model: &serde_json::Value, repository: &str) -> Vec<[u64; 4]> {
    AGENTS
        .iter()
        .map(|agent| {
            let table = model["quadrants"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["candidate"] == *agent && t["repository"] == repository)
                .unwrap_or_else(|| panic!("no table for {agent} in {repository}"));
            let c = &table["counts"];
            [
                c["q1_true_success"].as_u64().unwrap(),
                c["q2_good_intent"].as_u64().unwrap(),
                c["q3_lucky_win"].as_u64().unwrap(),
                c["q4_failure"].as_u64().unwrap(),
            ]
        })
        .collect()
}

fn analyze(dir: &Path, convention: &str) -> serde_json::Value {
    let (json, _) = ok(dir, &["analyze", "--json", "--no-data-as", convention]);
    serde_json::from_str(&json).unwrap()
}

#[test]
fn per_agent_quadrant_counts_equal_the_published_ones_in_both_conventions() {
    let dir = project();
    ok(dir.path(), &["tasks", "import", &fixture("tasks.jsonl")]);
    let (out, _) = ok(
        dir.path(),
        &["judge", "import", &fixture("commit-data.js"), "--json"],
    );
    let imported: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(imported["added"], (99 + 15) * 4, "{imported}");
    assert_eq!(imported["skipped"], serde_json::json!([]));

    // The published charts: columns are the agents, rows Q1..Q4.
    let model = analyze(dir.path(), "undetermined");
    let transpose = |rows: [[u64; 4]; 4]| -> Vec<[u64; 4]> {
        (0..4)
            .map(|agent| {
                [
                    rows[0][agent],
                    rows[1][agent],
                    rows[2][agent],
                    rows[3][agent],
                ]
            })
            .collect()
    };
    let vllm_published = transpose([[18, 8, 11, 7], [15, 20, 20, 27], [4, 5, 2, 1], [2, 6, 6, 4]]);
    let sglang_published = transpose([[4, 12, 12, 13], [8, 3, 3, 2], [3, 0, 0, 0], [0, 0, 0, 0]]);
    assert_eq!(counts(&model, "vllm"), vllm_published);
    assert_eq!(counts(&model, "sglang"), sglang_published);
    // Every labelled vLLM task is counted (39 per agent), the 60 unlabelled ones are not.
    for row in counts(&model, "vllm") {
        assert_eq!(row.iter().sum::<u64>(), 39);
    }
    assert_eq!(model["quadrant_convention"], "undetermined");
    let cc = model["quadrants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["candidate"] == "claude_code" && t["repository"] == "vllm")
        .unwrap();
    // perfarena measured nothing here: every counted pair used the judge file's hard outcome.
    assert_eq!(cc["hard_from_judge"], 39);
    assert_eq!(cc["unlabelled"], 19, "{cc}");

    // The commit explorer's convention: every commit counts, and each pair's quadrant is the
    // one the published file gives it.
    let model = analyze(dir.path(), "q4");
    assert_eq!(model["quadrant_convention"], "q4");
    assert_eq!(
        counts(&model, "vllm"),
        vec![
            [18, 15, 11, 55],
            [8, 20, 13, 58],
            [11, 20, 13, 55],
            [7, 27, 4, 61]
        ]
    );
    assert_eq!(counts(&model, "sglang"), sglang_published);
    let published = std::fs::read_to_string(fixture("commit-data.js")).unwrap();
    let published: serde_json::Value = serde_json::from_str(
        published
            .split_once(" = ")
            .unwrap()
            .1
            .trim()
            .trim_end_matches(';'),
    )
    .unwrap();
    let mut compared = 0;
    for task in model["tasks"].as_array().unwrap() {
        let repository = task["repo"].as_str().unwrap();
        let short = &task["commit"].as_str().unwrap()[..8];
        let commit = published[repository]["commits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["hash"] == short)
            .unwrap();
        for pair in task["quadrants"].as_array().unwrap() {
            let agent = pair["candidate"].as_str().unwrap();
            let want = commit["agents"][agent]["quadrant"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase();
            let got = pair["quadrant"].as_str().unwrap();
            assert!(
                got.starts_with(&format!("{want}_")),
                "{short} {agent}: {got} vs {want}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, (99 + 15) * 4);

    // The report names the convention.
    let report = perfarena(
        dir.path(),
        &["report", "--format", "md", "--no-data-as", "q4"],
    )
    .output()
    .unwrap();
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(report.contains("Convention `--no-data-as q4`"), "{report}");
    assert!(
        report.contains("| claude_code (vllm) | 18 | 15 | 11 | 55 |"),
        "{report}"
    );
    assert!(report.contains("published hard outcome"), "{report}");

    // Importing the same file twice changes nothing.
    let (again, _) = ok(
        dir.path(),
        &["judge", "import", &fixture("commit-data.js"), "--json"],
    );
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["unchanged"], (99 + 15) * 4, "{again}");
}
