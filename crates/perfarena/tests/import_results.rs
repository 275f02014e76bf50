//! End-to-end: an earlier pipeline's task list, results, registry listings and judge labels
//! imported into a project without a repository, then analysed — every category and finding.

mod import_support;

use import_support::{analyze, fixture, import_all, ok, path, perfarena, project};

fn hashes() -> Vec<(String, String)> {
    std::fs::read_to_string(fixture("tasks.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                row["commit_hash"].as_str().unwrap().to_string(),
                row["commit_subject"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn tasks_import_without_a_repository_says_so_once() {
    let dir = project();
    let (stdout, stderr) = ok(dir.path(), &["tasks", "import", &path("tasks.jsonl")]);
    assert!(
        stdout.contains("imported 13 task(s) (13 new or changed, 0 unchanged); skipped 0 row(s)"),
        "{stdout}"
    );
    assert_eq!(
        stderr.matches("no repository in the suite").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn results_import_twice_changes_nothing() {
    let dir = project();
    ok(dir.path(), &["tasks", "import", &path("tasks.jsonl")]);
    let (first, _) = ok(
        dir.path(),
        &[
            "results",
            "import",
            &path("results.jsonl"),
            "--source",
            "old-pipeline",
        ],
    );
    assert!(
        first.contains(
            "imported 28 attempt(s) (13 failed, triaged); 0 already imported; skipped 0 row(s)"
        ),
        "{first}"
    );
    let (second, _) = ok(
        dir.path(),
        &[
            "results",
            "import",
            &path("results.jsonl"),
            "--source",
            "another-name",
        ],
    );
    assert!(
        second.contains("imported 0 attempt(s)") && second.contains("28 already imported"),
        "{second}"
    );
    let model = analyze(dir.path());
    assert_eq!(model["provenance"]["imported_attempts"], 28);
    assert_eq!(model["provenance"]["measured_attempts"], 0);
    assert_eq!(
        model["provenance"]["import_sources"],
        serde_json::json!(["old-pipeline"])
    );
    // JSON output of the import itself.
    let (json, _) = ok(
        dir.path(),
        &["results", "import", &path("results.jsonl"), "--json"],
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (json["imported"].as_u64(), json["already_imported"].as_u64()),
        (Some(0), Some(28))
    );
}

#[test]
fn short_prefixes_resolve_and_bad_ones_name_the_row() {
    let dir = project();
    ok(dir.path(), &["tasks", "import", &path("tasks.jsonl")]);
    let out = perfarena(
        dir.path(),
        &["results", "import", &path("results-bad.jsonl")],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let bad = path("results-bad.jsonl");
    assert!(
        stderr.contains(&format!(
            "{bad}:1: field `commit`: `35fa` is ambiguous: it matches 35fad35a485e, 35fa11c0c3f5"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{bad}:2: field `commit`: no imported task has commit `deadbeef`"
        )),
        "{stderr}"
    );
    // --strict imports nothing at all.
    let out = perfarena(
        dir.path(),
        &[
            "results",
            "import",
            &path("results.jsonl"),
            &bad,
            "--strict",
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert_eq!(analyze(dir.path())["provenance"]["imported_attempts"], 0);
}

#[test]
fn results_need_a_task_list() {
    let dir = project();
    let out = perfarena(dir.path(), &["results", "import", &path("results.jsonl")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("import the task list first"));
}

#[test]
fn analyze_gives_every_category_finding_and_recoverability() {
    let dir = project();
    import_all(dir.path());
    let model = analyze(dir.path());
    assert_eq!(model["version"], 1);
    let expected: [(&str, &str, &str, Option<bool>); 13] = [
        ("[Perf] Faster sampler", "complete", "working", None),
        (
            "[Kernel] Fused MoE tuning",
            "complete",
            "candidate_crashed",
            None,
        ),
        (
            "[Perf] Cache block tables",
            "complete",
            "candidate_infra_failed",
            Some(true),
        ),
        (
            "[Core] Async output processing",
            "other_failed",
            "human_image_broken",
            Some(true),
        ),
        (
            "[Perf] Prefix caching hash",
            "human_only",
            "missing_baseline_image",
            Some(true),
        ),
        (
            "[Perf] Old scheduler path",
            "missing_image",
            "no_images",
            Some(true),
        ),
        (
            "[Perf] Detokenizer speedup",
            "missing_image",
            "human_image_broken",
            Some(true),
        ),
        (
            "[Bench] Serving client flags",
            "baseline_failed_everywhere",
            "baseline_failed",
            Some(true),
        ),
        (
            "[Kernel] Paged attention v2 split",
            "other_failed",
            "both_failed",
            Some(false),
        ),
        (
            "[Perf] Latency path",
            "unknown_model",
            "not_run",
            Some(true),
        ),
        (
            "[Core] Chunked prefill default",
            "other_failed",
            "human_failed",
            Some(false),
        ),
        (
            "[Perf] Logprobs fast path",
            "other_failed",
            "not_run",
            Some(true),
        ),
        (
            "[Build] CUDA 11.8 kernels",
            "baseline_failed_everywhere",
            "both_failed",
            Some(false),
        ),
    ];
    let tasks = model["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), expected.len());
    for (subject, category, finding, recoverable) in expected {
        let task = tasks
            .iter()
            .find(|t| t["subject"] == subject)
            .unwrap_or_else(|| panic!("no task {subject}"));
        assert_eq!(
            (
                task["category"].as_str().unwrap(),
                task["finding"].as_str().unwrap()
            ),
            (category, finding),
            "{subject}: {}",
            task["finding_reason"]
        );
        assert_eq!(
            task["recoverability"]["recoverable"].as_bool(),
            recoverable,
            "{subject}: {}",
            task["recoverability"]
        );
        assert!(!task["category_reason"].as_str().unwrap().is_empty());
    }
    let find = |subject: &str| tasks.iter().find(|t| t["subject"] == subject).unwrap();
    // The human's log was read and triaged: its signature line is the evidence.
    let broken = find("[Core] Async output processing");
    let evidence = broken["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["variant"] == "human")
        .unwrap();
    assert_eq!(evidence["signature"], "missing-compiled-extension");
    assert_eq!(
        evidence["line"],
        "ModuleNotFoundError: No module named 'vllm._C'"
    );
    assert_eq!(broken["model"], "Qwen/Qwen2-7B-Instruct");
    assert_eq!(broken["model_source"], "perf_command");
    assert_eq!(
        broken["recoverability"]["actions"][0]["action"],
        "rebuild_human_image"
    );
    // The registry listing says which baseline image is missing.
    let no_baseline = find("[Perf] Prefix caching hash");
    assert_eq!(no_baseline["images"]["baseline"]["presence"], "missing");
    assert_eq!(
        no_baseline["images"]["baseline"]["source"],
        "import:registry-baseline-tags.json"
    );
    assert_eq!(
        no_baseline["images"]["human"]["source"],
        "import:human-images.txt"
    );
    let action = &no_baseline["recoverability"]["actions"][0];
    assert_eq!(action["action"], "build_baseline_image");
    assert_eq!(action["parent"], "99318e2e860757012d36b5a4cf08c72fa287e240");
    // Permanently failed, from the suite's build overrides.
    let permanent = find("[Build] CUDA 11.8 kernels");
    assert_eq!(
        permanent["recoverability"]["actions"][0]["action"],
        "none_permanently_failed"
    );
    assert_eq!(
        permanent["recoverability"]["actions"][0]["reason"],
        "needs CUDA 11.8 only"
    );
    // Unknown model says why.
    let unknown = find("[Perf] Latency path");
    assert!(
        unknown["category_reason"]
            .as_str()
            .unwrap()
            .contains("perf_command names no model")
    );
    assert_eq!(
        unknown["recoverability"]["actions"][0]["action"],
        "supply_model"
    );
    // Extra fields of the rows are kept.
    assert_eq!(model["summary"]["n_tasks"], 13);
    assert_eq!(model["summary"]["categories"]["complete"], 3);
    assert_eq!(
        model["summary"]["baseline_images"],
        serde_json::json!({"present": 11, "missing": 2, "unknown": 0})
    );
    assert_eq!(
        model["summary"]["human_images"],
        serde_json::json!({"present": 11, "missing": 2, "unknown": 0})
    );
    // Recommendations derived from the data.
    let recommendations = model["recommendations"].as_array().unwrap();
    let titles: Vec<&str> = recommendations
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.contains(&"build baseline images for these parents"),
        "{titles:?}"
    );
    assert!(
        titles.iter().any(|t| t.starts_with(
            "rebuild these human images: infra failure (`missing-compiled-extension`)"
        )),
        "{titles:?}"
    );
    // One value per variant: the legacy view is on by itself.
    assert_eq!(model["legacy"]["automatic"], true);
    let vs_human = model["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["control"] == "human")
        .unwrap();
    assert_eq!(vs_human["total"], 3);
    assert_eq!(vs_human["counts"]["candidate_crashed"], 1);
    assert_eq!(vs_human["counts"]["not_measured"], 1);
    assert_eq!(vs_human["legacy_counts"]["candidate_better"], 1);
    // Quadrants from the judge labels.
    let quadrants = &model["quadrants"][0];
    assert_eq!(quadrants["counts"]["q1_true_success"], 1, "{quadrants}");
    assert_eq!(quadrants["counts"]["q2_good_intent"], 1, "{quadrants}");
    assert_eq!(quadrants["undetermined"], 1, "{quadrants}");
    assert!(
        hashes()
            .iter()
            .all(|(c, _)| tasks.iter().any(|t| t["commit"] == c.as_str()))
    );
}

#[test]
fn analyze_text_output() {
    let dir = project();
    import_all(dir.path());
    let (stdout, _) = ok(dir.path(), &["analyze"]);
    assert!(
        stdout.contains("13 task(s); attempts: 0 measured, 28 imported (from old-pipeline)"),
        "{stdout}"
    );
    assert!(stdout.contains("human_only"), "{stdout}");
    assert!(stdout.contains("evidence: human: [missing-compiled-extension] ModuleNotFoundError: No module named 'vllm._C'"), "{stdout}");
    assert!(stdout.contains("recommendations:"), "{stdout}");
    assert!(
        stdout.contains("candidate:agent: vs human inconclusive (legacy: candidate better)"),
        "{stdout}"
    );
    let out = perfarena(dir.path(), &["analyze", "--legacy-threshold", "-1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn images_import_and_offline_status() {
    let dir = project();
    ok(dir.path(), &["tasks", "import", &path("tasks.jsonl")]);
    let (stdout, _) = ok(
        dir.path(),
        &[
            "images",
            "import",
            &path("registry-baseline-tags.json"),
            "--registry",
            "docker.io",
        ],
    );
    assert!(
        stdout.contains("1 repository with 11 image(s): 11 new, 0 changed, 0 unchanged"),
        "{stdout}"
    );
    let (again, _) = ok(
        dir.path(),
        &[
            "images",
            "import",
            &path("registry-baseline-tags.json"),
            "--registry",
            "docker.io",
        ],
    );
    assert!(again.contains("0 new, 0 changed, 11 unchanged"), "{again}");
    ok(dir.path(), &["images", "import", &path("human-images.txt")]);
    let (status, stderr) = ok(dir.path(), &["images", "status", "--offline"]);
    assert!(stderr.contains("no live registry"), "{stderr}");
    assert!(
        status.contains("import:registry-baseline-tags.json") || status.contains("registry"),
        "{status}"
    );
    let (json, _) = ok(dir.path(), &["images", "status", "--offline", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json["summary"]["baselines_missing"], 2,
        "{}",
        json["summary"]
    );
    assert_eq!(json["summary"]["humans_missing"], 2, "{}", json["summary"]);
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "org/vllm\n").unwrap();
    let out = perfarena(dir.path(), &["images", "import", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.txt:1: `org/vllm` has no tag"));
}

#[test]
fn judge_labels_import() {
    let dir = project();
    ok(dir.path(), &["tasks", "import", &path("tasks.jsonl")]);
    let (stdout, _) = ok(dir.path(), &["judge", "import", &path("judge.jsonl")]);
    assert!(
        stdout.contains("imported 3 label(s) (3 new, 0 changed, 0 unchanged)"),
        "{stdout}"
    );
    let (again, _) = ok(dir.path(), &["judge", "import", &path("judge.jsonl")]);
    assert!(again.contains("(0 new, 0 changed, 3 unchanged)"), "{again}");
}
